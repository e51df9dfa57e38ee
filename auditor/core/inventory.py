"""Inventory YAML documents -> validated Integration objects, with errors naming file, entry, key, line."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from auditor.core.durations import Duration, DurationText, parse_duration, parsed_duration
from auditor.core.errors import InvalidInputError, Issue
from auditor.core.inventory_fields import (
    SLUG,
    CountryCode,
    FrameworkName,
    Generations,
    Hostname,
    LimitedDecisionId,
    PlaceSpecs,
    Purpose,
    resolve_places,
)
from auditor.core.model import (
    BackupDocumentation,
    Backups,
    Certification,
    Contract,
    Integration,
    Place,
    Transfer,
    VendorCountry,
)
from auditor.core.policies import PolicyData
from auditor.core.policydocs import Sector
from auditor.core.references import check_references, line_finder
from auditor.core.validation import (
    Strict,
    document_schema,
    entries_by_id,
    issues_from_validation,
)
from auditor.core.yamlsource import YamlDocument, display_name, load_yaml, yaml_files

T = TypeVar("T")

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
    "unclassified",
)
"""The data-category vocabulary; `health` and `special` are Art. 9 data, `criminal` Art. 10.
`unclassified` is personal data whose kind is not yet known (imports write it where the source
does not say): the integration still counts as holding personal data."""

BACKUP_TYPES = ("full", "incremental", "differential")


def _duration(value: str | None) -> Duration | None:
    return None if value is None else parsed_duration(value)


class _Documented(Strict):
    at: str = Field(min_length=1)  # a URL or the name of the document
    reviewed: date  # the day it was last reviewed


class _Backups(Strict):
    regions: PlaceSpecs = []
    retention: DurationText | None = None
    type: Literal[BACKUP_TYPES] | None = None  # type: ignore[valid-type]
    generations: Generations | None = None  # name -> how long that generation is kept
    restore_tested: date | None = None  # the last successful restore test
    documented: _Documented | None = None

    def build(self, places: tuple[Place, ...]) -> Backups:
        documented = self.documented
        return Backups(
            regions=places,
            retention=_duration(self.retention),
            kind=self.type,
            generations=tuple(
                (name, parse_duration(text)) for name, text in (self.generations or {}).items()
            ),
            restore_tested=self.restore_tested,
            documented=None
            if documented is None
            else BackupDocumentation(documented.at, documented.reviewed),
        )


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
    vendor_country: CountryCode | None = None  # headquarters or controlling parent
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
        if not SLUG.match(value):
            raise ValueError(f"id must be a lower-case slug (a-z, 0-9, -): {value!r}")
        return value


class _InventoryFile(Strict):
    """An inventory file as written: only its `integrations` list (for the JSON Schema)."""

    integrations: list[_Integration]


def inventory_json_schema() -> dict[str, Any]:
    """The JSON Schema of an inventory file, for editors: the keys, their types and vocabularies.

    What needs the policy data (known regions, decision ids, frameworks, purposes) and what
    spans files (unique ids, sub-processors) is checked by the auditor only.
    """
    return document_schema(
        _InventoryFile,
        "gdpr-auditor inventory",
        "The SaaS integrations that receive personal data: one or many files, each with an "
        "`integrations` list.",
    )


def _build(
    entry: _Integration,
    source: str,
    policies: PolicyData,
    known: dict[str, Place] | None = None,
    shared: dict[Any, Any] | None = None,
) -> Integration:
    """The integration of a validated entry. Equal parts of integrations (their transfer and
    contract records, backups, places, data categories: immutable values most entries of a
    large inventory repeat) are one object per `shared` table, not one per entry."""
    table: dict[Any, Any] = {} if shared is None else shared

    def one(value: T) -> T:
        return table.setdefault(value, value)  # type: ignore[no-any-return]

    def places(values: Iterable[str]) -> tuple[Place, ...]:
        return one(resolve_places(values, policies, known))

    backups = None
    if entry.backups is not None:
        backups = one(entry.backups.build(places(entry.backups.regions)))
    home = None
    if entry.vendor_country is not None:
        home = one(VendorCountry(entry.vendor_country, "inventory"))
    return Integration(
        id=entry.id,
        name=entry.name,
        vendor=entry.vendor or entry.name,
        category=one(entry.category),
        role=one(entry.role),
        data_categories=one(tuple(entry.data_categories)),
        endpoints=tuple(dict.fromkeys(entry.endpoints)),
        hosting=places(entry.hosting),
        support=places(entry.support),
        backups=backups,
        retention=_duration(entry.retention),
        subprocessors=one(tuple(dict.fromkeys(entry.subprocessors))),
        purposes=one(tuple(dict.fromkeys(entry.purposes))),
        vendor_country=home,
        transfer=one(entry.transfer.build()),
        contract=one(
            Contract(
                dpa_signed=entry.contract.dpa_signed,
                vendor_may_use_data=entry.contract.vendor_may_use_data,
                data_ownership=entry.contract.data_ownership,
            )
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
    shared: dict[Any, Any] = {}
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
            issues.extend(issues_from_validation(exc, doc, namer, base=loc, model=_Integration))
            continue
        integrations.append(_build(entry, doc.source, policies, known, shared))
    return integrations, issues


__all__ = ["check_references", "load_inventory", "parse_inventory"]


def inventory_files(paths: Sequence[Path]) -> tuple[list[Path], list[Issue]]:
    """Expand files and directories into the inventory files they hold, sorted."""
    return yaml_files(paths, "inventory")


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
    return combine_inventory(files, loaded, issues, display)


def combine_inventory(
    files: Sequence[Path],
    loaded: Iterable[tuple[list[Integration], list[Issue]]],
    issues: list[Issue],
    display: Path | None = None,
) -> list[Integration]:
    """The integrations of every file (`loaded`, one item per file of `files`), in file order,
    checked together (`check_references`, naming lines by reading a file again when needed).

    Raises:
        InvalidInputError: with `issues`, every file's problems and the references' problems.
    """
    sources = {display_name(path, display): path for path in files}
    integrations: list[Integration] = []
    for found, problems in loaded:
        integrations.extend(found)
        issues.extend(problems)
    issues.extend(check_references(integrations, line_finder(integrations, sources)))
    if issues:
        raise InvalidInputError(issues)
    return integrations
