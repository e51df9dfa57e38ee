"""Connecting to the state database: URLs (passwords hidden), SQLite's WAL and transaction modes."""

from __future__ import annotations

import json
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from auditor.core.errors import MissingDriverError, StoreError, missing_driver

BUSY_TIMEOUT_SECONDS = 30.0
"""How long a SQLite writer waits for another one (the daemon, a CLI waiver) before failing."""

WRITE = "gdpr_auditor_write"
"""The execution option marking an engine whose transactions write (BEGIN IMMEDIATE on SQLite)."""


def normalise_url(url: str) -> URL:
    """Parse a SQLite or PostgreSQL URL; PostgreSQL goes through psycopg 3.

    Raises:
        StoreError: the text is not a URL of a supported database.
    """
    try:
        parsed = _parse(url)
    except ArgumentError:
        raise StoreError("the state database URL is not a valid SQLAlchemy URL") from None
    except ValueError:
        # make_url reads the port as an integer; its message would quote the URL.
        raise StoreError("the state database URL's port is not a number") from None
    backend = parsed.get_backend_name()
    if backend in {"postgresql", "postgres"}:
        if parsed.drivername in {"postgresql", "postgres"}:
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    if backend == "sqlite":
        return parsed
    raise StoreError(
        f"the state database must be SQLite or PostgreSQL, not {backend} "
        f"({parsed.render_as_string(hide_password=True)})"
    )


def _parse(url: str) -> URL:
    """make_url, with `postgres://` (Heroku style) read as `postgresql://`."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url.removeprefix("postgres://")
    return make_url(url)


def display_url(url: str | URL) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        parsed = _parse(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<invalid URL>"
    return parsed.render_as_string(hide_password=True)


def _json_default(value: object) -> object:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def dumps(value: object) -> str:
    """JSON for the JSON columns: dates as ISO 8601, enums by value, sets sorted."""
    return json.dumps(value, default=_json_default, ensure_ascii=False, sort_keys=True)


def driver_problem(url: URL) -> str | None:
    """What is missing to open `url`: its driver (with the extra that installs it), or its
    SQLAlchemy dialect; None when both are installed. Imports the driver to find out."""
    try:
        dialect = url.get_dialect()
        dialect.import_dbapi()
    except NoSuchModuleError:
        return f"no SQLAlchemy dialect for {url.drivername!r} is installed"
    except ImportError as exc:
        module = (exc.name or url.get_driver_name() or url.drivername).split(".")[0]
        return missing_driver(module, url.get_backend_name())
    return None


def create_store_engine(url: URL) -> Engine:
    """Create the engine: SQLite with WAL, a busy timeout and explicit BEGINs; PostgreSQL with
    a connect timeout and pre-ping, so that a restarted server costs one failed checkout.

    Raises:
        MissingDriverError: the URL's driver is not installed (the message says how to install).
    """
    problem = driver_problem(url)
    if problem is not None:
        raise MissingDriverError(
            f"the state database {url.render_as_string(hide_password=True)} {problem}"
        )
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            json_serializer=dumps,
            connect_args={"timeout": BUSY_TIMEOUT_SECONDS},
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    if "application_name" not in url.query:
        connect_args["application_name"] = "gdpr-auditor"
    return create_engine(url, json_serializer=dumps, pool_pre_ping=True, connect_args=connect_args)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # SQLAlchemy's documented recipe: let it emit BEGIN itself, so that every statement of a
    # transaction, reads included, is inside it (pysqlite would start it at the first write).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL: readers (a metrics scrape) never wait for the writer; NORMAL is durable across a
    # killed process, which is the failure the daemon must survive.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # A writer takes the write lock up front: a deferred transaction upgrading from read to write
    # fails at once with SQLITE_BUSY instead of waiting out the busy timeout.
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
