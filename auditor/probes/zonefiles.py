"""Zone files as an air-gapped answer source: loading one, and answering questions from it."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.zone

from auditor.core.errors import ResolverError
from auditor.probes.dnswire import Labels, Outcome


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

    def lookup(self, name: Labels, rdtype: int) -> Outcome:
        """Answer one question from the zone data (wildcards included); never raises."""
        source = f"zone file {Path(self.path).name}"
        owner = name if name in self.names else self._wildcard(name)
        if owner is None:
            return Outcome("nxdomain", None, source)
        outcome = Outcome("noerror", None, source)
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
