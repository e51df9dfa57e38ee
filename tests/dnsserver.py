"""A small threaded DNS server on loopback (UDP and TCP, one port) serving a zone, for resolver tests."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import struct
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone

BEHAVIOURS = frozenset({"servfail", "refused", "timeout", "truncate", "no-follow", "garbage"})
"""Per-name behaviours: answer SERVFAIL or REFUSED, never answer, set TC over UDP (full answer over
TCP only), answer a CNAME without following it (the client must ask again for the target), or send
an answer whose record is cut short."""

_NOERROR, _FORMERR, _SERVFAIL, _NXDOMAIN, _REFUSED = 0, 1, 2, 3, 5
_QR, _TC, _RD, _RA = 0x8000, 0x0200, 0x0100, 0x0080
_CNAME = 5
_MAX_CHAIN = 32  # stop following CNAMEs after this many, as a recursor would
_HEADER = struct.Struct("!HHHHHH")


class LoopbackServer(ABC):
    """A DNS server on loopback at `host` and `port`, stopped when the `with` block it starts ends."""

    host: str
    port: int

    @property
    def address(self) -> str:
        """The nameserver string a client is given, "127.0.0.1:PORT" or "[::1]:PORT"."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @abstractmethod
    def start(self) -> Self:
        """Start serving; returns the server."""

    @abstractmethod
    def stop(self) -> None:
        """Stop serving."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def bind_udp_and_tcp(host: str, attempts: int = 20) -> tuple[socket.socket, socket.socket]:
    """A UDP socket and a listening TCP socket bound to one free port on `host`.

    Raises:
        OSError: no port was free for both in `attempts` tries.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(attempts):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            tcp.bind((host, udp.getsockname()[1]))
        except OSError:  # that port is taken for TCP: try another UDP port
            udp.close()
            tcp.close()
            continue
        tcp.listen(64)
        return udp, tcp
    raise OSError("no free port for both UDP and TCP")


@dataclass
class _Node:
    """The records of one owner name, ready to be written: rdtype -> (ttl, rdata in wire form)."""

    rrsets: dict[int, tuple[int, list[bytes]]] = field(default_factory=dict)
    cname: bytes | None = None  # the CNAME target in wire form, lower-case


class LoopbackDnsServer(LoopbackServer):
    """Serves one zone on 127.0.0.1 (or ::1) over UDP and TCP, answering like a recursive resolver.

    CNAME chains inside the served data are followed and returned in the answer section; a name
    that is not in the data is NXDOMAIN, a name without records of the asked type is NOERROR with an
    empty answer. Answers are written by hand (no dnspython message objects) so that the server
    keeps up with a resolver benchmark. `delay` holds every UDP answer back for that many seconds,
    so that `max_in_flight` (queries received, not yet answered) shows how many queries a client
    keeps outstanding at once.
    """

    def __init__(self, zone_text: str, origin: str = ".", host: str = "127.0.0.1") -> None:
        zone = dns.zone.from_text(zone_text, origin=origin, relativize=False, check_origin=False)
        assert zone.origin is not None
        self.origin = zone.origin.to_digestable()
        self.nodes = _nodes(zone)
        self.host = host
        self.delay = 0.0
        self.query_count = 0
        self.tcp_query_count = 0
        self.max_in_flight = 0
        self._in_flight = 0
        self._behaviours: dict[tuple[bytes, int], str] = {}  # (name, rdtype or 0 for any) -> ...
        self._lock = threading.Lock()
        self._pending: list[tuple[float, int, bytes, tuple[str, int]]] = []
        self._pending_ready = threading.Condition(self._lock)
        self._sequence = itertools.count()
        self._stopping = False
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._udp, self._tcp = bind_udp_and_tcp(host)
        self.port = self._udp.getsockname()[1]

    def serve(self, zone_text: str, origin: str = ".") -> None:
        """Serve other data from now on (a record changed at the authoritative server)."""
        zone = dns.zone.from_text(zone_text, origin=origin, relativize=False, check_origin=False)
        nodes = _nodes(zone)
        with self._lock:
            self.nodes = nodes

    def set_behaviour(self, name: str, behaviour: str | None, rdtype: str | None = None) -> None:
        """Misbehave for queries of `name` (of one type, or any); None restores normal answers."""
        if behaviour is not None and behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}; known: {sorted(BEHAVIOURS)}")
        qtype = int(dns.rdatatype.from_text(rdtype)) if rdtype else 0
        key = (dns.name.from_text(name).to_digestable(), qtype)
        with self._lock:
            if behaviour is None:
                self._behaviours.pop(key, None)
            else:
                self._behaviours[key] = behaviour

    def start(self) -> Self:
        """Start serving in background threads; returns the server."""
        for target in (self._serve_udp, self._serve_tcp, self._send_delayed):
            thread = threading.Thread(target=target, name=f"dns-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving and close every socket; waits for the threads to finish."""
        with self._lock:
            self._stopping = True
            self._pending_ready.notify_all()
        # Wake the blocking recvfrom() and accept() so the threads see that we are stopping.
        with socket.socket(self._udp.family, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"", (self.host, self.port))
        with contextlib.suppress(OSError):
            socket.create_connection((self.host, self.port), timeout=1).close()
        for thread in self._threads:
            thread.join(timeout=5)
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv()
            conn.close()
        self._udp.close()
        self._tcp.close()

    def _serve_udp(self) -> None:
        while True:
            try:
                wire, peer = self._udp.recvfrom(65535)
            except OSError:
                return
            if self._stopping:
                return
            with self._lock:
                self.query_count += 1
                reply = self._respond(wire, tcp=False)
                if reply is not None and self.delay > 0:
                    self._hold(reply, peer)
                    continue
            if reply is not None:
                self._udp.sendto(reply, peer)

    def _hold(self, reply: bytes, peer: tuple[str, int]) -> None:
        """Queue an answer for later (lock held), counting it as in flight until it is sent."""
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        due = time.monotonic() + self.delay
        heapq.heappush(self._pending, (due, next(self._sequence), reply, peer))
        self._pending_ready.notify()

    def _send_delayed(self) -> None:
        with self._lock:
            while not self._stopping:
                if not self._pending:
                    self._pending_ready.wait()
                    continue
                due, _, reply, peer = self._pending[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._pending_ready.wait(wait)
                    continue
                heapq.heappop(self._pending)
                self._in_flight -= 1
                self._udp.sendto(reply, peer)

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, _ = self._tcp.accept()
            except OSError:
                return
            if self._stopping:
                conn.close()
                return
            self._connections.append(conn)
            thread = threading.Thread(target=self._serve_connection, args=(conn,), daemon=True)
            thread.start()

    def _serve_connection(self, conn: socket.socket) -> None:
        with conn:
            while True:
                header = _read_exactly(conn, 2)
                wire = _read_exactly(conn, struct.unpack("!H", header)[0]) if header else None
                if wire is None:
                    return
                with self._lock:
                    self.query_count += 1
                    self.tcp_query_count += 1
                    reply = self._respond(wire, tcp=True)
                if reply is not None:
                    try:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                    except OSError:
                        return

    def _respond(self, wire: bytes, tcp: bool) -> bytes | None:
        """Build the answer to one query (lock held); None means: do not answer."""
        if len(wire) < 12:
            return None
        query_id, flags, qdcount = struct.unpack_from("!HHH", wire)
        if flags & _QR:
            return None  # a response, not a query
        reply_flags = _QR | _RA | (flags & _RD)
        question = _question(wire) if qdcount == 1 else None
        if question is None:
            return _HEADER.pack(query_id, reply_flags | _FORMERR, 0, 0, 0, 0)
        qname, qtype, end = question
        behaviour = self._behaviours.get((qname, qtype)) or self._behaviours.get((qname, 0))
        rcode, records = _NOERROR, list[bytes]()
        if behaviour == "timeout":
            return None
        if behaviour == "servfail":
            rcode = _SERVFAIL
        elif behaviour == "refused":
            rcode = _REFUSED
        elif behaviour == "truncate" and not tcp:
            reply_flags |= _TC
        elif behaviour == "garbage":
            records = [qname + b"\x00\x01"]  # the record stops after its type
        else:
            rcode, records = self._answer(qname, qtype)
        header = _HEADER.pack(query_id, reply_flags | rcode, 1, len(records), 0, 0)
        return header + wire[12:end] + b"".join(records)

    def _answer(self, qname: bytes, qtype: int) -> tuple[int, list[bytes]]:
        """Answer from the zone data, following CNAMEs inside it: the rcode and the records."""
        records: list[bytes] = []
        seen = {qname}
        name = qname
        while len(records) < _MAX_CHAIN:
            node = self.nodes.get(name)
            if node is None:
                inside = name == qname or _is_subdomain(name, self.origin)
                return (_NXDOMAIN if inside else _NOERROR), records
            if qtype in node.rrsets:
                ttl, rdatas = node.rrsets[qtype]
                records.extend(_record(name, qtype, ttl, rdata) for rdata in rdatas)
                break
            if node.cname is None:
                break
            ttl, (rdata,) = node.rrsets[_CNAME]
            records.append(_record(name, _CNAME, ttl, rdata))
            target = node.cname
            if target in seen or self._behaviours.get((name, 0)) == "no-follow":
                break
            seen.add(target)
            name = target
        return _NOERROR, records


def _nodes(zone: dns.zone.Zone) -> dict[bytes, _Node]:
    """The zone's IN-class data keyed by owner name in lower-case wire form."""
    nodes: dict[bytes, _Node] = {}
    for owner, rdataset in zone.iterate_rdatasets():
        if rdataset.rdclass != dns.rdataclass.IN:
            continue
        node = nodes.setdefault(owner.to_digestable(), _Node())
        rdatas = [rdata.to_digestable() for rdata in rdataset]  # uncompressed wire form
        node.rrsets[int(rdataset.rdtype)] = (rdataset.ttl, rdatas)
        if rdataset.rdtype == dns.rdatatype.CNAME:
            node.cname = rdataset[0].target.to_digestable()
    return nodes


def _question(wire: bytes) -> tuple[bytes, int, int] | None:
    """Read the one question: its name (lower-case wire), type and where it ends; None if bad."""
    offset = 12
    while offset < len(wire) and wire[offset] != 0:
        if wire[offset] & 0xC0:
            return None  # no compression in a question
        offset += 1 + wire[offset]
    if offset + 5 > len(wire):
        return None
    (qtype,) = struct.unpack_from("!H", wire, offset + 1)
    return bytes(wire[12 : offset + 1]).lower(), qtype, offset + 5


def _record(name: bytes, rdtype: int, ttl: int, rdata: bytes) -> bytes:
    return name + struct.pack("!HHIH", rdtype, 1, ttl, len(rdata)) + rdata


def _is_subdomain(name: bytes, origin: bytes) -> bool:
    """Whether a wire-form name is at or under `origin`, comparing on label boundaries."""
    offset = 0
    while offset < len(name):
        if name[offset:] == origin:
            return True
        offset += 1 + name[offset]
    return False


def _read_exactly(conn: socket.socket, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        try:
            chunk = conn.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data
