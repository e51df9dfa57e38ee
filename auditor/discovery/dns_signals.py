"""DNS signals of SaaS use: TXT verification tokens, SPF includes, MX, DMARC reports, CNAMEs."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dns.exception
import dns.nameserver
import dns.resolver

from auditor.core.sites import first_party
from auditor.discovery.catalogue import Catalogue
from auditor.discovery.config import DiscoverySettings
from auditor.discovery.evidence import Evidence, Signal, dns_probe
from auditor.probes.dnstransport import parse_nameserver

SPF_LOOKUP_LIMIT = 10
"""RFC 7208 §4.6.4: at most 10 mechanisms and modifiers that cause DNS queries per check."""
_SPF_QUERYING = ("include:", "redirect=", "a", "mx", "ptr", "exists:")
_MAX_CNAME_HOPS = 8


class LookupFailed(Exception):
    """A query got no usable answer (timeout, SERVFAIL, REFUSED): not the same as no records."""


Lookup = Callable[[str, str], list[str]]
"""(name, record type) -> the records' values as text; [] for NXDOMAIN or no records of the type.

Raises LookupFailed when the name could not be looked up at all.
"""


def dnspython_lookup(nameservers: Sequence[str], timeout: float) -> Lookup:
    """A Lookup asking the configured nameservers (host, host:port, [v6]:port) with dnspython;
    with none configured, the system's resolvers."""
    resolver = dns.resolver.Resolver(configure=not nameservers)
    if nameservers:
        parsed = [parse_nameserver(text) for text in nameservers]
        resolver.nameservers = [dns.nameserver.Do53Nameserver(ns.host, ns.port) for ns in parsed]
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)

    def lookup(name: str, rdtype: str) -> list[str]:
        try:
            answer = resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
            raise LookupFailed(f"{rdtype} {name}: {exc.__class__.__name__}") from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(f"{rdtype} {name}: {exc}") from None
        return [_text(rdata, rdtype) for rdata in answer if rdata.rdtype == answer.rdtype]

    return lookup


def _text(rdata: object, rdtype: str) -> str:
    if rdtype == "TXT":
        strings = getattr(rdata, "strings", ())
        return b"".join(strings).decode("utf-8", "replace")
    return str(rdata)


@dataclass
class DnsFindings:
    """What the DNS of the organisation's domains showed, and what could not be checked."""

    signals: list[Signal] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # failed lookups and faulty records
    failures: int = 0  # lookups that got no usable answer: the results are incomplete
    probes: list[str] = field(default_factory=list)  # one per domain and per CNAME name asked
    failed: dict[str, str] = field(default_factory=dict)  # probe -> its first failed lookup


def scan_domains(settings: DiscoverySettings, catalogue: Catalogue, lookup: Lookup) -> DnsFindings:
    """Look at every configured domain's TXT, SPF, MX and DMARC records and its subdomains'
    CNAMEs; every record pointing at a catalogue vendor, or at a third party the catalogue does
    not know, is a signal. First-party is the registrable domain (Public Suffix List) of a
    configured domain: `mail.example.co.uk` is the organisation's own when `example.co.uk` is
    configured, `other.github.io` is a third party to `mine.github.io`."""
    found = DnsFindings()
    for domain in settings.domains:
        scan = _DomainScan(domain, settings.domains, catalogue, lookup, found)
        scan.run()
    for name in settings.subdomain_names():
        _scan_cname(name, settings.domains, catalogue, lookup, found)
    return found


@dataclass
class _DomainScan:
    domain: str
    own: Sequence[str]
    catalogue: Catalogue
    lookup: Lookup
    found: DnsFindings

    @property
    def probe(self) -> str:
        return dns_probe(self.domain)

    def run(self) -> None:
        self.found.probes.append(self.probe)
        txt = self._query(self.domain, "TXT")
        if txt is not None:
            self._tokens(txt)
            self._spf(txt)
        mx = self._query(self.domain, "MX")
        for record in mx or []:
            exchange = record.split()[-1].rstrip(".").lower()
            if not exchange:
                continue  # a null MX (RFC 7505): the domain receives no mail
            vendor = self.catalogue.matching(exchange, "mx")
            if vendor is None and first_party(exchange, self.own):
                continue  # the organisation's own mail server
            evidence = Evidence("mx", self.domain, record, exchange)
            self._add(vendor.id if vendor else None, exchange, evidence)
        self._dmarc()

    def _query(self, name: str, rdtype: str) -> list[str] | None:
        try:
            return self.lookup(name, rdtype)
        except LookupFailed as exc:
            self.found.problems.append(f"{self.domain}: {exc}")
            self.found.failures += 1
            self.found.failed.setdefault(self.probe, str(exc))
            return None

    def _add(self, vendor: str | None, host: str, evidence: Evidence) -> None:
        self.found.signals.append(Signal(vendor, host, evidence, self.probe))

    def _tokens(self, records: list[str]) -> None:
        for record in records:
            match = self.catalogue.txt_prefix(record)
            if match is not None:
                prefix, vendor = match
                self._add(vendor.id, self.domain, Evidence("txt", self.domain, record, prefix))

    def _spf(self, apex_records: list[str]) -> None:
        state = _SpfWalk(self)
        state.walk(self.domain, apex_records, ())
        if state.over_limit:
            self.found.problems.append(
                f"{self.domain}: SPF needs more than {SPF_LOOKUP_LIMIT} DNS lookups (over the "
                "limit: receivers answer permerror); includes past the limit were not followed"
            )

    def _dmarc(self) -> None:
        name = f"_dmarc.{self.domain}"
        for record in self._query(name, "TXT") or []:
            if not record.lower().startswith("v=dmarc1"):
                continue
            for address in dmarc_addresses(record):
                host = address.rpartition("@")[2].lower().rstrip(".")
                if not host or first_party(host, self.own):
                    continue
                vendor = self.catalogue.by_host(host)
                self._add(
                    vendor.id if vendor else None, host, Evidence("dmarc", name, record, address)
                )


@dataclass
class _SpfWalk:
    """One SPF evaluation's include tree, counting lookups as a receiver would."""

    scan: _DomainScan
    lookups: int = 0
    over_limit: bool = False

    def walk(self, owner: str, records: list[str], stack: tuple[str, ...]) -> None:
        spf = [r for r in records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]
        if len(spf) > 1:
            self.scan.found.problems.append(f"{owner}: more than one SPF record (permerror)")
        if not spf:
            return
        for term in spf[0].split()[1:]:
            if self.over_limit:
                return
            self._term(owner, spf[0], term.lower().lstrip("+-~?"), (*stack, owner))

    def _term(self, owner: str, record: str, term: str, stack: tuple[str, ...]) -> None:
        if not term.startswith(_SPF_QUERYING) or term.startswith(("all", "ip4", "ip6")):
            return
        self.lookups += 1
        if self.lookups > SPF_LOOKUP_LIMIT:
            self.over_limit = True
            return
        if not term.startswith(("include:", "redirect=")):
            return  # a, mx, ptr, exists count against the limit but name no vendor
        target = re.split(r"[:=]", term, maxsplit=1)[1].rstrip(".")
        vendor = self.scan.catalogue.matching(target, "spf")
        if vendor is not None:
            self.scan._add(vendor.id, target, Evidence("spf", owner, record, term))
        elif first_party(owner, self.scan.own) and not first_party(target, self.scan.own):
            # An unknown sender the organisation's own record authorises (what a vendor's
            # record includes in turn is the vendor's own business).
            self.scan._add(None, target, Evidence("spf", owner, record, term))
        if target in stack:
            chain = " -> ".join((*stack, target))
            self.scan.found.problems.append(f"{self.scan.domain}: SPF include loop: {chain}")
            return
        records = self.scan._query(target, "TXT")
        if records is not None:
            self.walk(target, records, stack)


def dmarc_addresses(record: str) -> list[str]:
    """The addresses in a DMARC record's rua= and ruf= tags (mailto: and size suffix removed)."""
    addresses: list[str] = []
    for tag in record.split(";"):
        key, _, value = tag.strip().partition("=")
        if key.strip().lower() not in ("rua", "ruf"):
            continue
        for uri in value.split(","):
            uri = uri.strip()
            if uri.lower().startswith("mailto:"):
                addresses.append(uri[len("mailto:") :].split("!", 1)[0])
    return addresses


def _scan_cname(
    name: str, own: Sequence[str], catalogue: Catalogue, lookup: Lookup, found: DnsFindings
) -> None:
    current, seen = name, {name}
    probe = dns_probe(name)
    found.probes.append(probe)
    for _ in range(_MAX_CNAME_HOPS):
        try:
            targets = lookup(current, "CNAME")
        except LookupFailed as exc:
            found.problems.append(f"{name}: {exc}")
            found.failures += 1
            found.failed.setdefault(probe, str(exc))
            return
        if not targets:
            return
        target = targets[0].rstrip(".").lower()
        vendor = catalogue.matching(target, "cname") or catalogue.by_host(target)
        if vendor is not None:
            evidence = Evidence("cname", current, targets[0], target)
            found.signals.append(Signal(vendor.id, target, evidence, probe))
            return
        if target in seen:
            found.problems.append(f"{name}: CNAME loop at {target}")
            return
        if not first_party(target, own):
            found.signals.append(
                Signal(None, target, Evidence("cname", current, targets[0], target), probe)
            )
        seen.add(target)
        current = target
