"""The organisation's databases by name: engines opened read-only where the dialect allows, failures
turned into a DataSourceError that names the source and never shows a password.

Read-only, per dialect (`read_only: true`, the default):

- PostgreSQL: the session starts with `default_transaction_read_only=on` (a libpq `options`
  setting, merged with any `options` in the URL), so every transaction is READ ONLY.
- MySQL and MariaDB: `SET SESSION TRANSACTION READ ONLY` on each new connection.
- SQLite: the file is opened as a `mode=ro` URI (so it must exist), and `PRAGMA query_only=ON`.
- Any other dialect: opened as configured; `DataSource.read_only_enforced` is then false, so that
  the caller can say so.

Sessions also run in UTC (PostgreSQL `timezone=UTC`, MySQL `time_zone='+00:00'`): a timestamp
without time zone is read as UTC, and MySQL TIMESTAMP columns compare in UTC.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Self
from urllib.parse import quote

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from auditor.core.errors import AuditUnavailableError, MissingDriverError
from auditor.sources.config import DataSourceSettings
from auditor.store.engine import driver_problem

CONNECT_TIMEOUT_SECONDS = 10.0
"""How long opening a connection may take before the source counts as down."""

_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
"""The drivers meant by a bare dialect name: the ones the project's extras install."""


class DataSourceError(AuditUnavailableError):
    """A data source could not be opened, reached or read; the message never holds a password."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"data source {source!r}: {reason}")


class DataSourceDriverError(DataSourceError, MissingDriverError):
    """A data source's URL names a driver (or dialect) that is not installed."""


@dataclass(eq=False)
class DataSource:
    """One opened data source: its engine, and whether its sessions are read-only."""

    name: str
    engine: Engine
    read_only: bool  # asked for in the configuration
    read_only_enforced: bool  # the dialect has a setting for it, and it is applied
    display_url: str  # the configured URL, password hidden, for messages

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name: `postgresql`, `mysql`, `mariadb`, `sqlite`, ..."""
        return self.engine.dialect.name

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """Open a connection for the block; database errors inside it become DataSourceErrors.

        Raises:
            DataSourceError: the database cannot be reached, or a statement failed.
        """
        try:
            connection = self.engine.connect()
        except SQLAlchemyError as exc:
            raise DataSourceError(
                self.name, f"cannot connect to {self.display_url}: {self._reason(exc)}"
            ) from exc
        with connection, self.errors():
            yield connection

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Translate SQLAlchemy errors raised in the block into a DataSourceError."""
        try:
            yield
        except DBAPIError as exc:
            if exc.connection_invalidated:
                reason = f"lost the connection to {self.display_url}: {self._reason(exc)}"
            else:
                reason = self._reason(exc)
            raise DataSourceError(self.name, reason) from exc
        except SQLAlchemyError as exc:
            raise DataSourceError(self.name, self._reason(exc)) from exc

    def _reason(self, exc: SQLAlchemyError) -> str:
        # The driver's first line only: later lines (PostgreSQL's DETAIL) may quote row values.
        orig = getattr(exc, "orig", None)
        lines = str(orig if orig is not None else exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
        password = self.engine.url.password
        if password:
            text = text.replace(str(password), "***")
        return text

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


class DataSources:
    """The configured data sources by name, each opened on first use and closed by `close()`.

    `environ` is where `url_env` variables are read (default: the process environment).
    """

    def __init__(
        self,
        settings: Mapping[str, DataSourceSettings],
        environ: Mapping[str, str] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
    ) -> None:
        self.settings = dict(settings)
        self._environ = os.environ if environ is None else environ
        self._connect_timeout = connect_timeout
        self._opened: dict[str, DataSource] = {}
        self._lock = threading.Lock()  # jobs in several threads may open the same source

    def __getitem__(self, name: str) -> DataSource:
        """Return the data source `name`, creating its engine (no connection yet) if needed.

        Raises:
            KeyError: no data source has that name.
            DataSourceError: its URL is missing, malformed, or names a driver not installed.
        """
        with self._lock:
            opened = self._opened.get(name)
            if opened is None:
                settings = self.settings[name]
                opened = open_data_source(settings, self._environ, self._connect_timeout)
                self._opened[name] = opened
            return opened

    def __contains__(self, name: object) -> bool:
        return name in self.settings

    def close(self) -> None:
        """Dispose of every engine opened so far."""
        with self._lock:
            for source in self._opened.values():
                source.dispose()
            self._opened.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_data_source(
    settings: DataSourceSettings,
    environ: Mapping[str, str],
    connect_timeout: float = CONNECT_TIMEOUT_SECONDS,
) -> DataSource:
    """Create the engine of one data source; nothing is connected until it is used.

    Raises:
        DataSourceError: the URL (or its environment variable) is missing or malformed, or its
            driver is not installed.
    """
    url = source_url(settings, environ)
    problem = driver_problem(url)
    if problem is not None:
        raise DataSourceDriverError(settings.name, problem)
    try:
        engine, enforced = _create_engine(url, settings.read_only, connect_timeout)
    except ArgumentError as exc:
        raise DataSourceError(settings.name, f"cannot use its URL: {exc}") from None
    display = url.render_as_string(hide_password=True)
    return DataSource(settings.name, engine, settings.read_only, enforced, display)


def source_url(settings: DataSourceSettings, environ: Mapping[str, str]) -> URL:
    """The data source's URL, from the configuration or its environment variable, with the
    default driver filled in (`postgresql://` -> psycopg 3, `mysql://` -> PyMySQL).

    Raises:
        DataSourceError: the environment variable is unset or empty, or the URL is malformed.
    """
    text = settings.url
    if text is None:
        text = environ.get(settings.url_env or "", "")
        if not text:
            reason = f"the environment variable {settings.url_env} is not set"
            raise DataSourceError(settings.name, reason)
    try:
        url = make_url(text)
    except ArgumentError:
        where = "url" if settings.url is not None else settings.url_env
        # The text may hold a password: never repeat it.
        raise DataSourceError(settings.name, f"{where} is not an SQLAlchemy URL") from None
    return url.set(drivername=_DRIVERS.get(url.drivername, url.drivername))


def _create_engine(url: URL, read_only: bool, timeout: float) -> tuple[Engine, bool]:
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, read_only)
    if backend == "postgresql":
        return _postgresql_engine(url, read_only, timeout), read_only
    if backend in {"mysql", "mariadb"}:
        return _mysql_engine(url, read_only, timeout), read_only
    return create_engine(url, pool_pre_ping=True), False


def _postgresql_engine(
    url: URL, read_only: bool, timeout: float, libpq: bool | None = None
) -> Engine:
    if libpq is None:
        libpq = url.get_driver_name() in {"psycopg", "psycopg2"}
    if not libpq:
        # Not libpq: no `options`; the same settings as statements on each new connection.
        statements = ["SET TIME ZONE 'UTC'"]
        if read_only:
            statements.append("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        return _with_session(create_engine(url, pool_pre_ping=True), statements)
    settings = ["-c timezone=UTC"]
    if read_only:
        settings.append("-c default_transaction_read_only=on")
    given = url.query.get("options")
    given_text = " ".join(given) if isinstance(given, tuple) else given
    # connect_args replace the URL's own `options`, so those are kept in front.
    connect_args: dict[str, Any] = {
        "options": " ".join([*filter(None, [given_text]), *settings]),
        "application_name": "gdpr-auditor",
    }
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = max(1, round(timeout))
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def _mysql_engine(url: URL, read_only: bool, timeout: float) -> Engine:
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = max(1, round(timeout))
    # MariaDB only (MySQL skips what is in /*M! */): no subquery cache. It keys a correlated
    # subquery's result by the outer values compared under their column's collation, so under
    # a PAD SPACE or case-insensitive one a NOT EXISTS asked for `' '` answered what it had found
    # for `''` (and `abc` for `ABC`), whatever exact comparison the subquery makes.
    statements = ["SET time_zone = '+00:00' /*M!, optimizer_switch = 'subquery_cache=off' */"]
    if read_only:
        statements.append("SET SESSION TRANSACTION READ ONLY")
    return _with_session(
        create_engine(url, pool_pre_ping=True, connect_args=connect_args), statements
    )


def _with_session(engine: Engine, statements: list[str]) -> Engine:
    """Run fixed session statements (no values from configuration) on every new connection."""

    @event.listens_for(engine, "connect")
    def _session(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
        dbapi_connection.commit()  # a driver that opened a transaction for them ends it

    return engine


def _sqlite_engine(url: URL, read_only: bool) -> tuple[Engine, bool]:
    database = url.database or ""
    in_memory = database in {"", ":memory:"} or "mode=memory" in database
    if read_only and not in_memory and url.query.get("uri") is None:
        # An SQLite URI filename: `?` and `#` in the path must be percent-encoded.
        path = quote(database, safe="/:\\")
        url = url.set(database=f"file:{path}").update_query_dict({"mode": "ro", "uri": "true"})
    engine = create_engine(url)
    if read_only:

        @event.listens_for(engine, "connect")
        def _query_only(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA query_only=ON")
            cursor.close()

    return engine, read_only
