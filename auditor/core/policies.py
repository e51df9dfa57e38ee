"""Loads and validates the policy data: EEA, adequacy decisions, cloud regions, edges, rules."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import ValidationError, field_validator, model_validator

from auditor.core.errors import InvalidInputError, Issue
from auditor.core.iso3166 import COUNTRY_CODES
from auditor.core.model import Facet, Finding, Severity
from auditor.core.validation import Strict, issues_from_validation
from auditor.core.yamlsource import YamlDocument, load_yaml

_T = TypeVar("_T", bound=Strict)
_V = TypeVar("_V")

PROVIDERS = ("aws", "gcp", "azure", "oci", "do", "hetzner", "ovh")


def _country(value: str) -> str:
    if value not in COUNTRY_CODES:
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {value!r}")
    return value


class _Document(Strict):
    title: str
    updated: date
    sources: list[str]


class _Membership(Strict):
    name: str
    since: date | None = None
    until: date | None = None
    note: str | None = None


class _Territory(Strict):
    part_of: str
    name: str
    since: date | None = None  # first day inside the EU or EEA; inclusive
    until: date | None = None  # last day inside the EU or EEA; inclusive
    note: str | None = None

    @model_validator(mode="after")
    def _in_order(self) -> _Territory:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


class EeaDocument(_Document):
    members: dict[str, _Membership]
    territories: dict[str, _Territory] = {}
    aliases: dict[str, str] = {}

    @field_validator("members", "territories")
    @classmethod
    def _iso_keys(cls, value: dict[str, object]) -> dict[str, object]:
        for code in value:
            _country(code)
        return value


Sector = Literal["private", "public"]
SECTORS: tuple[Sector, ...] = ("private", "public")


class Coverage(Strict):
    """Who a decision covers, in terms the audit evaluates against what the inventory records.

    A recipient is outside the decision when the inventory declares it in a sector the decision
    does not cover, or the integration serves a purpose the decision excludes. Inside those
    limits, a `limited` decision covers a recipient only once the DPO confirms it
    (`transfer.in_scope_of`); `confirm` says how.
    """

    sectors: list[Sector] = list(SECTORS)
    excluded_purposes: list[str] = []
    confirm: str | None = None  # the condition the DPO checks before listing it in in_scope_of


# "C(2000) 2304", "C(2021)4800", "C(2025) 4626 final": the number under which the Commission
# notified the decision to the member states.
_COMMISSION_DOCUMENT = re.compile(r"C\(\d{4}\) ?\d{1,5}( final)?")
# "OJ L 215, 25.8.2000, p. 1" (numbered issues, until September 2023) or
# "OJ L, 2026/179, 28.1.2026" (one act per issue, since October 2023).
_OFFICIAL_JOURNAL = re.compile(
    r"OJ L( \d{1,4}, \d{1,2}\.\d{1,2}\.\d{4}, p\. \d{1,4}|, \d{4}/\d{1,5}, \d{1,2}\.\d{1,2}\.\d{4})"
)


class Decision(Strict):
    """One adequacy decision (or interim arrangement) with the days it applies and its scope."""

    id: str
    country: str | None = None
    organisation: str | None = None
    name: str
    instrument: str
    adopted: date
    ended: date | None = None  # first day it no longer applies
    expires: date | None = None  # last day it applies
    scope: Literal["whole", "certified", "limited"]
    scope_note: str | None = None
    framework: str | None = None  # certified: the certification framework it recognises
    covers: Coverage = Coverage()
    source: str | None = None
    commission_document: str | None = None  # C(YYYY) NNNN, where verified
    official_journal: str | None = None  # OJ L ..., where verified

    @field_validator("country")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        return None if value is None else _country(value)

    @field_validator("commission_document")
    @classmethod
    def _document_number(cls, value: str | None) -> str | None:
        if value is not None and not _COMMISSION_DOCUMENT.fullmatch(value):
            raise ValueError(f"not a Commission document number such as C(2000) 2304: {value!r}")
        return value

    @field_validator("official_journal")
    @classmethod
    def _journal(cls, value: str | None) -> str | None:
        if value is not None and not _OFFICIAL_JOURNAL.fullmatch(value):
            raise ValueError(
                "not an Official Journal reference such as 'OJ L 215, 25.8.2000, p. 1' "
                f"or 'OJ L, 2026/179, 28.1.2026': {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if (self.country is None) == (self.organisation is None):
            raise ValueError("exactly one of country and organisation must be set")
        if self.ended is not None and self.ended <= self.adopted:
            raise ValueError("ended must be after adopted")
        if self.expires is not None and self.expires < self.adopted:
            raise ValueError("expires must not be before adopted")
        if (self.scope == "certified") != (self.framework is not None):
            raise ValueError("a framework is set for, and only for, a certified decision")
        if self.scope == "limited" and (not self.scope_note or not self.covers.confirm):
            raise ValueError("a limited decision needs scope_note and covers.confirm")
        return self

    def last_day(self) -> date | None:
        """The last day the decision applies, or None if it has no end yet."""
        ends = [self.expires] if self.expires is not None else []
        if self.ended is not None:
            ends.append(date.fromordinal(self.ended.toordinal() - 1))
        return min(ends) if ends else None

    def in_force(self, on: date) -> bool:
        """Whether the decision applies on the given day."""
        if on < self.adopted:
            return False
        if self.ended is not None and on >= self.ended:
            return False
        return self.expires is None or on <= self.expires

    def citation(self) -> str:
        """Return the instrument and its date, with the Commission document number where known."""
        text = f"{self.instrument} of {self.adopted.isoformat()}"
        if self.commission_document is not None:
            text += f", {self.commission_document}"
        return text


class _Organisation(Strict):
    name: str


class AdequacyDocument(_Document):
    organisations: dict[str, _Organisation] = {}
    purposes: dict[str, str] = {}  # purposes some decision excludes -> what they are
    decisions: list[Decision]

    @model_validator(mode="after")
    def _references(self) -> AdequacyDocument:
        ids = [decision.id for decision in self.decisions]
        duplicates = sorted({ident for ident in ids if ids.count(ident) > 1})
        if duplicates:
            raise ValueError(f"duplicate decision ids: {', '.join(duplicates)}")
        for decision in self.decisions:
            if (
                decision.organisation is not None
                and decision.organisation not in self.organisations
            ):
                raise ValueError(f"decision {decision.id!r} names unknown organisation")
            unknown = sorted(set(decision.covers.excluded_purposes) - set(self.purposes))
            if unknown:
                raise ValueError(
                    f"decision {decision.id!r} excludes purposes not listed under purposes: "
                    + ", ".join(unknown)
                )
        return self

    def decision(self, ident: str) -> Decision | None:
        """Return the decision with this id, or None."""
        return next((d for d in self.decisions if d.id == ident), None)

    @property
    def limited(self) -> list[Decision]:
        """The decisions that cover a recipient only once the DPO confirms it."""
        return [d for d in self.decisions if d.scope == "limited"]

    @property
    def frameworks(self) -> dict[str, Decision]:
        """Certification framework -> the certified decision recognising it."""
        return {d.framework: d for d in self.decisions if d.framework is not None}


class _Region(Strict):
    country: str
    location: str
    aliases: list[str] = []

    @field_validator("country")
    @classmethod
    def _iso(cls, value: str) -> str:
        return _country(value)


class _Zone(Strict):
    """A zone of a region in another place than the region: an AWS Local or Wavelength Zone."""

    region: str
    kind: Literal["local-zone", "wavelength-zone"]
    country: str
    location: str

    @field_validator("country")
    @classmethod
    def _iso(cls, value: str) -> str:
        return _country(value)


def _lower_case_keys(value: dict[str, _V]) -> dict[str, _V]:
    for key in value:
        if key != key.lower() or key != key.strip() or not key:
            raise ValueError(f"names are lower case without spaces: {key!r}")
    return value


class RegionDocument(_Document):
    provider: str
    name: str
    regions: dict[str, _Region]
    zones: dict[str, _Zone] = {}  # by network border group / zone name
    left_out: dict[str, str] = {}  # names the provider lists but the table does not map -> why

    @field_validator("zones", "left_out")
    @classmethod
    def _keys(cls, value: dict[str, _V]) -> dict[str, _V]:
        return _lower_case_keys(value)

    @model_validator(mode="after")
    def _consistent(self) -> RegionDocument:
        for name, zone in self.zones.items():
            if zone.region not in self.regions:
                raise ValueError(f"zone {name!r} names unknown region {zone.region!r}")
            # The name is the parent region's followed by the zone's own part (us-east-1-qro-1).
            if not name.startswith(zone.region + "-"):
                raise ValueError(f"zone {name!r} does not start with its region {zone.region!r}")
        mapped = set(self.regions) | set(self.zones)
        aliases = {alias.lower() for region in self.regions.values() for alias in region.aliases}
        for name, reason in self.left_out.items():
            if name in mapped or name in aliases:
                raise ValueError(f"{name!r} is both mapped and left out")
            if not reason.strip():
                raise ValueError(f"left_out {name!r} needs a reason")
        return self


class EdgeDocument(_Document):
    cname_suffixes: dict[str, str]
    range_services: dict[str, list[str]] = {}
    asns: dict[int, str] = {}


class _Rule(Strict):
    severity: Severity
    article: str
    title: str
    remedy: str


class RuleDocument(_Document):
    rules: dict[str, _Rule]


@dataclass(frozen=True, slots=True)
class Region:
    """A cloud region, or a zone of one that sits elsewhere (then `zone` names it)."""

    provider: str
    name: str  # the canonical (long) name of the region
    country: str
    location: str
    zone: str | None = None  # an AWS Local/Wavelength Zone's network border group

    @property
    def spec_name(self) -> str:
        """The name a place spec keeps: the zone's when it is a zone, else the region's."""
        return self.zone or self.name


@dataclass(frozen=True, slots=True)
class PolicyData:
    """Everything the rules need to know about the world, with the digest of the files it came from."""

    eea: EeaDocument
    adequacy: AdequacyDocument
    regions: Mapping[str, Mapping[str, Region]]  # provider -> name, alias or zone -> Region
    edges: EdgeDocument
    rules: Mapping[str, _Rule]
    digest: str
    directory: str
    left_out: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # provider -> why

    @property
    def known_countries(self) -> frozenset[str]:
        return COUNTRY_CODES

    def canonical_country(self, code: str) -> str:
        """Map EU document codes (EL, UK) to ISO codes; other codes pass unchanged."""
        return self.eea.aliases.get(code, code)

    def in_eea(self, country: str, on: date) -> bool:
        """Whether the country (or territory of a member) is in the EEA on the given day.

        A territory counts only between its own `since` and `until`, and only while the member
        state it belongs to is itself in the EEA.
        """
        country = self.canonical_country(country)
        territory = self.eea.territories.get(country)
        if territory is not None:
            if not _between(on, territory.since, territory.until):
                return False
            country = territory.part_of
        member = self.eea.members.get(country)
        if member is None:
            return False
        return _between(on, member.since, member.until)

    def region(self, provider: str, name: str) -> Region | None:
        """Return the cloud region by its name, alias or zone name, or None if it is not known.

        A zone (an AWS Local Zone's network border group) comes back as its own Region, with
        the zone's country and `zone` set: it may be in another country than its region.
        """
        return self.regions.get(provider, {}).get(name.lower())

    def finding(
        self,
        rule: str,
        integration: str,
        message: str,
        *,
        facet: Facet | None = None,
        place: str | None = None,
        country: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        probes: tuple[str, ...] = (),
    ) -> Finding:
        """Build a finding with the severity and article this policy data gives the rule;
        `probes` name the probes its evidence came from (see `Finding.probes`)."""
        info = self.rules[rule]
        return Finding(
            rule=rule,
            integration=integration,
            severity=Severity(info.severity),
            article=info.article,
            message=message,
            facet=facet,
            place=place,
            country=country,
            evidence=dict(evidence or {}),
            probes=probes,
        )

    def region_country(self, provider: str, name: str) -> str | None:
        region = self.region(provider, name)
        return region.country if region is not None else None


def _between(on: date, since: date | None, until: date | None) -> bool:
    """Whether `on` lies between the inclusive bounds (None: unbounded)."""
    return (since is None or since <= on) and (until is None or on <= until)


def shipped_policies() -> Path:
    """Return the directory of the policy data shipped with the package."""
    packaged = resources.files("auditor") / "_policies"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "policies"


def _parse(model: type[_T], doc: YamlDocument, issues: list[Issue]) -> _T | None:
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        issues.extend(issues_from_validation(exc, doc))
        return None


def _region_table(
    provider: str, doc: RegionDocument, source: str, issues: list[Issue]
) -> dict[str, Region]:
    """Index a region file's regions by name and alias, and its zones by zone name."""
    table: dict[str, Region] = {}

    def add(key: str, region: Region) -> None:
        if key.lower() in table:
            issues.append(Issue(source, "region name used twice", entry=key.lower()))
        table[key.lower()] = region

    for name, entry in doc.regions.items():
        region = Region(provider, name.lower(), entry.country, entry.location)
        for key in (name, *entry.aliases):
            add(key, region)
    for name, zone in doc.zones.items():
        add(name, Region(provider, zone.region, zone.country, zone.location, zone=name))
    return table


def load_policies(directory: Path | None = None) -> PolicyData:
    """Load and validate the policy data in `directory` (None: the shipped policies).

    Raises:
        InvalidInputError: a file is missing, unreadable or invalid (every problem is listed).
    """
    root = directory or shipped_policies()
    issues: list[Issue] = []
    digest = hashlib.sha256()
    docs: dict[str, YamlDocument] = {}
    names = ["eea.yaml", "adequacy.yaml", "edges.yaml", "rules.yaml"]
    names += [f"regions/{provider}.yaml" for provider in PROVIDERS]
    for name in names:
        path = root / name
        try:
            doc = load_yaml(path, source=str(path))
        except InvalidInputError as exc:
            issues.extend(exc.issues)
            continue
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        docs[name] = doc
    if issues:
        raise InvalidInputError(issues)
    eea = _parse(EeaDocument, docs["eea.yaml"], issues)
    adequacy = _parse(AdequacyDocument, docs["adequacy.yaml"], issues)
    edges = _parse(EdgeDocument, docs["edges.yaml"], issues)
    rules = _parse(RuleDocument, docs["rules.yaml"], issues)
    regions: dict[str, dict[str, Region]] = {}
    left_out: dict[str, dict[str, str]] = {}
    for provider in PROVIDERS:
        doc = docs[f"regions/{provider}.yaml"]
        parsed = _parse(RegionDocument, doc, issues)
        if parsed is None:
            continue
        regions[provider] = _region_table(provider, parsed, doc.source, issues)
        left_out[provider] = dict(parsed.left_out)
    if issues or eea is None or adequacy is None or edges is None or rules is None:
        raise InvalidInputError(issues)
    return PolicyData(
        eea=eea,
        adequacy=adequacy,
        regions=regions,
        edges=edges,
        rules=rules.rules,
        digest=digest.hexdigest(),
        directory=str(root),
        left_out=left_out,
    )
