"""The DNS wire format as an audit needs it: names, address literals, queries, and answers read."""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
from dataclasses import dataclass, field

import dns.exception
import dns.name
import dns.rcode

# Queries are hand-built wire messages sent over a pool of reused asyncio UDP sockets (TCP when an
# answer is truncated), and answers are read by a small parser that keeps only what an audit needs:
# the CNAME chain from the queried name and the addresses at its end. dnspython's message objects
# and per-query sockets cost ~0.3 ms per query, about five times the cost of everything else, which
# matters for inventories of thousands of hosts. dnspython still parses hostnames, zone files and
# the system configuration.

Labels = tuple[bytes, ...]
"""A domain name as lower-case labels, without the root label."""

A, AAAA = 1, 28
"""The address record types, as numbers on the wire."""

TYPE_TEXT = {A: "A", AAAA: "AAAA"}
"""The mnemonic of each address record type, for messages."""

_CNAME = 5
_ADDRESS_SIZE = {A: 4, AAAA: 16}
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
class Outcome:
    """The answer to one question: a status and, for noerror/nxdomain, the answer section's data."""

    status: str  # noerror | nxdomain | timeout | servfail | refused | error
    reason: str | None
    source: str  # where the answer came from: "127.0.0.1:53", "zone file db.example"
    cnames: dict[Labels, Labels] = field(default_factory=dict)
    addresses: dict[Labels, list[str]] = field(default_factory=dict)


class MalformedError(Exception):
    """An answer that does not parse; becomes status "error"."""


def question_wire(name: Labels, rdtype: int) -> bytes:
    """Return the question section asking for `rdtype` records (class IN) of `name`."""
    return _name_wire(name) + struct.pack("!HH", rdtype, _IN)


def query_wire(query_id: int, question: bytes) -> bytes:
    """Return a recursive query message with one question and an EDNS OPT record."""
    return _HEADER.pack(query_id, _FLAG_RD, 1, 0, 0, 1) + question + _OPT


def is_truncated(data: bytes) -> bool:
    """Whether the answer has the TC flag set, so it must be asked again over TCP."""
    return bool(_HEADER.unpack_from(data)[1] & _FLAG_TC)


def answers(data: bytes, query_id: int, question: bytes) -> bool:
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


def parse_answer(data: bytes, question_size: int, rdtype: int, source: str) -> Outcome:
    """Read the rcode and the answer section's CNAMEs and addresses of `rdtype`.

    Raises MalformedError when the answer section does not parse.
    """
    rcode = _HEADER.unpack_from(data)[1] & 0x000F
    if rcode == dns.rcode.SERVFAIL:
        return Outcome("servfail", f"SERVFAIL from {source}", source)
    if rcode == dns.rcode.REFUSED:
        return Outcome("refused", f"REFUSED from {source}", source)
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return Outcome("error", f"{dns.rcode.to_text(rcode)} from {source}", source)
    status = "nxdomain" if rcode == dns.rcode.NXDOMAIN else "noerror"
    outcome = Outcome(status, None, source)
    offset = 12 + question_size
    lowered = data.lower()  # names compare lower-case; addresses are read from `data`
    try:
        for _ in range(_HEADER.unpack_from(data)[3]):  # ANCOUNT
            owner, offset = _read_name(data, offset, lowered)
            rtype, rclass, _, size = _RR_FIXED.unpack_from(data, offset)
            offset += _RR_FIXED.size
            end = offset + size
            if end > len(data):
                raise MalformedError("record data runs past the end")
            if rclass == _IN and rtype == rdtype:
                if size != _ADDRESS_SIZE[rdtype]:
                    raise MalformedError(f"{TYPE_TEXT[rdtype]} record of {size} bytes")
                family = socket.AF_INET if rdtype == A else socket.AF_INET6
                address = socket.inet_ntop(family, data[offset:end])
                outcome.addresses.setdefault(owner, []).append(address)
            elif rclass == _IN and rtype == _CNAME:
                target, target_end = _read_name(data, offset, lowered)
                if target_end != end:
                    raise MalformedError("CNAME record with trailing data")
                outcome.cnames.setdefault(owner, target)
            offset = end
    except struct.error:
        raise MalformedError("record runs past the end") from None
    return outcome


def _read_name(data: bytes, offset: int, lowered: bytes) -> tuple[Labels, int]:
    """Decode a possibly compressed name; returns its lower-case labels and the offset after it.

    `lowered` is `data.lower()`, made once per message: the labels are cut from it, the lengths
    and pointers read from `data` (a pointer's second byte can be any byte).
    """
    labels: list[bytes] = []
    after = -1
    size = 0
    end = len(data)
    while True:
        if offset >= end:
            raise MalformedError("name runs past the end")
        length = data[offset]
        if length == 0:
            break
        if length >= 0xC0:
            if offset + 1 >= end:
                raise MalformedError("name runs past the end")
            pointer = (length & 0x3F) << 8 | data[offset + 1]
            if pointer >= offset:  # only backward pointers: that rules out loops
                raise MalformedError("bad compression pointer")
            if after < 0:
                after = offset + 2
            offset = pointer
            continue
        if length & 0xC0:
            raise MalformedError("unknown label type")
        stop = offset + 1 + length
        size += length + 1
        if stop > end or size > 254:
            raise MalformedError("name too long or cut short")
        labels.append(lowered[offset + 1 : stop])
        offset = stop
    return tuple(labels), after if after >= 0 else offset + 1


def _name_wire(name: Labels) -> bytes:
    return b"".join(bytes((len(label),)) + label for label in name) + b"\x00"


def name_text(name: Labels) -> str:
    """Return a name as text, lower-case, without the trailing dot (escaped where needed)."""
    joined = b".".join(name)
    if _PLAIN_NAME.fullmatch(joined) and joined.count(b".") == len(name) - 1:
        return joined.decode("ascii")
    return dns.name.Name(name).to_text(omit_final_dot=True) if name else "."


def address_literal(hostname: str) -> str | None:
    """Return the normalised address if `hostname` is an IPv4 or IPv6 address literal, else None."""
    if not hostname or not (hostname[0].isdigit() or ":" in hostname):
        return None  # the common case, decided without parsing
    try:
        address = ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        return None
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    return socket.inet_ntop(family, address.packed)  # the text form answers off the wire get


def hostname_labels(hostname: str) -> Labels:
    """Parse a hostname (IDNA applied, trailing dot optional) into labels; raises ValueError."""
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
