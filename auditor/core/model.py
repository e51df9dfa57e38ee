"""Frozen value types shared by the core and the adapters: integrations, places, observations, findings."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from auditor.core.durations import Duration


class Severity(StrEnum):
    """How urgent a finding is; `rank` orders them worst first."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"critical": 3, "warning": 2, "info": 1}[self.value]


class Facet(StrEnum):
    """How personal data reaches a place."""

    HOSTING = "hosting"
    BACKUP = "backup"
    SUPPORT = "support"
    ENDPOINT = "endpoint"
    SUBPROCESSOR = "subprocessor"
    VENDOR = "vendor"  # the vendor's home country: whose authorities can compel access
    WEB = "web"  # visitors' browsers, sent by the organisation's web pages


class Verdict(StrEnum):
    """What the transfer rules say of one place on the audit date."""

    EEA = "eea"  # inside the EEA: no transfer
    ADEQUATE = "adequate"  # an adequacy decision in force and in scope (Art. 45)
    SAFEGUARDED = "safeguarded"  # a recorded safeguard (Art. 46: SCCs, BCRs)
    CONSENT = "consent"  # relies on explicit consent (Art. 49(1)(a)); coverage checked separately
    SCOPE_UNCONFIRMED = "scope-unconfirmed"  # only a limited decision the DPO has not confirmed
    UNSAFEGUARDED = "unsafeguarded"  # none of the above: unlawful transfer
    EDGE = "edge"  # a CDN or anycast edge: says nothing about where data rests
    UNKNOWN = "unknown"  # could not be located


@dataclass(frozen=True, slots=True)
class Place:
    """A declared place: an ISO country, a cloud region, or an international organisation."""

    spec: str  # as normalised: "US", "aws:us-west-2", "org:european-patent-organisation"
    country: str | None  # ISO 3166-1 alpha-2; None for an international organisation
    provider: str | None = None
    region: str | None = None
    organisation: str | None = None
    zone: str | None = None  # an AWS Local/Wavelength Zone of `region`, with its own country

    def __str__(self) -> str:
        if self.provider is not None and self.country is not None:
            return f"{self.spec} ({self.country})"
        return self.spec


@dataclass(frozen=True, slots=True)
class BackupDocumentation:
    """Where the backup procedure is written down, and the day it was last reviewed."""

    at: str
    reviewed: date


@dataclass(frozen=True, slots=True)
class Backups:
    """Backups as the vendor runs them: where, how long, which generations, tested and written down."""

    regions: tuple[Place, ...] = ()
    retention: Duration | None = None
    kind: str | None = None  # `type` in the inventory: full | incremental | differential
    generations: tuple[tuple[str, Duration], ...] = ()  # ("daily", P7D), ("yearly", P7Y)
    restore_tested: date | None = None  # the last successful restore test
    documented: BackupDocumentation | None = None

    @property
    def informative(self) -> bool:
        """Whether it says where or for how long backups are kept (else backup-undocumented)."""
        return bool(self.regions or self.retention is not None or self.generations)

    def effective_retention(self, anchor: date) -> tuple[Duration, str] | None:
        """The longest of `retention` and the generations from `anchor`, with what it is
        ("retention" or "generation yearly"); None when neither is recorded.

        Deleted personal data lives on in the backups for that long.
        """
        candidates = [(d, f"generation {name}") for name, d in self.generations]
        if self.retention is not None:
            candidates.insert(0, (self.retention, "retention"))
        if not candidates:
            return None
        # The first of equally long ones wins: the declared retention before any generation.
        longest = candidates[0]
        for candidate in candidates[1:]:
            if candidate[0].exceeds(longest[0], anchor):
                longest = candidate
        return longest


@dataclass(frozen=True, slots=True)
class Certification:
    """A recipient's certification under a US framework, valid from `since` to `until` inclusive.

    `since` and `until` are None when not recorded: the `dpf_certified: true` shorthand records a
    certification whose dates are unknown, taken as valid while its framework's decision is.
    """

    framework: str  # dpf | privacy-shield | safe-harbour: a certified decision's `framework`
    since: date | None = None
    until: date | None = None
    hr: bool = False  # covers HR data (the `employment` data category)
    shorthand: bool = False  # from `dpf_certified: true`, dates not recorded

    def valid_on(self, day: date) -> bool:
        """Whether the certification was valid on the day (always, when its dates are unknown)."""
        return (self.since is None or self.since <= day) and (
            self.until is None or day <= self.until
        )

    def describe(self) -> str:
        """The certification in words, for findings and reports."""
        if self.shorthand:
            return f"{self.framework} (dpf_certified: dates not recorded)"
        until = self.until.isoformat() if self.until is not None else "no end"
        start = self.since.isoformat() if self.since is not None else "?"
        kind = "HR and non-HR" if self.hr else "non-HR"
        return f"{self.framework} {start} to {until}, {kind}"


@dataclass(frozen=True, slots=True)
class Transfer:
    """What the DPO recorded about the legal basis of an integration's transfers."""

    safeguards: frozenset[str] = frozenset()
    certifications: tuple[Certification, ...] = ()
    in_scope_of: frozenset[str] = frozenset()  # limited decisions confirmed to cover the recipient
    recipient_sector: str | None = None  # private | public, where a decision's scope depends on it
    consent_purpose: str | None = None

    @property
    def dpf_certified(self) -> bool:
        """Whether any certification under the Data Privacy Framework is recorded."""
        return any(c.framework == "dpf" for c in self.certifications)


@dataclass(frozen=True, slots=True)
class Contract:
    dpa_signed: date | None = None
    vendor_may_use_data: bool = False
    data_ownership: str = "customer"


@dataclass(frozen=True, slots=True)
class VendorCountry:
    """The country of a vendor's headquarters or controlling parent, and how it is known."""

    code: str  # ISO 3166-1 alpha-2
    source: str  # "inventory" (declared) or "catalogue" (the vendor catalogue's headquarters)
    catalogue_id: str | None = None  # the catalogue entry it came from
    reference: str | None = None  # the catalogue's source for it; "memory" means unchecked

    def describe(self) -> str:
        """Where the country comes from, in words, for findings and reports."""
        if self.source != "catalogue":
            return "declared in the inventory"
        checked = f", source: {self.reference}" if self.reference else ""
        return f"from the vendor catalogue entry {self.catalogue_id!r}{checked}; not declared"


@dataclass(frozen=True, slots=True)
class Integration:
    """One SaaS integration as declared in the inventory."""

    id: str
    name: str
    vendor: str
    category: str
    role: str
    data_categories: tuple[str, ...]
    endpoints: tuple[str, ...]
    hosting: tuple[Place, ...]
    support: tuple[Place, ...]
    backups: Backups | None
    retention: Duration | None
    subprocessors: tuple[str, ...]
    transfer: Transfer
    contract: Contract
    source: str  # "inventory/crm.yaml", for messages
    purposes: tuple[str, ...] = ()  # purposes some adequacy decision excludes (immigration-control)
    vendor_country: VendorCountry | None = None  # declared, or filled from the catalogue

    @property
    def hr_data(self) -> bool:
        """Whether the integration holds HR data, which US certifications must cover explicitly."""
        return "employment" in self.data_categories


@dataclass(frozen=True, slots=True)
class Resolution:
    """What DNS said of one hostname: addresses and the CNAME chain, or why there are none."""

    hostname: str
    status: str  # ok | nxdomain | no-answer | timeout | servfail | refused | error
    addresses: tuple[str, ...] = ()
    cname_chain: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class Location:
    """Where one address is, and how that was learnt."""

    address: str
    country: str | None
    source: str  # "ip-ranges:aws", "geoip", or "none"
    provider: str | None = None
    region: str | None = None
    zone: str | None = None  # an AWS Local/Wavelength Zone (network border group) in the region
    service: str | None = None
    network: str | None = None
    asn: int | None = None
    asn_org: str | None = None
    edge: bool = False  # a CDN/anycast edge by its range, service or ASN


@dataclass(frozen=True, slots=True)
class Observation:
    """One endpoint hostname of one integration, resolved and located."""

    integration: str
    hostname: str
    resolution: Resolution
    locations: tuple[Location, ...] = ()
    edge_reason: str | None = None  # why the endpoint counts as a CDN edge, if it does

    @property
    def edge(self) -> bool:
        return self.edge_reason is not None


@dataclass(frozen=True, slots=True)
class PlaceCheck:
    """The verdict on one place an integration's data reaches, with the legal basis behind it."""

    integration: str
    facet: Facet
    place: str  # place spec, or the country for observed endpoints
    country: str | None
    verdict: Verdict
    basis: str  # e.g. "EEA", "Implementing Decision (EU) 2023/1795 of 2023-07-10", "SCCs"
    via: str | None = None  # the sub-processor or hostname the place was reached through
    probes: tuple[str, ...] = field(default=(), compare=False)  # see Finding.probes

    def verdict_fields(self) -> dict[str, Any]:
        """The place and its verdict as JSON values, as reports and `check --format json` show
        them (without the integration)."""
        return {
            "facet": self.facet.value,
            "place": self.place,
            "country": self.country,
            "verdict": self.verdict.value,
            "basis": self.basis,
            "via": self.via,
        }


@dataclass(frozen=True, slots=True)
class Finding:
    """One non-compliance: a rule broken by one integration at one place (or not about a place)."""

    rule: str
    integration: str
    severity: Severity
    article: str
    message: str
    facet: Facet | None = None
    place: str | None = None
    country: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    probes: tuple[str, ...] = field(default=(), compare=False)
    """The probes whose observations the finding rests on ("endpoint:api.example.com"): while
    one of them fails, the finding's absence from a run proves nothing and it stays open."""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The stable identity of the finding across audits."""
        return (self.rule, self.integration, self.facet or "", self.place or "")


PROBED_FACETS = frozenset({Facet.ENDPOINT})
"""Facets whose places are observed by a probe rather than declared: their findings name it."""


def endpoint_probe(hostname: str) -> str:
    """The probe scope of resolving and locating one endpoint hostname.

    Interned: the findings, places and probe outcomes of a large audit name each one several
    times, and then share one string."""
    return sys.intern(f"endpoint:{hostname}")


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """Whether one probe of a run observed what it looks at (`failure` None) or not, and why.

    A probe that failed shows nothing: findings resting on it are carried, not resolved.
    """

    scope: str  # "endpoint:api.example.com", "discovery-dns:example.com", "discovery-page:URL"
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None
