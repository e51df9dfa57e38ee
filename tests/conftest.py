"""Shared pytest fixtures: loopback servers started on demand and stopped at teardown, copies of
the shipped example, and the guard that no test writes into the checkout."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from auditor.retention import batches
from auditor.store import StateStore
from tests.dnsserver import LoopbackDnsServer

DnsServerFactory = Callable[..., LoopbackDnsServer]

ROOT = Path(__file__).resolve().parent.parent
"""The checkout the tests run from: read, never written (see `_checkout_untouched`)."""

_CACHES = frozenset(
    {".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}
)
"""Directories that tools (not tests) write into the checkout; ignored by the guard."""


def copy_example(destination: Path) -> Path:
    """Copy the offline example (`examples/`, and the `geodb/ip-ranges/` it points at) under
    `destination`, keeping their relative layout; return the copy's `auditor.yaml`.

    The example's state database is relative to its configuration file, so a test that ran
    `check` on `examples/auditor.yaml` itself would record invented runs into the checkout.
    """
    shutil.copytree(
        ROOT / "examples", destination / "examples", ignore=shutil.ignore_patterns("state.db*")
    )
    shutil.copytree(ROOT / "geodb" / "ip-ranges", destination / "geodb" / "ip-ranges")
    return destination / "examples" / "auditor.yaml"


@pytest.fixture(name="example_config")
def _example_config(tmp_path: Path) -> Path:
    """The offline example's configuration, in a copy under tmp_path (see `copy_example`)."""
    return copy_example(tmp_path)


def checkout_state(root: Path = ROOT) -> dict[str, str]:
    """What the guard compares: every file under `examples/` (ignored ones included) by hash,
    and, in a git checkout, the status of every other path and a hash of the tracked changes."""
    state = {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((root / "examples").rglob("*"))
        if path.is_file()
    }
    if not (root / ".git").exists() or shutil.which("git") is None:
        return state

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout

    for entry in git("status", "--porcelain", "--ignored", "--untracked-files=all", "-z").split(
        "\0"
    ):
        path = entry[3:]
        if path and not _CACHES.intersection(Path(path).parts) and ".egg-info" not in path:
            state[f"status {path}"] = entry[:2]
    state["tracked changes"] = hashlib.sha256(git("diff", "--binary").encode()).hexdigest()
    return state


@pytest.fixture(scope="session", autouse=True)
def _checkout_untouched() -> Iterator[None]:
    """Fail the session when a test wrote into the checkout: a file in `examples/` (such as a
    state database) or anywhere else added, removed or changed. Golden files renewed on purpose
    (UPDATE_GOLDEN=1) are let through."""
    before = checkout_state()
    yield
    after = checkout_state()
    changed = sorted(
        key
        for key in before.keys() | after.keys()
        if before.get(key) != after.get(key)
        and not (os.environ.get("UPDATE_GOLDEN") and "tests/golden/" in key)
    )
    if os.environ.get("UPDATE_GOLDEN") and changed == ["tracked changes"]:
        changed = []
    if changed:
        pytest.fail(
            "tests wrote into the checkout (use tmp_path, or tests.conftest.copy_example): "
            + ", ".join(changed),
            pytrace=False,
        )


FIXED_BATCHES_TARGET_SECONDS = 3600.0
"""A target transaction time no test's batch reaches: its batches keep the policy's batch_size."""


@pytest.fixture(autouse=True)
def _batches_of_batch_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retention batches of exactly the policy's batch_size, whatever the machine's load: the
    tests count records and evidence batch by batch, and a busy test machine's slow commit
    would otherwise shrink the next batch (`next_batch_size` is tested on its own, in
    tests/retention/test_batch_sizes.py). Child processes set it themselves."""
    monkeypatch.setattr(batches, "TARGET_TRANSACTION_SECONDS", FIXED_BATCHES_TARGET_SECONDS)


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
