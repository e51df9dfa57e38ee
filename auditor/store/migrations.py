"""Schema versions: the one this code uses, the one a database has, and the steps between them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, func, inspect, select, text

from auditor.store.schema import TABLES, metadata, retention_intents, schema_meta

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


def _retention_intents(connection: Connection) -> None:
    """Version 2 -> 3: the retention batches' intents, settled with their evidence records."""
    metadata.create_all(connection, tables=[retention_intents], checkfirst=True)


MIGRATIONS: tuple[Migration, ...] = (_initial, _longer_verdicts, _retention_intents)
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
