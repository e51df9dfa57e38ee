"""Loads and validates the policy data: EEA, adequacy decisions, cloud regions, edges, rules and
the laws that reach vendors."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from pydantic import ValidationError

from auditor.core.errors import InvalidInputError, Issue
from auditor.core.iso3166 import COUNTRY_CODES
from auditor.core.model import Facet, Finding, Severity
from auditor.core.policydocs import (
    AdequacyDocument,
    EdgeDocument,
    EeaDocument,
    JurisdictionDocument,
    RegionDocument,
    RuleDocument,
    RuleEntry,
)
from auditor.core.validation import Strict, issues_from_validation
from auditor.core.yamlsource import YamlDocument, load_yaml

_T = TypeVar("_T", bound=Strict)

PROVIDERS = ("aws", "gcp", "azure", "oci", "do", "hetzner", "ovh")


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


class FindingDetails(TypedDict, total=False):
    """The keyword arguments of `PolicyData.finding`, for the callers that pass them on."""

    facet: Facet | None
    place: str | None
    country: str | None
    evidence: Mapping[str, Any] | None
    probes: tuple[str, ...]
    unrecorded: bool


@dataclass(frozen=True, slots=True)
class PolicyData:
    """Everything the rules need to know about the world, with the digest of the files it came from."""

    eea: EeaDocument
    adequacy: AdequacyDocument
    regions: Mapping[str, Mapping[str, Region]]  # provider -> name, alias or zone -> Region
    edges: EdgeDocument
    rules: Mapping[str, RuleEntry]
    jurisdictions: JurisdictionDocument
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
        unrecorded: bool = False,
        shared: dict[object, dict[str, Any]] | None = None,
    ) -> Finding:
        """Build a finding with the severity and article this policy data gives the rule;
        `probes` name the probes its evidence came from (see `Finding.probes`); `unrecorded`
        findings (nothing on record to judge) take the rule's `unrecorded_severity`, if it has one.

        The finding holds a copy of `evidence`; with a `shared` memo, findings with equal evidence
        hold one copy (a large audit's findings repeat a few tens of thousands of evidence values
        hundreds of thousands of times). Evidence is never changed once in a finding."""
        info = self.rules[rule]
        severity = info.severity
        if unrecorded and info.unrecorded_severity is not None:
            severity = info.unrecorded_severity
        kept = dict(evidence or {})
        if shared is not None:
            with suppress(TypeError):  # unhashable somewhere inside: the finding keeps its own
                kept = shared.setdefault(_frozen(kept), kept)
        return Finding(
            rule=rule,
            integration=integration,
            severity=Severity(severity),
            article=info.article,
            message=message,
            facet=facet,
            place=place,
            country=country,
            evidence=kept,
            probes=probes,
        )

    def region_country(self, provider: str, name: str) -> str | None:
        region = self.region(provider, name)
        return region.country if region is not None else None


def _frozen(value: Any) -> tuple[object, ...]:
    """A flat, hashable token sequence, equal only for equal JSON-like values of the same types
    (True and 1, a list and a tuple, stay apart); raises TypeError for a value with something
    unhashable in it. One flat tuple: the memo's keys cost less than the values they save."""
    tokens: list[object] = []
    _tokens(value, tokens.append)
    return tuple(tokens)


def _tokens(value: Any, add: Callable[[object], None]) -> None:
    if value is None or type(value) is str:
        add(value)
    elif isinstance(value, dict):
        add(dict)
        for key, item in value.items():
            _tokens(key, add)
            _tokens(item, add)
        add(_END)
    elif isinstance(value, list | tuple):
        add(type(value))
        for item in value:
            _tokens(item, add)
        add(_END)
    else:
        hash(value)
        add(type(value))
        add(value)


_END = object()


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
        issues.extend(issues_from_validation(exc, doc, model=model))
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
    names = ["eea.yaml", "adequacy.yaml", "edges.yaml", "rules.yaml", "jurisdictions.yaml"]
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
    jurisdictions = _parse(JurisdictionDocument, docs["jurisdictions.yaml"], issues)
    regions: dict[str, dict[str, Region]] = {}
    left_out: dict[str, dict[str, str]] = {}
    for provider in PROVIDERS:
        doc = docs[f"regions/{provider}.yaml"]
        parsed = _parse(RegionDocument, doc, issues)
        if parsed is None:
            continue
        regions[provider] = _region_table(provider, parsed, doc.source, issues)
        left_out[provider] = dict(parsed.left_out)
    if (
        issues
        or eea is None
        or adequacy is None
        or edges is None
        or rules is None
        or jurisdictions is None
    ):
        raise InvalidInputError(issues)
    return PolicyData(
        eea=eea,
        adequacy=adequacy,
        regions=regions,
        edges=edges,
        rules=rules.rules,
        jurisdictions=jurisdictions,
        digest=digest.hexdigest(),
        directory=str(root),
        left_out=left_out,
    )
