"""Retention policy YAML files -> validated, frozen RetentionPolicy objects, with errors naming the
file, the policy id, the key and the line.

```yaml
policies:
  - id: crm-contacts-2y          # unique slug across every retention file
    source: crm                  # a data source under data_sources: in the configuration
    table: contacts              # schema-qualified allowed: sales.contacts
    key: id                      # a unique, orderable column: names each batch's records
    timestamp: last_activity_at  # the retention period counts from this column (date or timestamp)
    keep_for: P2Y                # ISO 8601 duration
    filter: {status: inactive}   # optional: column -> value, or a list of values; null is IS NULL
    legal_hold: {column: legal_hold}   # optional: a boolean column, true = held; or
    # legal_hold: {table: held_contacts, key: contact_id, filter: {active: true}}
    action: anonymise            # report (default) | anonymise | delete
    anonymise:                   # required with action: anonymise, not allowed otherwise
      email: {hash: true}        # a keyed hash (HMAC-SHA256) of the value
      name: null                 # NULL
      phone: {value: redacted}   # a fixed value
    batch_size: 1000             # rows per batch, each batch its own short transaction
    max_rows_per_run: 100000     # at most this many rows processed per run
    max_share: 0.2               # refuse a run processing more than this share of the table
    mode: plan                   # plan (default) | enforce: whether the daemon's job enforces
    integration: crm             # optional: the inventory integration the records belong to
    dependents:                  # optional: rows of other tables that go with each record
      - {table: contact_emails, key: contact_id}   # (see `auditor.retention.dependents`)
```

- Tables, columns and filter values are checked against the reflected schema when a policy is
  bound to its data source (`auditor.retention.tables.bind_policy`), not here: this module only
  reads files.
- A legal-hold column is held when true; NULL counts as not held. A legal-hold table holds the
  keys listed in it (narrowed by its optional filter) and must be in the policy's data source.
- `anonymise` may not name the key, the timestamp or the legal-hold column.
- `dependents` are deleted in the record's own transaction when it is deleted or anonymised, so a
  `report` policy has none.
- A keyed hash is `hmac:` followed by the 64 hex digits of HMAC-SHA256 over the value's text,
  keyed by the environment variable GDPR_AUDITOR_ANONYMISE_KEY (read by the command line and the
  daemon, never stored). The same value always gives the same hash, so records stay linkable
  without showing the value. A value counts as already hashed only in the exact form written:
  `hmac:` and 64 lower-case hex digits, nothing before or after (`auditor.retention.anonymised`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from auditor.core.durations import Duration, DurationText, parse_duration
from auditor.core.errors import InvalidInputError, Issue
from auditor.core.model import Integration
from auditor.core.tablerefs import identifier, is_filter_value
from auditor.core.validation import (
    Strict,
    document_schema,
    entries_by_id,
    format_loc,
    issues_from_validation,
)
from auditor.core.yamlsource import Loc, YamlDocument, display_name, load_yaml, yaml_files
from auditor.retention.dependents import (
    Dependent,
    DependentModel,
    Name,
    RowFilterModel,
    TableName,
    build_dependents,
    sub_lines,
)
from auditor.sources.config import ConfigRef, DataSourceSettings, TableSelection, table_selection

Action = Literal["report", "anonymise", "delete"]
Mode = Literal["plan", "enforce"]

ANONYMISE_KEY_ENV = "GDPR_AUDITOR_ANONYMISE_KEY"
"""The environment variable holding the secret of keyed hashes (and of key-range hashes)."""
HASH_PREFIX = "hmac:"
"""What every keyed hash starts with; with its 64 lower-case hex digits, how an anonymised value
is told from a live one."""
HASH_DIGITS = 64
"""The hex digits of HMAC-SHA256 after the prefix."""
HASH_LENGTH = len(HASH_PREFIX) + HASH_DIGITS

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class _LegalHold(Strict):
    column: Name | None = None
    table: TableName | None = None
    key: Name | None = None
    filter: RowFilterModel = {}

    @model_validator(mode="after")
    def _one_kind(self) -> _LegalHold:
        if (self.column is None) == (self.table is None):
            raise ValueError("set either column (a boolean column) or table and key")
        if self.column is not None and (self.key is not None or self.filter):
            raise ValueError("key and filter belong to a legal-hold table, not a column")
        if self.table is not None and self.key is None:
            raise ValueError("a legal-hold table needs key: the column holding the held keys")
        return self


class _Replacement(Strict):
    hash: bool | None = None
    value: str | bool | int | float | date | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _scalar(cls, value: object) -> object:
        if not is_filter_value(value):
            raise ValueError("expected a string, number, boolean or date")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> _Replacement:
        given = self.model_fields_set
        if given == {"hash"}:
            if self.hash is not True:
                raise ValueError("hash: true is the only hash setting (or use null or value)")
            return self
        if given == {"value"}:
            if self.value is None:
                raise ValueError("for NULL write the column with a null value, not {value: null}")
            return self
        raise ValueError("expected null, {hash: true} or {value: ...}")


class _Policy(Strict):
    id: str
    description: str | None = None
    integration: str | None = None
    source: str = Field(min_length=1)
    table: TableName
    key: Name
    timestamp: Name
    keep_for: DurationText
    filter: RowFilterModel = {}
    legal_hold: _LegalHold | None = None
    action: Action = "report"
    anonymise: dict[str, _Replacement | None] = {}
    batch_size: int = Field(default=1000, ge=1, le=100_000, strict=True)
    max_rows_per_run: int = Field(default=100_000, ge=1, strict=True)
    max_share: float = Field(default=0.2, gt=0, le=1)
    mode: Mode = "plan"
    dependents: list[DependentModel] = []

    @field_validator("id", "integration")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not _ID.match(value):
            raise ValueError(f"must be a lower-case slug (a-z, 0-9, -): {value!r}")
        return value

    @field_validator("anonymise")
    @classmethod
    def _columns(cls, value: dict[str, _Replacement | None]) -> dict[str, _Replacement | None]:
        for column in value:
            identifier(column)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> _Policy:
        if self.action == "anonymise" and not self.anonymise:
            raise ValueError("action anonymise needs anonymise: the columns and their replacements")
        if self.action != "anonymise" and self.anonymise:
            raise ValueError(f"anonymise is only used with action: anonymise, not {self.action}")
        if self.action == "report" and self.dependents:
            raise ValueError(
                "dependents go with records that are deleted or anonymised: not with action report"
            )
        protected = {"key": self.key, "timestamp": self.timestamp}
        if self.legal_hold is not None and self.legal_hold.column is not None:
            protected["legal_hold.column"] = self.legal_hold.column
        for setting, column in protected.items():
            if column in self.anonymise:
                raise ValueError(f"anonymise may not change column {column!r}, the {setting}")
        return self


class _PolicyFile(Strict):
    """A retention file as written: only its `policies` list (for the JSON Schema)."""

    policies: list[_Policy]


def retention_json_schema() -> dict[str, Any]:
    """The JSON Schema of a retention-policy file, for editors.

    Tables, columns and data sources are checked against the configuration and the databases'
    schemas by the auditor only.
    """
    return document_schema(
        _PolicyFile,
        "gdpr-auditor retention policies",
        "Retention policies: per dataset in the organisation's databases, which records, how "
        "long they are kept, and what happens after (report, anonymise or delete).",
    )


# --- the validated policies ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Replacement:
    """What one column becomes when a record is anonymised: NULL, a fixed value, or a keyed hash."""

    column: str
    kind: Literal["null", "value", "hash"]
    value: str | bool | int | float | date | None = None


@dataclass(frozen=True, slots=True)
class LegalHold:
    """Records that must be kept whatever their age: a boolean column, or a table of held keys."""

    column: str | None = None
    table: TableSelection | None = None  # in the policy's data source
    key: str | None = None  # the held table's column holding the policy table's keys


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """One dataset's retention: which records, how long they are kept, and what happens after."""

    id: str
    selection: TableSelection  # data source, table and filter
    key: str
    timestamp: str
    keep_for: Duration
    action: Action
    anonymise: tuple[Replacement, ...]
    legal_hold: LegalHold | None
    batch_size: int
    max_rows_per_run: int
    max_share: float
    mode: Mode
    integration: str | None
    description: str | None
    ref: ConfigRef = field(compare=False)
    dependents: tuple[Dependent, ...] = ()

    @property
    def source(self) -> str:
        """The name of the data source holding the table."""
        return self.selection.source

    @property
    def subject(self) -> str:
        """What findings name as the integration: the one given, else the data source."""
        return self.integration or self.source

    def issue(self, message: str, key: str | None = None) -> Issue:
        """An Issue about this policy, or about `key` (`table`, `legal_hold.column`) in it."""
        line = self.ref.lines.get(key or "") or self.ref.lines.get("")
        return Issue(self.ref.source, message, entry=f"policy {self.id!r}", field=key, line=line)


def parse_retention(doc: YamlDocument) -> tuple[list[RetentionPolicy], list[Issue]]:
    """Validate one retention document; return the valid policies and every problem found."""
    if not isinstance(doc.data, dict) or "policies" not in doc.data:
        return [], [Issue(doc.source, "expected a mapping with a 'policies' list", line=1)]
    raw = doc.data["policies"]
    if not isinstance(raw, list):
        return [], [Issue(doc.source, "'policies' must be a list", line=doc.line_of(("policies",)))]
    issues = [
        Issue(doc.source, "unknown key", field=str(key), line=doc.line_of((key,)))
        for key in doc.data
        if key != "policies"
    ]
    namer = entries_by_id(doc, "policies", "policy")
    policies: list[RetentionPolicy] = []
    # Entry by entry, so that one bad policy does not hide the others' problems.
    for index, item in enumerate(raw):
        loc: Loc = ("policies", index)
        try:
            entry = _Policy.model_validate(item)
        except ValidationError as exc:
            issues.extend(issues_from_validation(exc, doc, namer, base=loc, model=_Policy))
            continue
        policies.append(_build(entry, _ref(doc, loc)))
    return policies, issues


def load_retention_policies(
    paths: Sequence[Path], display: Path | None = None
) -> list[RetentionPolicy]:
    """Load every retention file under `paths` (files, or directories of .yaml/.yml files).

    `display` is the directory file names are shown relative to (the configuration's).

    Raises:
        InvalidInputError: with every problem in every file, duplicate ids included.
    """
    files, issues = yaml_files(paths, "retention")
    policies: list[RetentionPolicy] = []
    for path in files:
        try:
            doc = load_yaml(path, source=display_name(path, display))
        except InvalidInputError as exc:
            issues.extend(exc.issues)
            continue
        found, problems = parse_retention(doc)
        policies.extend(found)
        issues.extend(problems)
    issues.extend(check_unique(policies))
    if issues:
        raise InvalidInputError(issues)
    return policies


def check_unique(policies: Iterable[RetentionPolicy]) -> list[Issue]:
    """An Issue for every policy whose id an earlier policy already has."""
    seen: dict[str, RetentionPolicy] = {}
    issues = []
    for policy in policies:
        first = seen.setdefault(policy.id, policy)
        if first is not policy:
            issues.append(policy.issue(f"duplicate id, first used in {first.ref.source}", "id"))
    return issues


def check_references(
    policies: Iterable[RetentionPolicy],
    data_sources: Mapping[str, DataSourceSettings],
    integrations: Iterable[Integration] | None = None,
) -> list[Issue]:
    """Issues for policies naming a data source that is not configured, or (when `integrations`
    is given) an integration that is not in the inventory."""
    known = None if integrations is None else {integration.id for integration in integrations}
    issues = []
    for policy in policies:
        if policy.source not in data_sources:
            listed = ", ".join(sorted(data_sources)) or "none are configured"
            message = f"no data source named {policy.source!r} (data sources: {listed})"
            issues.append(policy.issue(message, "source"))
        if known is not None and policy.integration is not None and policy.integration not in known:
            message = f"no integration {policy.integration!r} in the inventory"
            issues.append(policy.issue(message, "integration"))
    return issues


def _build(entry: _Policy, ref: ConfigRef) -> RetentionPolicy:
    hold = None
    if entry.legal_hold is not None:
        raw = entry.legal_hold
        held_table = None
        if raw.table is not None:
            held_ref = ConfigRef(ref.source, "legal_hold", sub_lines(ref.lines, "legal_hold"))
            held_table = table_selection(entry.source, raw.table, raw.filter, held_ref)
        hold = LegalHold(column=raw.column, table=held_table, key=raw.key)
    return RetentionPolicy(
        id=entry.id,
        selection=table_selection(entry.source, entry.table, entry.filter, ref),
        key=entry.key,
        timestamp=entry.timestamp,
        keep_for=parse_duration(entry.keep_for),
        action=entry.action,
        anonymise=tuple(_replacement(column, raw) for column, raw in entry.anonymise.items()),
        legal_hold=hold,
        batch_size=entry.batch_size,
        max_rows_per_run=entry.max_rows_per_run,
        max_share=entry.max_share,
        mode=entry.mode,
        integration=entry.integration,
        description=entry.description,
        ref=ref,
        dependents=build_dependents(entry.source, entry.dependents, ref),
    )


def _replacement(column: str, raw: _Replacement | None) -> Replacement:
    if raw is None:
        return Replacement(column, "null")
    if raw.hash:
        return Replacement(column, "hash")
    return Replacement(column, "value", raw.value)


def _ref(doc: YamlDocument, loc: Loc) -> ConfigRef:
    size = len(loc)
    lines = {
        format_loc(key[size:]) or "": line for key, line in doc.lines.items() if key[:size] == loc
    }
    return ConfigRef(doc.source, format_loc(loc) or "", lines)
