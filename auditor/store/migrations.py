"""Schema versions: the one this code uses, the one a database has, and the steps between them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Connection, Table, func, inspect, select, text, update
from sqlalchemy.schema import CreateColumn

from auditor.core.model import endpoint_probe
from auditor.store.schema import (
    TABLES,
    audit_runs,
    findings,
    metadata,
    retention_intents,
    schema_meta,
)

Migration = Callable[[Connection], None]
"""Upgrades a database from one schema version to the next, inside the caller's transaction."""


def _initial(connection: Connection) -> None:
    """Version 0 -> 1: create the tables of the first schema (those not there yet)."""
    # Creates the current tables, which the later steps then leave as they are (each step is
    # written to be a no-op on a table created in its final form). When a later step cannot be
    # written that way, freeze the version-1 tables here.
    metadata.create_all(connection, checkfirst=True)


def _longer_verdicts(connection: Connection) -> None:
    """Version 1 -> 2: room for the verdict `scope-unconfirmed` (17 characters) and longer ones."""
    # SQLite does not enforce VARCHAR lengths; PostgreSQL does.
    if connection.dialect.name == "postgresql":
        connection.execute(text("ALTER TABLE place_checks ALTER COLUMN verdict TYPE VARCHAR(32)"))


def _add_column(connection: Connection, table: Table, column: Column[Any]) -> None:
    """Add a column as the schema declares it, unless the table has it already."""
    if column.name in {c["name"] for c in inspect(connection).get_columns(table.name)}:
        return
    spec = CreateColumn(column).compile(dialect=connection.dialect)
    connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {spec}"))


def _probes_of(row: Any) -> list[str]:
    """The endpoint probes a finding stored before version 3 rests on, from its evidence."""
    evidence = row.evidence or {}
    if isinstance(evidence.get("hostnames"), list):  # location-drift
        names = [str(name) for name in evidence["hostnames"]]
    elif isinstance(evidence.get("via"), str):  # transfer rules on observed endpoints
        names = evidence["via"].split(", ")
    else:  # location-unverified: the place is the hostname
        names = [row.place]
    return [endpoint_probe(name) for name in names if name]


def _probes(connection: Connection) -> None:
    """Version 2 -> 3: each finding names the probes it rests on, runs count carried findings.

    Open findings about observed endpoints get their probes from their evidence, so that the
    first audit after the upgrade already carries them through a DNS outage.
    """
    for table, names in (
        (findings, ("probes", "carried_since", "carried_reason")),
        (audit_runs, ("carried", "probes_failed")),
    ):
        for name in names:
            _add_column(connection, table, table.c[name])
    rows = connection.execute(
        select(findings.c.id, findings.c.place, findings.c.evidence, findings.c.probes).where(
            findings.c.facet == "endpoint", findings.c.status == "open"
        )
    ).all()
    for row in rows:
        if not row.probes:
            connection.execute(
                update(findings).where(findings.c.id == row.id).values(probes=_probes_of(row))
            )
    # Discovery findings did not say which domain or page showed them: until a run sees them
    # again, they rest on the whole run (auditor.discovery.job.WHOLE_RUN).
    connection.execute(
        update(findings)
        .where(findings.c.rule == "inventory-undeclared", findings.c.status == "open")
        .values(probes=["discovery"])
    )


def _retention_intents(connection: Connection) -> None:
    """Version 3 -> 4: the retention batches' intents, settled with their evidence records."""
    metadata.create_all(connection, tables=[retention_intents], checkfirst=True)


def _source_transactions(connection: Connection) -> None:
    """Version 4 -> 5: a batch by row address names its data-source transaction."""
    _add_column(connection, retention_intents, retention_intents.c.source_transaction)


MIGRATIONS: tuple[Migration, ...] = (
    _initial,
    _longer_verdicts,
    _probes,
    _retention_intents,
    _source_transactions,
)
"""MIGRATIONS[n] upgrades version n to n + 1; an empty database starts at version 0."""

SCHEMA_VERSION = len(MIGRATIONS)
"""The schema version this code reads and writes."""


def stored_version(connection: Connection) -> int | None:
    """Return the database's schema version: None when it has none of our tables at all.

    Tables without a version marker (an interrupted or pre-release creation) count as version 0.
    """
    inspector = inspect(connection)
    if inspector.has_table(schema_meta.name):
        version = connection.execute(select(schema_meta.c.version)).scalar()
        return 0 if version is None else int(version)
    if any(inspector.has_table(table.name) for table in TABLES):
        return 0
    return None


def migrate(connection: Connection, start: int) -> int:
    """Apply every step from version `start` to this code's version and record it; return it."""
    for step in MIGRATIONS[start:]:
        step(connection)
    stamp(connection, SCHEMA_VERSION)
    return SCHEMA_VERSION


def stamp(connection: Connection, version: int) -> None:
    """Record `version` as the database's schema version (the one marker row)."""
    # The database's clock, not ours: the store reads no clock of its own.
    now = func.current_timestamp()
    updated = connection.execute(
        schema_meta.update().where(schema_meta.c.id == 1).values(version=version, updated_at=now)
    )
    if updated.rowcount == 0:
        connection.execute(schema_meta.insert().values(id=1, version=version, updated_at=now))
