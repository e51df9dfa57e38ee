"""Getting DNS messages to and from a nameserver: addresses, query IDs, TCP (UDP: dnsengine)."""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from dataclasses import dataclass

import dns.exception
import dns.nameserver
import dns.resolver

from auditor.core.errors import ResolverError


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


def tcp_exchange(nameserver: Nameserver, wire: bytes, timeout: float) -> bytes | None:
    """Send one query over TCP; returns the answer's wire, or None on timeout; raises OSError."""
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection((nameserver.host, nameserver.port), timeout) as sock:
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            size = struct.unpack("!H", _read_exactly(sock, 2, deadline, nameserver))[0]
            return _read_exactly(sock, size, deadline, nameserver)
    except TimeoutError:
        return None


def _read_exactly(sock: socket.socket, size: int, deadline: float, peer: Nameserver) -> bytes:
    data = b""
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise OSError(f"connection to {peer} closed before the answer was complete")
        data += chunk
    return data


class QueryIds:
    """Unpredictable query IDs (off-path spoofing must guess them), read from the OS in batches."""

    def __init__(self) -> None:
        self._ids: list[int] = []

    def next(self) -> int:
        """Return the next query ID, a random 16-bit number."""
        if not self._ids:
            self._ids = list(memoryview(os.urandom(4096)).cast("H"))
        return self._ids.pop()
