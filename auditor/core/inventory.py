"""Inventory YAML documents -> validated Integration objects, with errors naming file, entry, key, line."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from auditor.core.durations import Duration, parse_duration
from auditor.core.errors import InvalidInputError, Issue
from auditor.core.model import Backups, Certification, Contract, Integration, Place, Transfer
from auditor.core.places import parse_place
from auditor.core.policies import PolicyData
from auditor.core.policydocs import Sector
from auditor.core.validation import Strict, entries_by_id, issues_from_validation
from auditor.core.yamlsource import YamlDocument, display_name, load_yaml, yaml_files

CATEGORIES = (
    "crm",
    "cdp",
    "email-marketing",
    "analytics",
    "support",
    "cms",
    "webshop",
    "backup",
    "infrastructure",
    "payment",
    "other",
)
DATA_CATEGORIES = (
    "contact",
    "identity",
    "behavioural",
    "payment",
    "financial",
    "location",
    "communications",
    "device",
    "employment",
    "health",
    "special",
    "criminal",
)
"""The data-category vocabulary; `health` and `special` are Art. 9 data, `criminal` Art. 10."""

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _hostname(value: str) -> str:
    name = value.strip().lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"not a valid hostname: {value!r}")
    return name


# An inventory repeats a few dozen durations and places thousands of times: each is parsed
# once per load (errors are not kept, so each bad value is reported where it stands).
_parsed_duration = functools.lru_cache(maxsize=1024)(parse_duration)


def _duration(value: str | None) -> Duration | None:
    return None if value is None else _parsed_duration(value)


def _resolve_places(
    values: Iterable[str], policies: PolicyData, known: dict[str, Place] | None = None
) -> tuple[Place, ...]:
    """Parse place specs, dropping repeats; raises ValueError naming every bad one by index.

    `known` holds the specs already parsed against the same policy data, and gains the new ones.
    """
    places: list[Place] = []
    errors = []
    for index, spec in enumerate(values):
        place = known.get(spec) if known is not None and isinstance(spec, str) else None
        if place is None:
            try:
                place = parse_place(spec, policies)
            except ValueError as exc:
                errors.append(f"[{index}] {exc}")
                continue
            if known is not None and isinstance(spec, str):
                known[spec] = place
        if place not in places:
            places.append(place)
    if errors:
        raise ValueError("; ".join(errors))
    return tuple(places)


def _check_places(values: list[str], info: ValidationInfo) -> list[str]:
    context = info.context or {}
    _resolve_places(values, context["policies"], context.get("places"))
    return values


def _check_duration(value: str) -> str:
    _parsed_duration(value)
    return value


def _policies(info: ValidationInfo) -> PolicyData:
    policies: PolicyData = (info.context or {})["policies"]
    return policies


def _check_limited_decision(value: str, info: ValidationInfo) -> str:
    adequacy = _policies(info).adequacy
    decision = adequacy.decision(value)
    limited = ", ".join(d.id for d in adequacy.limited)
    if decision is None:
        raise ValueError(
            f"unknown adequacy decision {value!r} (limited-scope decisions: {limited})"
        )
    if decision.scope != "limited":
        raise ValueError(
            f"{value!r} is not a limited-scope decision, so there is no scope to confirm "
            f"(limited-scope decisions: {limited})"
        )
    return value


def _check_framework(value: str, info: ValidationInfo) -> str:
    frameworks = _policies(info).adequacy.frameworks
    if value not in frameworks:
        raise ValueError(f"unknown framework {value!r} (known: {', '.join(sorted(frameworks))})")
    return value


def _check_purpose(value: str, info: ValidationInfo) -> str:
    purposes = _policies(info).adequacy.purposes
    if value not in purposes:
        raise ValueError(
            f"unknown purpose {value!r}: only purposes some adequacy decision excludes are "
            f"recorded ({', '.join(sorted(purposes))})"
        )
    return value


PlaceSpecs = Annotated[list[str], AfterValidator(_check_places)]
"""Country codes, cloud regions or organisations, checked against the policy data in the context."""
DurationText = Annotated[str, AfterValidator(_check_duration)]
Hostname = Annotated[str, AfterValidator(_hostname)]
LimitedDecisionId = Annotated[str, AfterValidator(_check_limited_decision)]
FrameworkName = Annotated[str, AfterValidator(_check_framework)]
Purpose = Annotated[str, AfterValidator(_check_purpose)]


class _Backups(Strict):
    regions: PlaceSpecs = []
    retention: DurationText | None = None


class _Certification(Strict):
    framework: FrameworkName
    since: date
    until: date | None = None  # the last day it was valid; null while it still is
    hr: bool = False

    @model_validator(mode="after")
    def _dates(self) -> _Certification:
        if self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


class _Transfer(Strict):
    safeguards: list[Literal["scc", "bcr"]] = []
    certifications: list[_Certification] = []
    dpf_certified: bool = False  # shorthand: a non-HR DPF certification, dates not recorded
    in_scope_of: list[LimitedDecisionId] = []
    recipient_sector: Sector | None = None
    consent_purpose: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_dpf_record(self) -> _Transfer:
        if self.dpf_certified and any(c.framework == "dpf" for c in self.certifications):
            raise ValueError(
                "dpf_certified is a shorthand for a DPF certification with unknown dates; "
                "with a dpf entry in certifications, remove it"
            )
        return self

    def build(self) -> Transfer:
        certifications = tuple(
            Certification(c.framework, c.since, c.until, c.hr) for c in self.certifications
        )
        if self.dpf_certified:
            certifications += (Certification("dpf", shorthand=True),)
        return Transfer(
            safeguards=frozenset(self.safeguards),
            certifications=certifications,
            in_scope_of=frozenset(self.in_scope_of),
            recipient_sector=self.recipient_sector,
            consent_purpose=self.consent_purpose,
        )


class _Contract(Strict):
    dpa_signed: date | None = None
    vendor_may_use_data: bool = False
    data_ownership: Literal["customer", "shared", "vendor"] = "customer"


class _Integration(Strict):
    id: str
    name: str = Field(min_length=1)
    vendor: str | None = None
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    role: Literal["processor", "controller", "joint-controller"]
    data_categories: list[Literal[DATA_CATEGORIES]]  # type: ignore[valid-type]
    endpoints: list[Hostname] = []
    hosting: PlaceSpecs = []
    support: PlaceSpecs = []
    backups: _Backups | None = None
    retention: DurationText | None = None
    subprocessors: list[str] = []
    purposes: list[Purpose] = []
    transfer: _Transfer = _Transfer()
    contract: _Contract = _Contract()

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"id must be a lower-case slug (a-z, 0-9, -): {value!r}")
        return value


def _build(
    entry: _Integration, source: str, policies: PolicyData, known: dict[str, Place] | None = None
) -> Integration:
    def places(values: Iterable[str]) -> tuple[Place, ...]:
        return _resolve_places(values, policies, known)

    backups = None
    if entry.backups is not None:
        backups = Backups(places(entry.backups.regions), _duration(entry.backups.retention))
    return Integration(
        id=entry.id,
        name=entry.name,
        vendor=entry.vendor or entry.name,
        category=entry.category,
        role=entry.role,
        data_categories=tuple(entry.data_categories),
        endpoints=tuple(dict.fromkeys(entry.endpoints)),
        hosting=places(entry.hosting),
        support=places(entry.support),
        backups=backups,
        retention=_duration(entry.retention),
        subprocessors=tuple(dict.fromkeys(entry.subprocessors)),
        purposes=tuple(dict.fromkeys(entry.purposes)),
        transfer=entry.transfer.build(),
        contract=Contract(
            dpa_signed=entry.contract.dpa_signed,
            vendor_may_use_data=entry.contract.vendor_may_use_data,
            data_ownership=entry.contract.data_ownership,
        ),
        source=source,
    )


def parse_inventory(
    doc: YamlDocument, policies: PolicyData
) -> tuple[list[Integration], list[Issue]]:
    """Validate one inventory document; return the valid integrations and every problem found."""
    namer = entries_by_id(doc, "integrations", "integration")
    if not isinstance(doc.data, dict) or "integrations" not in doc.data:
        return [], [Issue(doc.source, "expected a mapping with an 'integrations' list", line=1)]
    known: dict[str, Place] = {}
    context = {"policies": policies, "places": known}
    issues: list[Issue] = []
    integrations: list[Integration] = []
    raw = doc.data["integrations"]
    if not isinstance(raw, list):
        line = doc.line_of(("integrations",))
        return [], [Issue(doc.source, "'integrations' must be a list", line=line)]
    unknown = sorted(str(key) for key in doc.data if key != "integrations")
    issues.extend(
        Issue(doc.source, "unknown key", field=key, line=doc.line_of((key,))) for key in unknown
    )
    # Validate entry by entry, so one bad integration does not hide the others' problems.
    for index, item in enumerate(raw):
        loc = ("integrations", index)
        try:
            entry = _Integration.model_validate(item, context=context)
        except ValidationError as exc:
            issues.extend(issues_from_validation(exc, doc, namer, base=loc))
            continue
        integrations.append(_build(entry, doc.source, policies, known))
    return integrations, issues


def inventory_files(paths: Sequence[Path]) -> tuple[list[Path], list[Issue]]:
    """Expand files and directories into the inventory files they hold, sorted."""
    return yaml_files(paths, "inventory")


def check_references(integrations: Sequence[Integration]) -> list[Issue]:
    """Check ids are unique across files and every sub-processor names an integration."""
    issues: list[Issue] = []
    seen: dict[str, Integration] = {}
    for integration in integrations:
        first = seen.setdefault(integration.id, integration)
        if first is not integration:
            issues.append(
                Issue(
                    integration.source,
                    f"duplicate id, first declared in {first.source}",
                    entry=f"integration {integration.id!r}",
                    field="id",
                )
            )
    for integration in integrations:
        for index, sub in enumerate(integration.subprocessors):
            if sub == integration.id:
                message = "an integration cannot be its own sub-processor"
            elif sub not in seen:
                message = f"unknown integration {sub!r}"
            else:
                continue
            issues.append(
                Issue(
                    integration.source,
                    message,
                    entry=f"integration {integration.id!r}",
                    field=f"subprocessors[{index}]",
                )
            )
    return issues


def load_inventory_file(
    path: Path, policies: PolicyData, display: Path | None = None
) -> tuple[list[Integration], list[Issue]]:
    """Load and validate one inventory file: its valid integrations and every problem found."""
    try:
        doc = load_yaml(path, source=display_name(path, display))
    except InvalidInputError as exc:
        return [], list(exc.issues)
    return parse_inventory(doc, policies)


def load_inventory(
    paths: Sequence[Path], policies: PolicyData, display: Path | None = None
) -> list[Integration]:
    """Load every inventory file under `paths` and validate them together.

    Raises:
        InvalidInputError: with every problem in every file.
    """
    files, issues = inventory_files(paths)
    loaded = [load_inventory_file(path, policies, display) for path in files]
    return combine_inventory(loaded, issues)


def combine_inventory(
    loaded: Iterable[tuple[list[Integration], list[Issue]]], issues: list[Issue]
) -> list[Integration]:
    """The integrations of every file, in file order, checked together (`check_references`).

    Raises:
        InvalidInputError: with `issues`, every file's problems and the references' problems.
    """
    integrations: list[Integration] = []
    for found, problems in loaded:
        integrations.extend(found)
        issues.extend(problems)
    issues.extend(check_references(integrations))
    if issues:
        raise InvalidInputError(issues)
    return integrations
