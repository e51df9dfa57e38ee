"""Getting DNS messages to and from a nameserver: addresses, query IDs, pooled UDP sockets, TCP."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
from dataclasses import dataclass
from typing import cast

import dns.exception
import dns.nameserver
import dns.resolver

from auditor.core.errors import ResolverError
from auditor.probes.dnswire import answers


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


async def tcp_exchange(nameserver: Nameserver, wire: bytes, timeout: float) -> bytes | None:
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


class QueryIds:
    """Unpredictable query IDs (off-path spoofing must guess them), read from the OS in batches."""

    def __init__(self) -> None:
        self._ids: list[int] = []

    def next(self) -> int:
        """Return the next query ID, a random 16-bit number."""
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
        if from_nameserver and answers(data, query_id, question):
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


class UdpPool:
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
        """Close every socket the pool opened; must run inside the loop that opened them."""
        for channel in self._all:
            if channel.transport is not None:
                channel.transport.close()
        await asyncio.sleep(0)  # lets the transports finish closing inside this loop
