"""Which replica runs the jobs: on PostgreSQL the one holding an advisory lock, on SQLite the only one."""

from __future__ import annotations

import contextlib
import zlib
from typing import Protocol

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

LOCK_NAMESPACE = 0x67647072
"""The first half of the advisory lock key ("gdpr" as a 32-bit integer); the second half is derived
from the state schema, so that deployments sharing one database in separate schemas do not block
each other, while replicas of one deployment compete for the same lock."""

CONNECT_TIMEOUT_SECONDS = 5
# A leader whose database went away must notice within seconds, not after TCP's minutes-long
# retransmission timeout: keepalives and a user timeout bound how long a dead peer goes unnoticed.
_CONNECT_ARGS = {
    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
    "tcp_user_timeout": 10_000,
    "application_name": "gdpr-auditor leader election",
}


class Leadership(Protocol):
    """Tells whether this replica may run jobs; `poll` is called every few seconds."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def single_replica(self) -> bool:
        """True when the backend allows one replica only and leadership is never contested."""
        ...

    @property
    def last_error(self) -> str | None: ...

    def poll(self) -> bool:
        """Try to become leader, or check that leadership still holds; return `is_leader`."""
        ...

    def release(self) -> None:
        """Give leadership up (on shutdown), so a standby takes over at once."""
        ...


class SingleReplica:
    """SQLite (or any backend without advisory locks): one replica, always the leader."""

    single_replica = True
    last_error: str | None = None

    @property
    def is_leader(self) -> bool:
        return True

    def poll(self) -> bool:
        return True

    def release(self) -> None:
        return None


class AdvisoryLock:
    """PostgreSQL: the replica whose dedicated connection holds `pg_try_advisory_lock` leads.

    The lock lives as long as that connection: a replica that dies, or whose connection drops,
    loses it, and PostgreSQL hands it to whichever standby asks next. A failed check therefore
    means lost leadership, and the caller must stop running jobs.
    """

    single_replica = False

    def __init__(self, url: str | URL) -> None:
        self.engine: Engine = create_engine(
            postgres_driver(make_url(url)), poolclass=NullPool, connect_args=_CONNECT_ARGS
        )
        self.last_error: str | None = None
        self._connection: Connection | None = None
        self._key: tuple[int, int] | None = None
        self._leader = False

    @property
    def is_leader(self) -> bool:
        return self._leader

    def poll(self) -> bool:
        try:
            connection = self._connect()
            if self._leader:
                self._leader = self._still_held(connection)
            else:
                self._leader = self._try_lock(connection)
            self.last_error = None
        except SQLAlchemyError as exc:
            self.last_error = short_error(exc)
            self._leader = False
            self._drop()
        return self._leader

    def release(self) -> None:
        if self._connection is not None and self._leader and self._key is not None:
            # Closing the connection below releases the lock anyway; unlocking says so at once.
            with contextlib.suppress(SQLAlchemyError):
                self._connection.execute(
                    text("SELECT pg_advisory_unlock(:space, :key)"),
                    {"space": self._key[0], "key": self._key[1]},
                )
        self._leader = False
        self._drop()
        self.engine.dispose()

    def _connect(self) -> Connection:
        if self._connection is None:
            # Autocommit: the lock is held by the session, and no transaction may stay open.
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            connection.execute(text("SET statement_timeout = '5s'"))
            schema = connection.execute(text("SELECT current_schema()")).scalar() or "public"
            self._key = (LOCK_NAMESPACE, schema_key(str(schema)))
            self._connection = connection
        return self._connection

    def _try_lock(self, connection: Connection) -> bool:
        assert self._key is not None
        acquired = connection.execute(
            text("SELECT pg_try_advisory_lock(:space, :key)"),
            {"space": self._key[0], "key": self._key[1]},
        ).scalar()
        return bool(acquired)

    def _still_held(self, connection: Connection) -> bool:
        assert self._key is not None
        held = connection.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = :space AND objid = :key"
                " AND objsubid = 2"
            ),
            # pg_locks shows the two int4 halves as oids, i.e. unsigned.
            {"space": self._key[0] & 0xFFFFFFFF, "key": self._key[1] & 0xFFFFFFFF},
        ).scalar()
        return bool(held)

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.invalidate()
                self._connection.close()
            self._connection = None


def leadership_for(url: str | URL) -> Leadership:
    """Return the leadership that fits the state database: an advisory lock on PostgreSQL."""
    if make_url(url).get_backend_name() == "postgresql":
        return AdvisoryLock(url)
    return SingleReplica()


def postgres_driver(url: URL) -> URL:
    """Use psycopg (3) for a plain `postgresql://` URL; SQLAlchemy's default is psycopg2."""
    if url.drivername == "postgresql":
        return url.set(drivername="postgresql+psycopg")
    return url


def schema_key(schema: str) -> int:
    """A stable signed 32-bit key for a schema name."""
    return (zlib.crc32(schema.encode()) ^ 0x80000000) - 0x80000000


def short_error(exc: SQLAlchemyError) -> str:
    """The driver's first line, without SQLAlchemy's SQL text and background links."""
    origin = getattr(exc, "orig", None) or exc
    first = str(origin).strip().splitlines()
    return f"{type(origin).__name__}: {first[0] if first else 'no detail'}"
