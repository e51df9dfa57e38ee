"""Shared pytest fixtures: loopback servers started on demand and stopped at teardown."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from auditor.store import StateStore
from tests.dnsserver import LoopbackDnsServer

DnsServerFactory = Callable[..., LoopbackDnsServer]


@pytest.fixture
def dns_server_factory() -> Iterator[DnsServerFactory]:
    """Start loopback DNS servers: `factory(zone_text, origin=".", host="127.0.0.1")`."""
    servers: list[LoopbackDnsServer] = []

    def start(zone_text: str, origin: str = ".", host: str = "127.0.0.1") -> LoopbackDnsServer:
        server = LoopbackDnsServer(zone_text, origin=origin, host=host).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def service_url(variable: str, driver: str, label: str, example: str) -> str:
    """The URL of a test server from `variable`, checked with one query; skips when it is not
    there, and with GDPR_AUDITOR_REQUIRE_SERVICES=1 (CI) fails instead."""
    url = os.environ.get(variable, "")
    reason = ""
    if not url:
        reason = f"{variable} is not set (e.g. {example})"
    else:
        engine = create_engine(
            make_url(url).set(drivername=driver), connect_args={"connect_timeout": 3}
        )
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            reason = f"{label} at {variable} is unreachable: {type(exc).__name__}"
        finally:
            engine.dispose()
    if reason:
        if os.environ.get("GDPR_AUDITOR_REQUIRE_SERVICES") == "1":
            pytest.fail(f"GDPR_AUDITOR_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return url


def postgres_test_url() -> str:
    """The test PostgreSQL server from GDPR_AUDITOR_TEST_PG; skips (or fails in CI) without it."""
    return service_url(
        "GDPR_AUDITOR_TEST_PG", "postgresql+psycopg", "PostgreSQL",
        "postgresql://postgres@127.0.0.1:5432/test",
    )  # fmt: skip


@pytest.fixture(name="postgres_schema_url")
def _postgres_schema_url() -> Iterator[str]:
    """A fresh PostgreSQL schema first on the search path, dropped afterwards; yields its URL."""
    base = make_url(postgres_test_url()).set(drivername="postgresql+psycopg")
    schema = f"gdpr_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(
    name="state_url",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def _state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty state database URL: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture(name="store")
def _store(state_url: str) -> Iterator[StateStore]:
    """A state store in the `state_url` database, closed afterwards."""
    store = StateStore.open(state_url)
    yield store
    store.close()


def mariadb_test_url() -> str:
    """The test MariaDB server from GDPR_AUDITOR_TEST_MARIADB; skips (or fails in CI) without it."""
    return service_url(
        "GDPR_AUDITOR_TEST_MARIADB", "mysql+pymysql", "MariaDB", "mysql://root@127.0.0.1:3306/test"
    )


@pytest.fixture(name="mariadb_database_url")
def _mariadb_database_url() -> Iterator[str]:
    """A fresh MariaDB database (utf8mb4, the server's default collation), dropped afterwards;
    yields its URL (mysql+pymysql)."""
    base = make_url(mariadb_test_url()).set(drivername="mysql+pymysql")
    database = f"gdpr_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4"))
    yield base.set(database=database).render_as_string(hide_password=False)
    with engine.begin() as connection:
        connection.execute(text(f"DROP DATABASE `{database}`"))
    engine.dispose()


@dataclass(frozen=True)
class OrgDatabase:
    """A scratch database standing for one of the organisation's: its URL, a writable engine."""

    kind: str  # sqlite | postgresql | mariadb
    url: str
    engine: Engine


@pytest.fixture(
    name="org_database",
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("mariadb", marks=pytest.mark.mariadb),
    ],
)
def _org_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OrgDatabase]:
    """An empty database: a SQLite file, a fresh PostgreSQL schema or a fresh MariaDB database."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'org.db'}"
    elif request.param == "postgresql":
        url = request.getfixturevalue("postgres_schema_url")
    else:
        url = request.getfixturevalue("mariadb_database_url")
    engine = create_engine(url)
    yield OrgDatabase(request.param, url, engine)
    engine.dispose()
