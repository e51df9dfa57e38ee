"""The `data_sources:` configuration section and the settings every section naming a table
shares: where a setting is written (`ConfigRef`), and a table narrowed by a filter.

A data source has exactly one of `url` (an SQLAlchemy URL) and `url_env` (the name of an
environment variable holding one, read when the source is opened). A relative SQLite path is
relative to the configuration file. Parsing reads no environment variable and opens no database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError, field_validator, model_validator

from auditor.core.errors import Issue
from auditor.core.validation import Strict, format_loc, issues_from_validation
from auditor.core.yamlsource import Loc, YamlDocument

FilterScalar = str | bool | int | float | date | None
"""A value a filter compares a column with; bool before int, so `true` stays a boolean."""

RowFilter = dict[str, FilterScalar | list[FilterScalar]]
"""The YAML form of a filter: column -> value, or a list of values (IN)."""

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

ModelT = TypeVar("ModelT", bound=BaseModel)


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


def parse_data_sources(
    doc: YamlDocument, base: Path | None = None, key: str = "data_sources"
) -> tuple[dict[str, DataSourceSettings], list[Issue]]:
    """Validate the data sources under `key`; return the valid ones and every problem found."""
    raw, issues = section(doc, key, DataSourceModel)
    sources: dict[str, DataSourceSettings] = {}
    for name, entry in raw.items():
        loc = (key, name)
        if not _SOURCE_NAME.match(name):
            issues.append(
                config_issue(
                    doc, loc, f"not a data source name (letters, digits, _ and -): {name!r}"
                )
            )
            continue
        url = entry.url if entry.url is None else _relative_sqlite(entry.url, base)
        sources[name] = DataSourceSettings(
            name, url, entry.url_env, entry.read_only, config_ref(doc, loc)
        )
    return sources, issues


def table_selection(
    source: str, table: str, row_filter: RowFilter, ref: ConfigRef
) -> TableSelection:
    """Build a TableSelection from validated YAML values (for other sections reusing tables)."""
    schema, _, name = table.rpartition(".")
    return TableSelection(source, schema or None, name, _terms(row_filter), ref)


def section(
    doc: YamlDocument, key: str, model: type[ModelT]
) -> tuple[dict[str, ModelT], list[Issue]]:
    data = doc.data.get(key) if isinstance(doc.data, dict) else None
    if data is None:
        return {}, []
    if not isinstance(data, dict):
        return {}, [config_issue(doc, (key,), "expected a mapping of names to settings")]
    entries: dict[str, ModelT] = {}
    issues: list[Issue] = []
    adapter = TypeAdapter(model)
    # Entry by entry, so that one bad entry does not hide the others' problems.
    for name, value in data.items():
        if not isinstance(name, str):
            issues.append(config_issue(doc, (key,), f"names must be strings, not {name!r}"))
            continue
        try:
            entries[name] = adapter.validate_python(value)
        except ValidationError as exc:
            issues += issues_from_validation(
                exc, doc, base=(key, name), model=model if isinstance(model, type) else None
            )
    return entries, issues


def config_issue(doc: YamlDocument, loc: Loc, message: str) -> Issue:
    return Issue(doc.source, message, field=format_loc(loc), line=doc.line_of(loc))


def config_ref(doc: YamlDocument, loc: Loc) -> ConfigRef:
    size = len(loc)
    lines = {
        format_loc(key[size:]) or "": line for key, line in doc.lines.items() if key[:size] == loc
    }
    return ConfigRef(doc.source, format_loc(loc) or "", lines)


def _terms(row_filter: RowFilter) -> tuple[FilterTerm, ...]:
    terms = []
    for column, wanted in row_filter.items():
        values: Sequence[FilterScalar] = wanted if isinstance(wanted, list) else [wanted]
        present = tuple(value for value in values if value is not None)
        terms.append(FilterTerm(column, present, or_null=len(present) < len(values)))
    return tuple(terms)


def unknown_source(name: str, sources: Mapping[str, Any]) -> str:
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
