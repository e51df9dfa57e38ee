"""Connections to the state database: one transaction per method, schema versions, evidence.

Only this package opens connections. Every method is one transaction, so a process killed in the
middle of one leaves the state as it was before it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Self

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from auditor.core.chain import EvidenceRecord
from auditor.core.errors import (
    SchemaVersionError,
    StoreError,
)
from auditor.store import evidence, migrations
from auditor.store.engine import WRITE, create_store_engine, display_url, normalise_url

RUNNING, SUCCESS, ERROR, INTERRUPTED = "running", "success", "error", "interrupted"
FINDING_STATES = ("open", "waived", "resolved", "all")
"""What `list_findings(status=...)` accepts: open and unwaived, open under a waiver, resolved, all."""

MAX_ERROR_CHARS = 1000

# pg_advisory_xact_lock key serialising schema creation and upgrades between replicas
# (the bigint key space; the leader lock uses the two-integer one, which never overlaps it).
_SCHEMA_LOCK = 0x6764707273636D61


class StoreConnection:
    """The state database's connections, schema version and the evidence log every aggregate
    seals its writes with; each aggregate's methods are a subclass (see `StateStore`)."""

    def __init__(self, engine: Engine, evidence_key: bytes | None = None) -> None:
        self.engine = engine
        self.evidence_key = evidence_key  # signs evidence records (HMAC) when set
        self.url = display_url(engine.url)
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer = engine.execution_options(**{WRITE: True})
        # Repeatable read on PostgreSQL: the several queries of one scrape see one state.
        self._reader = (
            engine if self._sqlite else engine.execution_options(isolation_level="REPEATABLE READ")
        )
        database = engine.url.database if self._sqlite else None
        # A SQLite file's identity once opened: a file deleted or replaced under an open
        # connection takes writes that nobody will ever read (see `check_file`).
        self._file = database if database and not database.startswith(":memory:") else None
        self._identity: tuple[int, int] | None = None

    @classmethod
    def open(
        cls, url: str, *, check_version: bool = True, evidence_key: bytes | None = None
    ) -> Self:
        """Connect; create the schema in an empty database; refuse another schema version.

        With `check_version=False` nothing is created or checked (for `db status|upgrade`).

        Raises:
            SchemaVersionError: the database's schema is older or newer than this code's.
            StoreError: the URL is unusable or the database cannot be reached.
        """
        store = cls(create_store_engine(normalise_url(url)), evidence_key)
        if check_version:
            try:
                store._ensure_schema()
            except BaseException:
                store.close()
                raise
        store._remember_file()
        return store

    def _remember_file(self) -> None:
        if self._file is not None:
            try:
                status = os.stat(self._file)
            except OSError:
                return  # not created yet (`db status` of a new database)
            self._identity = (status.st_dev, status.st_ino)

    def check_file(self) -> None:
        """Check that a SQLite database file is still the one opened; PostgreSQL always passes.

        Raises:
            StoreError: the file was deleted, or replaced by another one (another device or
                inode): whatever is written now would be lost, and a new connection would
                create an empty database in its place.
        """
        if self._file is None or self._identity is None:
            return
        try:
            status = os.stat(self._file)
        except FileNotFoundError:
            raise StoreError(
                f"the state database {self.url} was deleted while in use; nothing more is "
                "written, so that nothing is lost in a deleted file: restore it from a backup "
                "and restart"
            ) from None
        except OSError as exc:
            raise StoreError(f"the state database {self.url} cannot be checked: {exc}") from None
        if (status.st_dev, status.st_ino) != self._identity:
            raise StoreError(
                f"the state database {self.url} was replaced by another file while in use "
                "(another device or inode); nothing more is written: restart to open the new file"
            )

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def schema_version(self) -> int | None:
        """Return the database's schema version, or None when it has no tables of ours yet."""
        with self._read() as conn:
            return migrations.stored_version(conn)

    def upgrade(self) -> tuple[int | None, int]:
        """Create or upgrade the schema to this code's version; return (before, after).

        Raises:
            SchemaVersionError: the database is newer than this code; nothing is changed.
        """
        with self._write() as conn:
            self._lock_schema(conn)
            found = migrations.stored_version(conn)
            if found is not None and found > migrations.SCHEMA_VERSION:
                raise SchemaVersionError(self.url, found, migrations.SCHEMA_VERSION)
            if found == migrations.SCHEMA_VERSION:
                return found, found
            return found, migrations.migrate(conn, found or 0)

    def _ensure_schema(self) -> None:
        with self._read() as conn:
            found = migrations.stored_version(conn)
        if found is None:
            with self._write() as conn:
                self._lock_schema(conn)
                # Another replica may have created it while we waited for the lock.
                found = migrations.stored_version(conn)
                if found is None:
                    found = migrations.migrate(conn, 0)
        if found != migrations.SCHEMA_VERSION:
            raise SchemaVersionError(self.url, found, migrations.SCHEMA_VERSION)

    def _lock_schema(self, conn: Connection) -> None:
        if not self._sqlite:  # SQLite's BEGIN IMMEDIATE already serialises writers
            conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))

    def _write(self) -> AbstractContextManager[Connection]:
        return self._transaction(self._writer)

    def _read(self) -> AbstractContextManager[Connection]:
        return self._transaction(self._reader)

    @contextmanager
    def _transaction(self, engine: Engine) -> Iterator[Connection]:
        """A transaction on `engine`; the database's errors become StoreError naming it."""
        self.check_file()
        try:
            with engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(self._describe(exc)) from exc

    def _describe(self, exc: SQLAlchemyError) -> str:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [""])[0]
        password = self.engine.url.password
        if password:
            first = first.replace(str(password), "***")
        return f"the state database {self.url}: {type(cause).__name__}: {first}"

    def append_evidence(self, kind: str, content: Mapping[str, Any], at: datetime) -> None:
        """Append one record to the evidence chain (a config reload, a retention batch, ...)."""
        with self._write() as conn:
            evidence.append(conn, kind, content, at, self.evidence_key)

    def evidence_records(self) -> Iterator[EvidenceRecord]:
        """Every evidence record in sequence order, read in batches within one transaction."""
        with self._read() as conn:
            yield from evidence.records(conn)

    def _seal(
        self,
        conn: Connection,
        at: datetime,
        events_after: int | None,
        items: Sequence[tuple[str, Mapping[str, Any]]],
    ) -> None:
        """Append evidence for the finding events written since `events_after`, then `items`."""
        changes: list[tuple[str, Mapping[str, Any], datetime]] = []
        if events_after is not None:
            changes = [
                (f"finding-{row.change}", row.content, row.at)
                for row in evidence.finding_event_items(conn, events_after)
            ]
        changes += [(kind, content, at) for kind, content in items]
        evidence.append_many(conn, changes, self.evidence_key)
