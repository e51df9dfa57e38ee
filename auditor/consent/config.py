"""The `consent:` configuration section -> validated, frozen consent mappings (the data sources
they name are `auditor.sources.config`'s section, validated first).

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from auditor.core.errors import Issue
from auditor.core.model import Integration
from auditor.core.tablerefs import identifier, row_filter, table_name
from auditor.core.validation import Strict
from auditor.core.yamlsource import Loc, YamlDocument
from auditor.sources.config import (
    ConfigRef,
    DataSourceSettings,
    TableSelection,
    config_issue,
    config_ref,
    section,
    table_selection,
    unknown_source,
)

_INTEGRATION_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # the inventory's id slug
# --- the YAML models --------------------------------------------------------------------------


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
    """What the consent check reads: the validated `consent:` mappings and the `data_sources:`
    they name."""

    data_sources: Mapping[str, DataSourceSettings] = field(default_factory=dict)
    consent: Mapping[str, ConsentMapping] = field(default_factory=dict)


# --- building them ----------------------------------------------------------------------------


def parse_consent(
    doc: YamlDocument, sources: Mapping[str, DataSourceSettings], key: str = "consent"
) -> tuple[dict[str, ConsentMapping], list[Issue]]:
    """Validate the consent mappings under `key` against the known data sources."""
    raw, issues = section(doc, key, ConsentModel)
    mappings: dict[str, ConsentMapping] = {}
    for integration, entry in raw.items():
        loc: Loc = (key, integration)
        if not _INTEGRATION_ID.match(integration):
            issues.append(
                config_issue(doc, loc, f"not an integration id (a-z, 0-9, -): {integration!r}")
            )
            continue
        named = [("shared", entry.shared.source), ("consents", entry.consents.source)]
        problems = [
            config_issue(doc, (*loc, part, "source"), unknown_source(source, sources))
            for part, source in named
            if source is not None and source not in sources
        ]
        if problems:
            issues += problems
            continue
        shared = SharedSubjects(_selection(doc, (*loc, "shared"), entry.shared), entry.shared.key)
        records = _records(doc, (*loc, "consents"), entry.consents)
        mappings[integration] = ConsentMapping(
            integration, entry.purpose, shared, records, config_ref(doc, loc)
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


def _selection(doc: YamlDocument, loc: Loc, model: _TableModel) -> TableSelection:
    return table_selection(model.source, model.table, model.filter, config_ref(doc, loc))


def _records(
    doc: YamlDocument, loc: Loc, model: ConsentsModel
) -> ConsentRecords | ImportedConsents:
    if model.imported:
        return ImportedConsents(config_ref(doc, loc))
    # The model's validator has made sure that a table's keys are all there.
    assert model.source and model.table and model.subject and model.purpose and model.granted_at
    return ConsentRecords(
        selection=table_selection(model.source, model.table, model.filter, config_ref(doc, loc)),
        subject=model.subject,
        purpose=model.purpose,
        granted_at=model.granted_at,
        withdrawn_at=model.withdrawn_at,
        notice_version=model.notice_version,
        method=model.method,
    )
