"""The DNS resolver adapter: hostnames to CNAME chains and addresses, over UDP/TCP or zone files."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import socket
import struct
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import dns.exception
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.zone

from auditor.errors import ResolverError
from auditor.model import Resolution

MAX_CNAME_CHAIN = 10
"""A longer chain is reported as an error; it also bounds the follow-up queries per hostname."""

FAILURE_STATUSES = frozenset({"timeout", "servfail", "refused", "error"})
"""Statuses that say the lookup could not be done, as opposed to a definite answer."""

Labels = tuple[bytes, ...]
"""A domain name as lower-case labels, without the root label."""

# Queries are hand-built wire messages sent over a pool of reused asyncio UDP sockets (TCP when an
# answer is truncated), and answers are read by a small parser that keeps only what an audit needs:
# the CNAME chain from the queried name and the addresses at its end. dnspython's message objects
# and per-query sockets cost ~0.3 ms per query, about five times the cost of everything else, which
# matters for inventories of thousands of hosts. dnspython still parses hostnames, zone files and
# the system configuration.
_A, _CNAME, _AAAA = 1, 5, 28
_TYPE_TEXT = {_A: "A", _AAAA: "AAAA"}
_ADDRESS_SIZE = {_A: 4, _AAAA: 16}
_IN = 1
_FLAG_QR, _FLAG_TC, _FLAG_RD = 0x8000, 0x0200, 0x0100
_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")
# An EDNS OPT record advertising 1232 bytes (DNS flag day 2020): big enough for most address
# answers, small enough to avoid IP fragmentation.
_OPT = b"\x00" + _RR_FIXED.pack(41, 1232, 0, 0)
_PLAIN_NAME = re.compile(rb"[a-z0-9_*-]+(?:\.[a-z0-9_*-]+)*")
_PLAIN_HOSTNAME = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*\.?")


@dataclass(slots=True)
class ResolverStats:
    """Running totals since the resolver was made, for metrics."""

    hostnames: int = 0
    failures: int = 0  # hostnames whose status is not "ok"
    queries: int = 0  # DNS messages sent, over UDP and TCP, retries included
    tcp_queries: int = 0
    timeouts: int = 0  # queries that got no answer in time
    statuses: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Nameserver:
    """One nameserver to query: an IP address and a port."""

    host: str
    port: int = 53

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_nameserver(text: str) -> Nameserver:
    """Parse "host", "host:port", "[v6]:port" or a bare IPv6 address; raises ResolverError."""
    raw = text.strip()
    port_text: str | None = None
    if raw.startswith("["):
        host, closed, rest = raw[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ResolverError(f"nameserver {text!r}", "expected [IPv6 address]:port")
        port_text = rest[1:] if rest else None
    elif raw.count(":") == 1:
        host, _, port_text = raw.partition(":")
    else:
        host = raw  # an IPv4 address, or an IPv6 address without a port
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        reason = "not an IP address (use host, host:port, or [IPv6]:port)"
        raise ResolverError(f"nameserver {text!r}", reason) from None
    port = 53
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
            raise ResolverError(f"nameserver {text!r}", f"bad port {port_text!r}")
        port = int(port_text)
    return Nameserver(str(address), port)


def system_nameservers() -> list[Nameserver]:
    """Return the nameservers of the system resolver configuration; raises ResolverError."""
    try:
        config = dns.resolver.Resolver(configure=True)
    except (dns.exception.DNSException, OSError) as exc:
        raise ResolverError("system resolver configuration", str(exc)) from exc
    found = []
    for entry in config.nameservers:
        if isinstance(entry, str):
            found.append(Nameserver(entry, config.nameserver_ports.get(entry, config.port)))
        elif isinstance(entry, dns.nameserver.Do53Nameserver):
            found.append(Nameserver(entry.address, entry.port))
    if not found:
        raise ResolverError("system resolver configuration", "no plain DNS nameserver configured")
    return [parse_nameserver(str(ns)) for ns in found]  # normalises the address text


class DnsResolver:
    """Resolves hostnames (CNAME chain, A and AAAA) with bounded concurrency; never raises per name.

    `nameservers` are "host", "host:port" or "[IPv6]:port"; empty means the system resolver's,
    unless zone files are given: then the audit is air-gapped and names outside the zones are errors.
    """

    def __init__(
        self,
        nameservers: Sequence[str],
        timeout: float = 2.0,
        concurrency: int = 64,
        zone_files: Sequence[Path] = (),
        retries: int = 1,
    ) -> None:
        if timeout <= 0 or concurrency < 1 or retries < 0:
            settings = f"timeout={timeout}, concurrency={concurrency}, retries={retries}"
            reason = "timeout and concurrency must be positive, retries not negative"
            raise ResolverError(f"resolver settings ({settings})", reason)
        self.zones = [load_zone_file(Path(path)) for path in zone_files]
        # Most specific zone first, so a sub-zone file wins over its parent's.
        self.zones.sort(key=lambda zone: len(zone.origin), reverse=True)
        if nameservers:
            self.nameservers = [parse_nameserver(text) for text in nameservers]
        elif self.zones:
            self.nameservers = []
        else:
            self.nameservers = system_nameservers()
        self.timeout = float(timeout)
        self.concurrency = concurrency
        self.retries = retries
        self.stats = ResolverStats()
        self._udp: _UdpPool | None = None
        self._query_ids = _QueryIds()

    def resolve_many(
        self, hostnames: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Resolution]:
        """Return one Resolution per distinct hostname; `progress(done, total)` ends at (total, total).

        Runs its own event loop, so it must not be called from a running one.
        """
        unique = list(dict.fromkeys(hostnames))
        results = asyncio.run(self._resolve_all(unique, progress))
        for resolution in results.values():
            self.stats.hostnames += 1
            self.stats.statuses[resolution.status] += 1
            if not resolution.ok:
                self.stats.failures += 1
        return results

    async def _resolve_all(
        self, hostnames: list[str], progress: Callable[[int, int], None] | None
    ) -> dict[str, Resolution]:
        results: dict[str, Resolution] = {}
        total = len(hostnames)
        step = max(1, -(-total // 100))  # at most ~100 progress calls
        pending = iter(hostnames)

        async def worker() -> None:
            for hostname in pending:  # the iterator is shared: each worker takes the next name
                results[hostname] = await self._resolve_one(hostname)
                if progress is not None and (len(results) % step == 0 or len(results) == total):
                    progress(len(results), total)

        self._udp = _UdpPool()
        try:
            await asyncio.gather(*(worker() for _ in range(min(self.concurrency, total))))
        finally:
            await self._udp.close()
            self._udp = None
        if progress is not None and total == 0:
            progress(0, 0)
        return results

    async def _resolve_one(self, hostname: str) -> Resolution:
        literal = _address_literal(hostname)
        if literal is not None:  # as getaddrinfo does: an address resolves to itself
            return Resolution(hostname, "ok", (literal,))
        try:
            name = _hostname_labels(hostname)
        except ValueError as exc:
            return Resolution(hostname, "error", reason=f"invalid hostname: {exc}")
        ipv4 = asyncio.get_running_loop().create_task(self._resolve_type(name, _A))
        ipv6 = await self._resolve_type(name, _AAAA)
        return _merge(hostname, name, await ipv4, ipv6)

    async def _resolve_type(self, name: Labels, rdtype: int) -> _TypeResult:
        """Follow the CNAME chain from `name` to its addresses of one type, asking again as needed."""
        chain: list[Labels] = []
        seen = {name}
        current = name
        while True:
            outcome = await self._lookup(current, rdtype)
            if outcome.status in FAILURE_STATUSES:
                return _TypeResult(rdtype, outcome.status, outcome.reason, chain)
            advanced = False
            while (target := outcome.cnames.get(current)) is not None:
                if target in seen:
                    reason = f"CNAME loop at {name_text(target)}"
                    return _TypeResult(rdtype, "error", reason, chain)
                if len(chain) == MAX_CNAME_CHAIN:
                    reason = f"CNAME chain longer than {MAX_CNAME_CHAIN} at {name_text(current)}"
                    return _TypeResult(rdtype, "error", reason, chain)
                chain.append(target)
                seen.add(target)
                current = target
                advanced = True
            addresses = outcome.addresses.get(current)
            if addresses:
                return _TypeResult(rdtype, "ok", None, chain, addresses)
            if outcome.status == "nxdomain":
                reason = f"no such name: {name_text(current)} ({outcome.source})"
                return _TypeResult(rdtype, "nxdomain", reason, chain)
            if not advanced:
                reason = (
                    f"no {_TYPE_TEXT[rdtype]} records for {name_text(current)} ({outcome.source})"
                )
                return _TypeResult(rdtype, "no-answer", reason, chain)
            # The answer ends in a CNAME whose target it does not cover: ask for the target.

    async def _lookup(self, name: Labels, rdtype: int) -> _Outcome:
        """Answer one question from the loaded zones or the nameservers."""
        for zone in self.zones:
            if zone.covers(name):
                return zone.lookup(name, rdtype)
        if not self.nameservers:
            return _Outcome("error", "outside the loaded zone files", "zone files")
        question = _name_wire(name) + struct.pack("!HH", rdtype, _IN)
        tried: list[str] = []
        outcome = _Outcome("error", "no query sent", "")
        for attempt in range(self.retries + 1):
            nameserver = self.nameservers[attempt % len(self.nameservers)]
            outcome = await self._query(nameserver, question, rdtype)
            tried.append(str(nameserver))
            retry = outcome.status == "timeout" or (
                outcome.status in ("servfail", "refused") and len(self.nameservers) > 1
            )
            if not retry:
                return outcome
        if outcome.status == "timeout":
            servers = ", ".join(dict.fromkeys(tried))
            outcome.reason = f"no answer from {servers} within {self.timeout} s"
        return outcome

    async def _query(self, nameserver: Nameserver, question: bytes, rdtype: int) -> _Outcome:
        """Send one question to one nameserver over UDP, then TCP if the answer is truncated."""
        assert self._udp is not None, "queries are only sent inside _resolve_all"
        query_id = self._query_ids.next()
        wire = _HEADER.pack(query_id, _FLAG_RD, 1, 0, 0, 1) + question + _OPT
        source = str(nameserver)
        self.stats.queries += 1
        try:
            data = await self._udp.exchange(nameserver, wire, query_id, question, self.timeout)
            if data is not None and _is_truncated(data):
                self.stats.queries += 1
                self.stats.tcp_queries += 1
                data = await _tcp_exchange(nameserver, wire, self.timeout)
                if data is not None and not _answers(data, query_id, question):
                    return _Outcome("error", f"TCP answer from {source} does not match", source)
        except OSError as exc:
            return _Outcome("error", f"cannot query {source}: {exc.strerror or exc}", source)
        if data is None:
            self.stats.timeouts += 1
            return _Outcome("timeout", f"no answer from {source} within {self.timeout} s", source)
        try:
            return _parse_answer(data, len(question), rdtype, source)
        except _MalformedError as exc:
            return _Outcome("error", f"malformed answer from {source}: {exc}", source)


@dataclass(slots=True)
class _Outcome:
    """The answer to one question: a status and, for noerror/nxdomain, the answer section's data."""

    status: str  # noerror | nxdomain | timeout | servfail | refused | error
    reason: str | None
    source: str  # where the answer came from: "127.0.0.1:53", "zone file db.example"
    cnames: dict[Labels, Labels] = field(default_factory=dict)
    addresses: dict[Labels, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class _TypeResult:
    """What one address type (A or AAAA) of one hostname resolved to."""

    rdtype: int
    status: str
    reason: str | None
    chain: list[Labels]
    addresses: list[str] = field(default_factory=list)


def _merge(hostname: str, name: Labels, ipv4: _TypeResult, ipv6: _TypeResult) -> Resolution:
    """Combine the A and AAAA results: any address makes it ok; a failure beats a definite answer."""
    chain = list(dict.fromkeys([*ipv4.chain, *ipv6.chain]))
    addresses = sorted(set(ipv4.addresses + ipv6.addresses), key=_address_order)
    failed = [result for result in (ipv4, ipv6) if result.status in FAILURE_STATUSES]
    if addresses:
        status = "ok"
        reason = _labelled(failed) or None  # say what failed next to the addresses found
    elif failed:
        status = failed[0].status
        reasons = list(dict.fromkeys(r.reason for r in failed))
        reason = reasons[0] if len(reasons) == 1 and len(failed) == 2 else _labelled(failed)
    elif "no-answer" in (ipv4.status, ipv6.status):
        status = "no-answer"
        reason = f"no A or AAAA records for {name_text(chain[-1] if chain else name)}"
    else:
        status, reason = "nxdomain", ipv4.reason
    return Resolution(hostname, status, tuple(addresses), tuple(map(name_text, chain)), reason)


def _address_order(text: str) -> tuple[bool, bytes]:
    """IPv4 first, then numeric order."""
    if ":" in text:
        return True, socket.inet_pton(socket.AF_INET6, text)
    return False, socket.inet_pton(socket.AF_INET, text)


def _labelled(results: Sequence[_TypeResult]) -> str:
    return "; ".join(f"{_TYPE_TEXT[r.rdtype]}: {r.reason}" for r in results)


class _MalformedError(Exception):
    """An answer that does not parse; becomes status "error"."""


def _is_truncated(data: bytes) -> bool:
    return bool(_HEADER.unpack_from(data)[1] & _FLAG_TC)


def _answers(data: bytes, query_id: int, question: bytes) -> bool:
    """Whether `data` is a response to our query: same ID, QR set, our one question."""
    if len(data) < 12 + len(question):
        return False
    got_id, flags, qdcount = struct.unpack_from("!HHH", data)
    # lower() leaves the type and class bytes alone: their values are all below 0x41 ("A").
    return (
        got_id == query_id
        and flags & _FLAG_QR != 0
        and qdcount == 1
        and data[12 : 12 + len(question)].lower() == question
    )


def _parse_answer(data: bytes, question_size: int, rdtype: int, source: str) -> _Outcome:
    """Read the rcode and the answer section's CNAMEs and addresses of `rdtype`."""
    rcode = _HEADER.unpack_from(data)[1] & 0x000F
    if rcode == dns.rcode.SERVFAIL:
        return _Outcome("servfail", f"SERVFAIL from {source}", source)
    if rcode == dns.rcode.REFUSED:
        return _Outcome("refused", f"REFUSED from {source}", source)
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return _Outcome("error", f"{dns.rcode.to_text(rcode)} from {source}", source)
    status = "nxdomain" if rcode == dns.rcode.NXDOMAIN else "noerror"
    outcome = _Outcome(status, None, source)
    offset = 12 + question_size
    try:
        for _ in range(_HEADER.unpack_from(data)[3]):  # ANCOUNT
            owner, offset = _read_name(data, offset)
            rtype, rclass, _, size = _RR_FIXED.unpack_from(data, offset)
            offset += _RR_FIXED.size
            end = offset + size
            if end > len(data):
                raise _MalformedError("record data runs past the end")
            if rclass == _IN and rtype == rdtype:
                if size != _ADDRESS_SIZE[rdtype]:
                    raise _MalformedError(f"{_TYPE_TEXT[rdtype]} record of {size} bytes")
                family = socket.AF_INET if rdtype == _A else socket.AF_INET6
                address = socket.inet_ntop(family, data[offset:end])
                outcome.addresses.setdefault(owner, []).append(address)
            elif rclass == _IN and rtype == _CNAME:
                target, target_end = _read_name(data, offset)
                if target_end != end:
                    raise _MalformedError("CNAME record with trailing data")
                outcome.cnames.setdefault(owner, target)
            offset = end
    except struct.error:
        raise _MalformedError("record runs past the end") from None
    return outcome


def _read_name(data: bytes, offset: int) -> tuple[Labels, int]:
    """Decode a possibly compressed name; returns its lower-case labels and the offset after it."""
    labels: list[bytes] = []
    after = -1
    size = 0
    while True:
        if offset >= len(data):
            raise _MalformedError("name runs past the end")
        length = data[offset]
        if length == 0:
            break
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(data):
                raise _MalformedError("name runs past the end")
            pointer = (length & 0x3F) << 8 | data[offset + 1]
            if pointer >= offset:  # only backward pointers: that rules out loops
                raise _MalformedError("bad compression pointer")
            if after < 0:
                after = offset + 2
            offset = pointer
            continue
        if length & 0xC0:
            raise _MalformedError("unknown label type")
        label = data[offset + 1 : offset + 1 + length]
        size += length + 1
        if len(label) != length or size > 254:
            raise _MalformedError("name too long or cut short")
        labels.append(label.lower())
        offset += 1 + length
    return tuple(labels), after if after >= 0 else offset + 1


def _name_wire(name: Labels) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in name) + b"\x00"


def name_text(name: Labels) -> str:
    """Return a name as text, lower-case, without the trailing dot (escaped where needed)."""
    joined = b".".join(name)
    if _PLAIN_NAME.fullmatch(joined) and joined.count(b".") == len(name) - 1:
        return joined.decode("ascii")
    return dns.name.Name(name).to_text(omit_final_dot=True) if name else "."


def _address_literal(hostname: str) -> str | None:
    """The normalised address if `hostname` is an IPv4 or IPv6 address literal, else None."""
    if not hostname or not (hostname[0].isdigit() or ":" in hostname):
        return None  # the common case, decided without parsing
    try:
        address = ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return None
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    return socket.inet_ntop(family, address.packed)  # the text form answers off the wire get


def _hostname_labels(hostname: str) -> Labels:
    """Parse a hostname (IDNA applied, trailing dot optional); raises ValueError."""
    if _PLAIN_HOSTNAME.fullmatch(hostname) and len(hostname) <= 254:
        # The common case, without dnspython's general parser (a third of the time per name).
        return tuple(hostname.lower().rstrip(".").encode("ascii").split(b"."))
    try:
        labels = dns.name.from_text(hostname).labels
    except (dns.exception.DNSException, UnicodeError) as exc:
        raise ValueError(str(exc).rstrip(".")) from None
    if len(labels) < 2:
        raise ValueError("empty name")
    return tuple(label.lower() for label in labels[:-1])


async def _tcp_exchange(nameserver: Nameserver, wire: bytes, timeout: float) -> bytes | None:
    """Send one query over TCP; returns the answer's wire, or None on timeout; raises OSError."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(nameserver.host, nameserver.port)
            try:
                writer.write(struct.pack("!H", len(wire)) + wire)
                size = struct.unpack("!H", await reader.readexactly(2))[0]
                return await reader.readexactly(size)
            finally:
                writer.close()
    except TimeoutError:
        return None
    except asyncio.IncompleteReadError:
        raise OSError(f"connection to {nameserver} closed before the answer was complete") from None


class _QueryIds:
    """Unpredictable query IDs (off-path spoofing must guess them), read from the OS in batches."""

    def __init__(self) -> None:
        self._ids: list[int] = []

    def next(self) -> int:
        if not self._ids:
            self._ids = list(memoryview(os.urandom(4096)).cast("H"))
        return self._ids.pop()


class _UdpChannel(asyncio.DatagramProtocol):
    """One UDP socket with at most one query outstanding, so answers need no demultiplexing."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self._waiter: asyncio.Future[bytes | None] | None = None
        self._expected: tuple[Nameserver, int, bytes] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: 3.11's selector datagram transport does not inherit the ABC.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        waiter, expected = self._waiter, self._expected
        if waiter is None or waiter.done() or expected is None:
            return  # a late answer to a query that already timed out
        nameserver, query_id, question = expected
        # Anything not from the nameserver, or not about our question, is ignored (spoofing).
        from_nameserver = addr[0] == nameserver.host and addr[1] == nameserver.port
        if from_nameserver and _answers(data, query_id, question):
            waiter.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.error_received(exc or ConnectionError("socket closed"))

    async def exchange(
        self, nameserver: Nameserver, wire: bytes, query_id: int, question: bytes, timeout: float
    ) -> bytes | None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bytes | None] = loop.create_future()
        self._waiter, self._expected = waiter, (nameserver, query_id, question)
        # call_later is much cheaper than asyncio.wait_for, which makes a task per call.
        timer = loop.call_later(timeout, _expire, waiter)
        try:
            self.transport.sendto(wire, (nameserver.host, nameserver.port))
            return await waiter
        finally:
            timer.cancel()
            self._waiter = self._expected = None


def _expire(waiter: asyncio.Future[bytes | None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _UdpPool:
    """Reuses UDP sockets across queries: making one per query costs more than the query itself."""

    def __init__(self) -> None:
        self._idle: dict[int, list[_UdpChannel]] = {}
        self._all: list[_UdpChannel] = []

    async def exchange(
        self, nameserver: Nameserver, wire: bytes, query_id: int, question: bytes, timeout: float
    ) -> bytes | None:
        """Send `wire` and wait for its answer; returns None on timeout, raises OSError."""
        idle = self._idle.setdefault(nameserver.family, [])
        if idle:
            channel = idle.pop()
        else:
            loop = asyncio.get_running_loop()
            _, channel = await loop.create_datagram_endpoint(_UdpChannel, family=nameserver.family)
            self._all.append(channel)
        try:
            data = await channel.exchange(nameserver, wire, query_id, question, timeout)
        except BaseException:
            if channel.transport is not None:
                channel.transport.close()  # a socket in an unknown state is not reused
            raise
        idle.append(channel)
        return data

    async def close(self) -> None:
        for channel in self._all:
            if channel.transport is not None:
                channel.transport.close()
        await asyncio.sleep(0)  # lets the transports finish closing inside this loop


@dataclass(frozen=True, slots=True)
class ZoneData:
    """The A, AAAA and CNAME data of one zone file, looked up like an authoritative server."""

    path: str
    origin: Labels
    names: frozenset[Labels]  # owner names and the empty non-terminals above them
    cnames: Mapping[Labels, Labels]
    addresses: Mapping[tuple[Labels, int], list[str]]

    def covers(self, name: Labels) -> bool:
        """Whether `name` is at or under this zone's origin."""
        return not self.origin or name[-len(self.origin) :] == self.origin

    def lookup(self, name: Labels, rdtype: int) -> _Outcome:
        """Answer one question from the zone data (wildcards included); never raises."""
        source = f"zone file {Path(self.path).name}"
        owner = name if name in self.names else self._wildcard(name)
        if owner is None:
            return _Outcome("nxdomain", None, source)
        outcome = _Outcome("noerror", None, source)
        addresses = self.addresses.get((owner, rdtype))
        if addresses:
            outcome.addresses[name] = addresses
        elif (target := self.cnames.get(owner)) is not None:
            outcome.cnames[name] = target
        return outcome

    def _wildcard(self, name: Labels) -> Labels | None:
        """The wildcard owner that synthesises `name` (RFC 4592), if any."""
        for depth in range(1, len(name) - len(self.origin) + 1):
            encloser = name[depth:]
            if encloser in self.names:
                wildcard = (b"*", *encloser)
                return wildcard if wildcard in self.names else None
        return None


def load_zone_file(path: Path) -> ZoneData:
    """Load a master-format zone file (origin from its $ORIGIN, else the root); raises ResolverError."""
    try:
        try:
            zone = dns.zone.from_file(str(path), None, relativize=False, check_origin=False)
        except dns.zone.UnknownOrigin:
            zone = dns.zone.from_file(str(path), ".", relativize=False, check_origin=False)
    except OSError as exc:
        raise ResolverError(str(path), f"cannot read zone file: {exc.strerror or exc}") from exc
    except (dns.exception.DNSException, UnicodeError, ValueError) as exc:
        raise ResolverError(str(path), _zone_error_text(str(path), exc)) from exc
    names: set[Labels] = set()
    cnames: dict[Labels, Labels] = {}
    addresses: dict[tuple[Labels, int], list[str]] = {}
    for owner_name, rdataset in zone.iterate_rdatasets():
        owner = _absolute_labels(owner_name)
        names.update(owner[depth:] for depth in range(len(owner) + 1))
        if rdataset.rdclass != dns.rdataclass.IN:
            continue
        if rdataset.rdtype == dns.rdatatype.CNAME:
            cnames[owner] = _absolute_labels(rdataset[0].target)
        elif rdataset.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            family = socket.AF_INET if rdataset.rdtype == dns.rdatatype.A else socket.AF_INET6
            # The same text form as answers off the wire get.
            found = [socket.inet_ntop(family, rdata.to_digestable()) for rdata in rdataset]
            addresses[(owner, int(rdataset.rdtype))] = found
    origin = _absolute_labels(zone.origin) if zone.origin is not None else ()  # () is the root
    return ZoneData(str(path), origin, frozenset(names), cnames, addresses)


def _absolute_labels(name: dns.name.Name) -> Labels:
    return tuple(label.lower() for label in name.labels if label)


def _zone_error_text(path: str, exc: BaseException) -> str:
    """dnspython's message without the file name it repeats: "line 3: unknown rdatatype 'x'"."""
    text = str(exc)
    if text.startswith(path + ":"):
        line, _, rest = text[len(path) + 1 :].partition(":")
        if line.isdigit():
            return f"line {line}:{rest}"
    return text or type(exc).__name__
