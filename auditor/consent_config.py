"""The `data_sources:` and `consent:` configuration sections -> validated, frozen settings.

```yaml
data_sources:                      # the organisation's databases, by name
  crm:
    url_env: CRM_DATABASE_URL      # or url: (credentials should come from the environment)
    read_only: true                # default true: opened read-only where the dialect allows
consent:
  mailchimp:                       # an integration id whose transfer relies on consent
    purpose: newsletter-us         # matched against the consents' purpose/recipient column
    shared:                        # who is shared with the integration
      source: crm
      table: customers             # schema-qualified allowed: sales.customers
      key: customer_id
      filter: {synced_to_mailchimp: true}
    consents:
      source: crm                  # another data source is fine: the keys are then merged
      table: consents
      subject: customer_id
      purpose: purpose
      granted_at: granted_at
      withdrawn_at: withdrawn_at   # required; null when withdrawing deletes the consent row
      notice_version: null         # optional columns, checked against the schema
      method: null
      filter: {}                   # optional, as for shared
```

- A data source has exactly one of `url` (an SQLAlchemy URL) and `url_env` (the name of an
  environment variable holding one, read when the source is opened). A relative SQLite path is
  relative to the configuration file. `postgresql://` means psycopg 3, `mysql://` and
  `mariadb://` mean PyMySQL.
- A filter maps a column to a value: equality; a list means IN (a `null` in it adds IS NULL);
  `null` means IS NULL. Values are YAML scalars (strings, numbers, booleans, dates), bound as
  parameters, never pasted into SQL. There is no way to write raw SQL here, on purpose.
- `consents: {imported: true}` instead of a table: the consents imported into the state store
  with `gdpr-auditor consent import FILE --purpose PURPOSE`, for this mapping's `purpose`. They
  are held as keyed hashes of the subject keys (GDPR_AUDITOR_SUBJECT_KEY), so the shared keys
  are hashed with the same key and looked up; no other key is allowed under `consents:` then.
- `table` is `name` or `schema.name` (split at the last dot). Identifiers are matched against the
  reflected schema when the sources are opened (`auditor.sources.schema_check`), exactly, or
  ignoring case when only one column matches that way.

Parsing reads no environment variable and opens no database: it only checks the document.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from auditor.errors import InvalidInputError, Issue
from auditor.model import Integration
from auditor.tablerefs import identifier, row_filter, table_name
from auditor.validation import Strict, format_loc, issues_from_validation
from auditor.yamlsource import Loc, YamlDocument

FilterScalar = str | bool | int | float | date | None
"""A value a filter compares a column with; bool before int, so `true` stays a boolean."""

RowFilter = dict[str, FilterScalar | list[FilterScalar]]
"""The YAML form of a filter: column -> value, or a list of values (IN)."""

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_INTEGRATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # the inventory's id slug
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_Model = TypeVar("_Model", bound=BaseModel)


# --- the YAML models --------------------------------------------------------------------------


class DataSourceModel(Strict):
    """One entry under `data_sources:`."""

    url: str | None = None
    url_env: str | None = None
    read_only: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                make_url(value)
            except ArgumentError:
                # The text may hold a password: never repeat it.
                raise ValueError("not an SQLAlchemy URL (dialect+driver://...)") from None
        return value

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"not an environment variable name: {value!r}")
        return value

    @model_validator(mode="after")
    def _one_url(self) -> DataSourceModel:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url and url_env")
        return self


class _TableModel(Strict):
    source: str = Field(min_length=1)
    table: str = Field(min_length=1)
    filter: dict[str, Any] = {}

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        return table_name(value)

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: dict[str, Any]) -> dict[str, Any]:
        return row_filter(value)


class SharedModel(_TableModel):
    """`consent.<id>.shared`: the rows whose subjects are shared with the integration."""

    key: str

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return identifier(value)


class ConsentsModel(Strict):
    """`consent.<id>.consents`: where consents are recorded: a table, or `imported: true` for the
    consents loaded into the state store by `gdpr-auditor consent import`."""

    imported: bool = False
    source: str | None = Field(default=None, min_length=1)
    table: str | None = Field(default=None, min_length=1)
    filter: dict[str, Any] = {}
    subject: str | None = None
    purpose: str | None = None
    granted_at: str | None = None
    withdrawn_at: str | None = None  # required with a table, but may be null
    notice_version: str | None = None
    method: str | None = None

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        return None if value is None else table_name(value)

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: dict[str, Any]) -> dict[str, Any]:
        return row_filter(value)

    @field_validator("subject", "purpose", "granted_at", "withdrawn_at", "notice_version", "method")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else identifier(value)

    @model_validator(mode="wrap")
    @classmethod
    def _table_or_imported(
        cls, data: Any, handler: ModelWrapValidatorHandler[ConsentsModel]
    ) -> ConsentsModel:
        # Reported where they are, like pydantic's own: `consents.withdrawn_at: required key is
        # missing`, `consents.table: not used with imported: true`.
        problems: list[InitErrorDetails] = []
        if isinstance(data, dict):
            if data.get("imported") is True:
                problems = [
                    InitErrorDetails(
                        type=PydanticCustomError("imported", "not used with imported: true"),
                        loc=(key,),
                        input=data[key],
                    )
                    for key in _TABLE_KEYS
                    if key in data
                ]
            else:
                problems = [
                    InitErrorDetails(type="missing", loc=(key,), input=data)
                    for key in _REQUIRED_KEYS
                    if key not in data
                ]
        try:
            model = handler(data)
        except ValidationError as exc:
            if not problems:
                raise
            problems = [*_details(exc), *problems]
            raise ValidationError.from_exception_data(cls.__name__, problems) from None
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, problems)
        return model


_REQUIRED_KEYS = ("source", "table", "subject", "purpose", "granted_at", "withdrawn_at")
"""The keys of `consents:` that a table needs (withdrawn_at may be null, but must be there)."""
_TABLE_KEYS = (*_REQUIRED_KEYS, "filter", "notice_version", "method")


def _details(exc: ValidationError) -> list[InitErrorDetails]:
    """A ValidationError's errors, as details to raise again together with more."""
    details: list[InitErrorDetails] = []
    for error in exc.errors(include_url=False):
        detail = InitErrorDetails(type=error["type"], loc=error["loc"], input=error["input"])
        if "ctx" in error:
            detail["ctx"] = error["ctx"]
        details.append(detail)
    return details


class ConsentModel(Strict):
    """One entry under `consent:`, named by the integration id."""

    purpose: str = Field(min_length=1)
    shared: SharedModel
    consents: ConsentsModel


# --- the validated settings -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConfigRef:
    """Where a setting is written: the file, its dotted path and the line of each key under it."""

    source: str
    path: str  # "consent.mailchimp.shared"
    lines: Mapping[str, int] = field(default_factory=dict, compare=False)

    def issue(self, message: str, key: str | None = None) -> Issue:
        """Return an Issue about this setting, or about `key` ("key", "filter.flag") under it."""
        where = f"{self.path}.{key}" if key else self.path
        line = self.lines.get(key or "") or self.lines.get("")
        return Issue(self.source, message, field=where, line=line)


@dataclass(frozen=True, slots=True)
class DataSourceSettings:
    """A named database of the organisation; the URL itself is read when it is opened."""

    name: str
    url: str | None  # None: read the environment variable `url_env`
    url_env: str | None
    read_only: bool
    ref: ConfigRef


@dataclass(frozen=True, slots=True)
class FilterTerm:
    """One filter condition: the column equals one of `values`, or is NULL if `or_null`."""

    column: str
    values: tuple[str | bool | int | float | date, ...]
    or_null: bool = False


@dataclass(frozen=True, slots=True)
class TableSelection:
    """Rows of one table in one data source, narrowed by a structured filter."""

    source: str
    schema: str | None
    table: str
    filter: tuple[FilterTerm, ...]
    ref: ConfigRef

    @property
    def display_name(self) -> str:
        """The table as written in the configuration (`sales.customers`)."""
        return self.table if self.schema is None else f"{self.schema}.{self.table}"


@dataclass(frozen=True, slots=True)
class SharedSubjects:
    """Who is shared with an integration: the key column of the selected rows."""

    selection: TableSelection
    key: str


@dataclass(frozen=True, slots=True)
class ConsentRecords:
    """Where consents are recorded, and which column holds what."""

    selection: TableSelection
    subject: str
    purpose: str
    granted_at: str
    withdrawn_at: str | None
    notice_version: str | None = None
    method: str | None = None

    def columns(self) -> dict[str, str]:
        """The configured columns by their setting name (`granted_at` -> `created`)."""
        named = {
            "subject": self.subject,
            "purpose": self.purpose,
            "granted_at": self.granted_at,
            "withdrawn_at": self.withdrawn_at,
            "notice_version": self.notice_version,
            "method": self.method,
        }
        return {key: value for key, value in named.items() if value is not None}


@dataclass(frozen=True, slots=True)
class ImportedConsents:
    """Consents imported into the state store (`gdpr-auditor consent import`), held as keyed
    hashes of the subject keys and matched against the shared subjects hashed with the same key."""

    ref: ConfigRef


@dataclass(frozen=True, slots=True)
class ConsentMapping:
    """For one integration relying on consent: who is shared, and where consents are."""

    integration: str
    purpose: str
    shared: SharedSubjects
    consents: ConsentRecords | ImportedConsents
    ref: ConfigRef

    @property
    def imported(self) -> bool:
        """Whether the consents are the imported ones, in the state store."""
        return isinstance(self.consents, ImportedConsents)

    @property
    def same_source(self) -> bool:
        """Whether shared subjects and consents are in one database (then SQL does it all)."""
        records = self.consents
        return isinstance(records, ConsentRecords) and (
            self.shared.selection.source == records.selection.source
        )


@dataclass(frozen=True, slots=True)
class ConsentSettings:
    """The validated `data_sources:` and `consent:` sections."""

    data_sources: Mapping[str, DataSourceSettings] = field(default_factory=dict)
    consent: Mapping[str, ConsentMapping] = field(default_factory=dict)


# --- building them ----------------------------------------------------------------------------


def load_consent_settings(doc: YamlDocument, base: Path | None = None) -> ConsentSettings:
    """Validate the `data_sources:` and `consent:` sections of a configuration document.

    Other top-level keys are left to their own parsers. `base` is the configuration file's
    directory, for relative SQLite paths.

    Raises:
        InvalidInputError: every problem found, each naming the file, the key path and the line.
    """
    sources, issues = parse_data_sources(doc, base)
    mappings, more = parse_consent(doc, sources)
    issues += more
    if issues:
        raise InvalidInputError(issues)
    return ConsentSettings(data_sources=sources, consent=mappings)


def parse_data_sources(
    doc: YamlDocument, base: Path | None = None, key: str = "data_sources"
) -> tuple[dict[str, DataSourceSettings], list[Issue]]:
    """Validate the data sources under `key`; return the valid ones and every problem found."""
    raw, issues = _section(doc, key, DataSourceModel)
    sources: dict[str, DataSourceSettings] = {}
    for name, entry in raw.items():
        loc = (key, name)
        if not _SOURCE_NAME.match(name):
            issues.append(
                _issue(doc, loc, f"not a data source name (letters, digits, _ and -): {name!r}")
            )
            continue
        url = entry.url if entry.url is None else _relative_sqlite(entry.url, base)
        sources[name] = DataSourceSettings(
            name, url, entry.url_env, entry.read_only, _ref(doc, loc)
        )
    return sources, issues


def parse_consent(
    doc: YamlDocument, sources: Mapping[str, DataSourceSettings], key: str = "consent"
) -> tuple[dict[str, ConsentMapping], list[Issue]]:
    """Validate the consent mappings under `key` against the known data sources."""
    raw, issues = _section(doc, key, ConsentModel)
    mappings: dict[str, ConsentMapping] = {}
    for integration, entry in raw.items():
        loc: Loc = (key, integration)
        if not _INTEGRATION_ID.match(integration):
            issues.append(_issue(doc, loc, f"not an integration id (a-z, 0-9, -): {integration!r}"))
            continue
        named = [("shared", entry.shared.source), ("consents", entry.consents.source)]
        problems = [
            _issue(doc, (*loc, part, "source"), _unknown_source(source, sources))
            for part, source in named
            if source is not None and source not in sources
        ]
        if problems:
            issues += problems
            continue
        shared = SharedSubjects(_selection(doc, (*loc, "shared"), entry.shared), entry.shared.key)
        records = _records(doc, (*loc, "consents"), entry.consents)
        mappings[integration] = ConsentMapping(
            integration, entry.purpose, shared, records, _ref(doc, loc)
        )
    return mappings, issues


def check_against_inventory(
    mappings: Mapping[str, ConsentMapping], integrations: Iterable[Integration]
) -> list[Issue]:
    """Return Issues for consent mappings naming no integration of the inventory, or one whose
    transfer does not rely on consent (`transfer.consent_purpose` is null there)."""
    known = {integration.id: integration for integration in integrations}
    issues = []
    for ident, mapping in mappings.items():
        found = known.get(ident)
        if found is None:
            issues.append(mapping.ref.issue(f"no integration {ident!r} in the inventory"))
        elif found.transfer.consent_purpose is None:
            issues.append(
                mapping.ref.issue(
                    f"integration {ident!r} does not rely on consent in the inventory "
                    "(set transfer.consent_purpose there)"
                )
            )
    return issues


def table_selection(
    source: str, table: str, row_filter: RowFilter, ref: ConfigRef
) -> TableSelection:
    """Build a TableSelection from validated YAML values (for other sections reusing tables)."""
    schema, _, name = table.rpartition(".")
    return TableSelection(source, schema or None, name, _terms(row_filter), ref)


def _section(
    doc: YamlDocument, key: str, model: type[_Model]
) -> tuple[dict[str, _Model], list[Issue]]:
    data = doc.data.get(key) if isinstance(doc.data, dict) else None
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return {}, [_issue(doc, (key,), "expected a mapping of names to settings")]
    entries: dict[str, _Model] = {}
    issues: list[Issue] = []
    adapter = TypeAdapter(model)
    # Entry by entry, so that one bad entry does not hide the others' problems.
    for name, value in data.items():
        if not isinstance(name, str):
            issues.append(_issue(doc, (key,), f"names must be strings, not {name!r}"))
            continue
        try:
            entries[name] = adapter.validate_python(value)
        except ValidationError as exc:
            issues += issues_from_validation(exc, doc, base=(key, name))
    return entries, issues


def _issue(doc: YamlDocument, loc: Loc, message: str) -> Issue:
    return Issue(doc.source, message, field=format_loc(loc), line=doc.line_of(loc))


def _ref(doc: YamlDocument, loc: Loc) -> ConfigRef:
    size = len(loc)
    lines = {
        format_loc(key[size:]) or "": line for key, line in doc.lines.items() if key[:size] == loc
    }
    return ConfigRef(doc.source, format_loc(loc) or "", lines)


def _selection(doc: YamlDocument, loc: Loc, model: _TableModel) -> TableSelection:
    return table_selection(model.source, model.table, model.filter, _ref(doc, loc))


def _records(
    doc: YamlDocument, loc: Loc, model: ConsentsModel
) -> ConsentRecords | ImportedConsents:
    if model.imported:
        return ImportedConsents(_ref(doc, loc))
    # The model's validator has made sure that a table's keys are all there.
    assert model.source and model.table and model.subject and model.purpose and model.granted_at
    return ConsentRecords(
        selection=table_selection(model.source, model.table, model.filter, _ref(doc, loc)),
        subject=model.subject,
        purpose=model.purpose,
        granted_at=model.granted_at,
        withdrawn_at=model.withdrawn_at,
        notice_version=model.notice_version,
        method=model.method,
    )


def _terms(row_filter: RowFilter) -> tuple[FilterTerm, ...]:
    terms = []
    for column, wanted in row_filter.items():
        values: Sequence[FilterScalar] = wanted if isinstance(wanted, list) else [wanted]
        present = tuple(value for value in values if value is not None)
        terms.append(FilterTerm(column, present, or_null=len(present) < len(values)))
    return tuple(terms)


def _unknown_source(name: str, sources: Mapping[str, Any]) -> str:
    known = ", ".join(sorted(sources)) or "none are configured"
    return f"no data source named {name!r} under data_sources (data sources: {known})"


def _relative_sqlite(url: str, base: Path | None) -> str:
    # A relative SQLite path is relative to the configuration file, like every other path.
    if base is None or not url.startswith("sqlite:///") or url.startswith("sqlite:////"):
        return url
    rest = url.removeprefix("sqlite:///")
    path, query = rest.partition("?")[::2]
    if not path or path == ":memory:" or path.startswith("file:"):
        return url
    return f"sqlite:///{base / path}" + (f"?{query}" if query else "")
