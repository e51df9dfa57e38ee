"""A retention policy's dependents: the rows of other tables that belong to each record and go with
it, and the shared rows they point to, which go once nothing points to them any more.

```yaml
    dependents:                          # optional; not with action: report
      - table: email_addr_bean_rel       # rows deleted in the record's own transaction, when the
        key: bean_id                     # record is deleted or anonymised; key: their column that
        filter: {bean_module: Leads}     # holds the record's key; filter: optional, as a policy's
        shared:                          # optional: rows the dependent rows point to, which other
          table: email_addresses         # records may point to as well (one address, several
          key: id                        # people); key: their key column; column: the dependent
          column: email_address_id       # table's column pointing at it
          referenced_by:                 # optional: other tables pointing at them, each with the
            - {table: emails_email_addr_rel, key: email_address_id}   # column (and filter)
```

A shared row is deleted in the same transaction as the dependent rows pointing to it, once no
row of a dependent table pointing at that table (whatever its filter) and no row of a
`referenced_by` table (narrowed by its filter) points to it any more. This module only reads the settings; the tables and columns
are checked against the reflected schema when the policy is bound
(`auditor.retention.cascade.bind_dependents`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator

from auditor.core.tablerefs import identifier, row_filter, table_name
from auditor.core.validation import Strict
from auditor.sources.config import ConfigRef, TableSelection, table_selection

Name = Annotated[str, AfterValidator(identifier)]
TableName = Annotated[str, AfterValidator(table_name)]
RowFilterModel = Annotated[dict[str, Any], AfterValidator(row_filter)]


class ReferenceModel(Strict):
    """One entry of `referenced_by`: a table whose `key` column points at shared rows."""

    table: TableName
    key: Name
    filter: RowFilterModel = {}


class SharedModel(Strict):
    """`shared:` under a dependent."""

    table: TableName
    key: Name
    column: Name
    referenced_by: list[ReferenceModel] = []


class DependentModel(Strict):
    """One entry of `dependents:`."""

    table: TableName
    key: Name
    filter: RowFilterModel = {}
    shared: SharedModel | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    """Rows of a table pointing at shared rows through their `key` column (narrowed by a filter)."""

    selection: TableSelection
    key: str


@dataclass(frozen=True, slots=True)
class SharedRows:
    """Rows that dependent rows point to through `column`; deleted once nothing points to them."""

    selection: TableSelection
    key: str
    column: str  # in the dependent table
    referenced_by: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class Dependent:
    """Rows of another table holding a record's key in `key`: deleted with the record."""

    selection: TableSelection
    key: str
    shared: SharedRows | None = None

    @property
    def setting(self) -> str:
        """Where it is written in its policy: `dependents[0]`."""
        return self.selection.ref.path


def build_dependents(
    source: str, entries: Sequence[DependentModel], ref: ConfigRef
) -> tuple[Dependent, ...]:
    """The validated `dependents` entries of a policy in data source `source`; `ref` is where the
    policy is written (the entries' settings are named `dependents[i]...` under it)."""
    built = []
    for index, entry in enumerate(entries):
        path = f"dependents[{index}]"
        shared = None
        if entry.shared is not None:
            shared_path = f"{path}.shared"
            references = tuple(
                Reference(
                    table_selection(
                        source,
                        item.table,
                        item.filter,
                        _under(ref, f"{shared_path}.referenced_by[{number}]"),
                    ),
                    item.key,
                )
                for number, item in enumerate(entry.shared.referenced_by)
            )
            shared = SharedRows(
                table_selection(source, entry.shared.table, {}, _under(ref, shared_path)),
                entry.shared.key,
                entry.shared.column,
                references,
            )
        selection = table_selection(source, entry.table, entry.filter, _under(ref, path))
        built.append(Dependent(selection, entry.key, shared))
    return tuple(built)


def _under(ref: ConfigRef, prefix: str) -> ConfigRef:
    """A ConfigRef for the setting at `prefix` under the policy: its keys' lines, and its own
    line as `""`; its Issues name the field `prefix.key`."""
    return ConfigRef(ref.source, prefix, sub_lines(ref.lines, prefix))


def sub_lines(lines: Mapping[str, int], prefix: str) -> dict[str, int]:
    """The lines of the keys under `prefix` (`legal_hold`, `dependents[0]`), relative to it."""
    found = {}
    for key, line in lines.items():
        if key == prefix:
            found[""] = line
        elif key.startswith(prefix + "."):
            found[key.removeprefix(prefix + ".")] = line
    return found
