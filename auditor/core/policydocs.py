"""The policy data files' schemas: the EEA, adequacy decisions, cloud regions, CDN edges, rule
severities and the laws that reach vendors, as written in policies/."""

from __future__ import annotations

import re
from datetime import date
from typing import Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from auditor.core.iso3166 import COUNTRY_CODES
from auditor.core.model import Severity
from auditor.core.validation import Strict

_V = TypeVar("_V")


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


class RuleEntry(Strict):
    severity: Severity
    article: str
    title: str
    remedy: str
    # The severity when what the rule judges is not recorded at all (a vendor country nobody
    # knows, no restore test on record): said as a finding, never taken as fine.
    unrecorded_severity: Severity | None = None


class RuleDocument(_Document):
    rules: dict[str, RuleEntry]


_LAW_ID = re.compile(r"^[a-z]{2}-[a-z0-9-]{1,60}$")


class Law(Strict):
    """A law under which a country's authorities can compel a company there to give access to
    data it controls, wherever the data rests."""

    id: str  # "us-cloud-act": the country's code in lower case, then a slug
    name: str
    citation: str  # "18 U.S.C. § 2713"
    reach: str  # who it binds and what it lets the authorities demand
    # URLs the facts were checked against, or "memory" (unchecked: the DPO checks them).
    sources: list[str] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _LAW_ID.match(value):
            raise ValueError(f"an id is a country code and a slug, such as us-cloud-act: {value!r}")
        return value

    @field_validator("sources")
    @classmethod
    def _sourced(cls, value: list[str]) -> list[str]:
        for source in value:
            if source != "memory" and not source.startswith(("https://", "http://")):
                raise ValueError(f"a source is a URL or 'memory' (unchecked): {source!r}")
        return value

    def describe(self) -> str:
        """The law's name and citation, as a message names it."""
        return f"{self.name} ({self.citation})"


class JurisdictionDocument(_Document):
    countries: dict[str, list[Law]]

    @field_validator("countries")
    @classmethod
    def _consistent(cls, value: dict[str, list[Law]]) -> dict[str, list[Law]]:
        ids: list[str] = []
        for code, laws in value.items():
            _country(code)
            if not laws:
                raise ValueError(f"{code}: list at least one law, or leave the country out")
            for law in laws:
                if not law.id.startswith(code.lower() + "-"):
                    raise ValueError(f"{code}: law id {law.id!r} must start with {code.lower()}-")
                ids.append(law.id)
        duplicates = sorted({ident for ident in ids if ids.count(ident) > 1})
        if duplicates:
            raise ValueError(f"duplicate law ids: {', '.join(duplicates)}")
        return value

    def laws(self, country: str) -> tuple[Law, ...]:
        """The laws of the country the policy data knows (none when it knows none)."""
        return tuple(self.countries.get(country, ()))
