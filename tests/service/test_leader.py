"""Leader election: SQLite is one replica; on PostgreSQL an advisory lock, held by a real connection."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from auditor.service.leader import (
    AdvisoryLock,
    SingleReplica,
    leadership_for,
    postgres_driver,
    schema_key,
)
from tests.conftest import postgres_test_url
from tests.helpers import free_port


def schema_url(url: str, schema: str) -> str:
    """The URL with `schema` first on the search path, so each test has its own tables and lock."""
    with_path = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_path.render_as_string(hide_password=False)


@pytest.fixture
def replicas(postgres_schema_url: str) -> Iterator[tuple[AdvisoryLock, AdvisoryLock]]:
    """Two replicas' locks on one schema, both released after the test."""
    first, second = AdvisoryLock(postgres_schema_url), AdvisoryLock(postgres_schema_url)
    try:
        yield first, second
    finally:
        first.release()
        second.release()


def test_sqlite_is_a_single_replica_that_always_leads() -> None:
    """A SQLite state database means one replica: it leads, and leadership is never contested."""
    leadership = leadership_for("sqlite:///state.db")

    assert isinstance(leadership, SingleReplica)
    assert leadership.single_replica
    assert leadership.poll()
    assert leadership.is_leader


def test_postgres_url_gets_psycopg() -> None:
    """A plain postgresql:// URL is driven by psycopg 3, not SQLAlchemy's psycopg2 default."""
    assert "postgresql+psycopg" == postgres_driver(make_url("postgresql://h/db")).drivername
    assert "postgresql+psycopg" == postgres_driver(make_url("postgresql+psycopg://h/db")).drivername


def test_schema_keys_are_stable_signed_32_bit_integers() -> None:
    """The lock key half from a schema name fits PostgreSQL's int4 and never changes."""
    for name in ("public", "gdpr", "x" * 63):
        key = schema_key(name)
        assert -(2**31) <= key < 2**31
        assert key == schema_key(name)
    assert schema_key("public") != schema_key("gdpr")


@pytest.mark.postgres
def test_exactly_one_of_two_replicas_leads(replicas: tuple[AdvisoryLock, AdvisoryLock]) -> None:
    """Two replicas on one schema: the first to ask leads, the other stays standby on every poll."""
    first, second = replicas
    assert first.poll()
    assert not second.poll()
    assert first.poll()  # still held
    assert not second.poll()
    assert not first.single_replica


@pytest.mark.postgres
def test_release_hands_leadership_to_the_standby(
    replicas: tuple[AdvisoryLock, AdvisoryLock],
) -> None:
    """A leader that shuts down releases the lock; the standby's next poll takes it."""
    first, second = replicas
    assert first.poll()
    assert not second.poll()

    first.release()

    assert not first.is_leader
    assert second.poll()


@pytest.mark.postgres
def test_a_lost_connection_is_lost_leadership(
    replicas: tuple[AdvisoryLock, AdvisoryLock], postgres_schema_url: str
) -> None:
    """When the leader's session is killed, it stops leading at its next poll and the standby leads."""
    first, second = replicas
    admin = create_engine(postgres_driver(make_url(postgres_schema_url)))
    try:
        assert first.poll()
        assert not second.poll()
        with admin.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'gdpr-auditor leader election'"
                    " AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory'"
                    " AND objid = :key AND granted)"
                ),
                {"key": schema_key(schema_of(postgres_schema_url)) & 0xFFFFFFFF},
            )

        assert not first.poll()
        assert first.last_error is not None
        assert second.poll()
        assert first.poll() is False  # reconnected, and now it is the standby
        assert first.last_error is None
    finally:
        admin.dispose()


@pytest.mark.postgres
def test_deployments_in_separate_schemas_do_not_block_each_other(postgres_schema_url: str) -> None:
    """The lock key includes the schema: another deployment in the same database leads on its own."""
    base = postgres_test_url()
    schema = f"gdpr_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_driver(make_url(base)))
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    here, there = AdvisoryLock(postgres_schema_url), AdvisoryLock(schema_url(base, schema))
    try:
        assert here.poll()
        assert there.poll()
    finally:
        here.release()
        there.release()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_unreachable_database_means_standby_with_a_reason() -> None:
    """No server at the address: not the leader, the reason recorded, no exception."""
    port = free_port()
    leadership = AdvisoryLock(f"postgresql://nobody@127.0.0.1:{port}/none")

    assert not leadership.poll()
    assert leadership.last_error is not None
    assert "OperationalError" in leadership.last_error
    leadership.release()


def schema_of(url: str) -> str:
    options = str(make_url(url).query["options"])
    return options.removeprefix("-csearch_path=")
