"""Retention enforcement on PostgreSQL by row address (ctid ranges): exactly the eligible records,
each batch's intent naming the transaction that processed them and counting them, with holes and dead rows in the table,
a legal-hold table, records changed and added during the walk, ranges without eligible records
and ranges holding too many, the per-run limit, and batches interrupted before and after the
data source's COMMIT."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.pool import NullPool
from structlog.testing import capture_logs

import auditor.retention.enforce as enforce_module
from auditor.cli import cli
from auditor.core.chain import verify
from auditor.core.ledger import SourceTransaction
from auditor.core.yamlsource import parse_yaml
from auditor.retention import (
    BoundPolicy,
    enforce_policy,
    parse_retention,
    plan_policy,
    reconcile_policy,
)
from auditor.retention.intent import range_intent
from auditor.retention.job import RetentionJob
from auditor.retention.ranges import RangeWalker, walkable
from auditor.retention.reconcile import Batch
from auditor.service.metrics import build_registry
from auditor.service.snapshot import Snapshot
from auditor.store import StateStore
from tests.conftest import postgres_test_url
from tests.helpers import write_config
from tests.retention.test_retention import (
    DEADLINE,
    bound_policy,
    clock,
    evidence_of,
    policy_text,
    source_settings,
)

pytestmark = pytest.mark.postgres

ROWS = 3000
RECORDS = {"table": "records", "filter": {"status": "inactive"}, "max_share": 1.0}


def overdue(ident: int) -> bool:
    return ident % 3 == 0


def eligible(ident: int) -> bool:
    """Inactive (not every fifth), overdue (every third) and not held (every eleventh)."""
    return ident % 5 != 0 and overdue(ident) and ident % 11 != 0


ELIGIBLE = {ident for ident in range(1, ROWS + 1) if eligible(ident)}


@pytest.fixture(name="engine")
def _engine(postgres_schema_url: str) -> Iterator[Engine]:
    """`records` in a fresh schema: ROWS records in key order, as `eligible` says."""
    engine = create_engine(postgres_schema_url)
    create_records(engine)
    yield engine
    engine.dispose()


def create_records(engine: Engine) -> None:
    """Create `records` and fill it with ROWS records in key order."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE records (id integer PRIMARY KEY, email varchar(80), status"
                " varchar(20) NOT NULL, last_activity_at timestamptz, legal_hold boolean)"
            )
        )
        insert_records(connection, range(1, ROWS + 1))


def insert_records(connection: Any, idents: range) -> None:
    connection.execute(
        text(
            "INSERT INTO records SELECT g, 'person' || g || '@example.org',"
            " CASE WHEN g % 5 = 0 THEN 'active' ELSE 'inactive' END,"
            " :deadline + CASE WHEN g % 3 = 0 THEN -1 ELSE 1 END * (1 + g % 40) * interval '1 day',"
            " g % 11 = 0 FROM generate_series(CAST(:first AS integer), CAST(:last AS integer)) AS g"
        ),
        {"deadline": DEADLINE, "first": idents.start, "last": idents.stop - 1},
    )


def keys_of(engine: Engine) -> set[int]:
    with engine.connect() as connection:
        return set(connection.execute(text("SELECT id FROM records")).scalars())


def vacuum(engine: Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM records"))


class Transactions:
    """The keys of the records each data-source transaction deleted or updated in `table`,
    written down by a trigger in that transaction (those of a transaction or savepoint rolled
    back are gone with it): what a batch by row address processed, which its intent does not
    list."""

    def __init__(self, engine: Engine, table: str = "records") -> None:
        # Its own connections, each closed after use: read after the run's engine is disposed.
        self.engine = create_engine(engine.url, poolclass=NullPool)
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS processed_by (xact xid8, id int)"))
            connection.execute(
                text(
                    "CREATE OR REPLACE FUNCTION note_processed() RETURNS trigger AS $$ BEGIN"
                    " INSERT INTO processed_by VALUES (pg_current_xact_id(), OLD.id);"
                    " RETURN NULL; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    f"CREATE TRIGGER noted AFTER DELETE OR UPDATE ON {table}"
                    " FOR EACH ROW EXECUTE FUNCTION note_processed()"
                )
            )

    def keys(self) -> dict[int, set[int]]:
        """The keys processed, by transaction id."""
        found: dict[int, set[int]] = {}
        with self.engine.connect() as connection:
            for xact, ident in connection.execute(text("SELECT xact::text, id FROM processed_by")):
                found.setdefault(int(xact), set()).add(ident)
        return found

    def by_batch(self, held: dict[int, SourceTransaction]) -> dict[int, set[int]]:
        """The keys each batch's transaction (`held`, by batch) processed; each intent counted
        them."""
        processed = self.keys()
        found = {batch: processed.get(h.id, set()) for batch, h in held.items()}
        assert {batch: h.processed for batch, h in held.items()} == {
            batch: len(keys) for batch, keys in found.items()
        }
        return found

    def of(self, held: SourceTransaction | None) -> set[int]:
        """The keys the batch held by `held` processed (in a transaction committed)."""
        assert held is not None
        return self.keys().get(held.id, set())


class Recorder:
    """What a run did: the transaction each batch's intent named, its statements, its undone
    ranges."""

    def __init__(self, bound: BoundPolicy, store: StateStore) -> None:
        self.held: dict[int, SourceTransaction] = {}
        self.statements: list[str] = []
        self.undone = 0
        self.transactions = Transactions(bound.source.engine)
        self.begin = store.begin_retention_batch
        store.begin_retention_batch = self.begun  # type: ignore[method-assign]
        event.listen(bound.source.engine, "before_cursor_execute", self.executed)
        event.listen(bound.source.engine, "rollback_savepoint", self.rolled_back)

    def begun(self, intent: Any) -> int:
        found = self.begin(intent)
        assert intent.source_transaction is not None and not intent.keys
        self.held[intent.batch] = intent.source_transaction
        return found

    @property
    def intents(self) -> dict[int, set[int]]:
        """The keys each batch's transaction processed, by batch; each intent counted them."""
        return self.transactions.by_batch(self.held)

    def executed(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        self.statements.append(statement)

    def rolled_back(self, *_: Any) -> None:
        self.undone += 1


def whole_table(connection: Any, bound: BoundPolicy, plan: Any) -> RangeWalker:
    """The walker of the whole table, as a run with one walker has it."""
    size = walkable(connection, bound)
    assert size is not None
    return RangeWalker.split(connection, bound, plan.deadline, size, plan, 1)[0]


def batch_records(store: StateStore) -> dict[int, int]:
    """The rows of each `retention-batch` record, by batch."""
    found: dict[int, int] = {}
    for record in evidence_of(store):
        if record.kind == "retention-batch":
            data = record.data()
            found[data["batch"]] = found.get(data["batch"], 0) + data["rows"]
    return found


def test_exactly_the_eligible_records_go_and_each_intent_names_their_transaction(
    engine: Engine, store: StateStore
) -> None:
    """With holes (records deleted and vacuumed) and dead rows (records updated since) in the
    table, the walk reads it by row address and deletes exactly the eligible records; each
    batch's intent names the data-source transaction that processed them and counts exactly
    the records it did (no key twice), at most batch_size, and its evidence counts them."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM records WHERE id % 7 = 0"))
    vacuum(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE records SET email = email || '.old' WHERE id % 4 = 0"))
    before = keys_of(engine)
    expected = {ident for ident in before if eligible(ident)}
    with bound_policy(engine.url.render_as_string(False), batch_size=97, **RECORDS) as bound:
        recorder = Recorder(bound, store)
        done = enforce_policy(bound, clock, store)
        again = enforce_policy(bound, clock, store)

    named = [key for keys in recorder.intents.values() for key in keys]
    assert before - expected == keys_of(engine)
    assert (len(expected), "done") == (done.processed, done.outcome)
    assert (0, "done") == (again.processed, again.outcome)
    assert sorted(expected) == sorted(named)
    assert max(map(len, recorder.intents.values())) <= 97
    assert {batch: len(keys) for batch, keys in recorder.intents.items()} == batch_records(store)
    assert any("ctid >=" in statement for statement in recorder.statements)
    assert verify(evidence_of(store)).ok


def test_a_batch_statement_is_a_tid_range_scan(engine: Engine, store: StateStore) -> None:
    """The batches read the table by row address, not through the key's index."""
    with bound_policy(engine.url.render_as_string(False), batch_size=200, **RECORDS) as bound:
        plan = plan_policy(bound, clock())
        with bound.source.connect() as connection:
            walker = whole_table(connection, bound, plan)
            captured: list[tuple[str, Any]] = []
            event.listen(
                connection,
                "before_cursor_execute",
                lambda _c, _k, statement, parameters, *_: captured.append((statement, parameters)),
            )
            with connection.begin() as transaction:
                taken = walker.take(connection, 200, 10_000)
                assert taken is not None
                statement, parameters = next(c for c in captured if "DELETE" in c[0])
                raw = connection.connection.driver_connection
                assert raw is not None
                explained = raw.execute("EXPLAIN " + statement, parameters).fetchall()
                transaction.rollback()

    assert 0 < taken.processed <= 200
    assert "Tid Range Scan" in "\n".join(row[0] for row in explained)


def test_a_legal_hold_table_and_anonymise_by_row_address(engine: Engine, store: StateStore) -> None:
    """Anonymise with a NULL and a fixed value and a legal-hold table: exactly the eligible
    records not in the hold table are anonymised (their new row versions are not processed
    again), and a rerun changes nothing."""
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE holds (record_id integer PRIMARY KEY)"))
        connection.execute(text("INSERT INTO holds SELECT g FROM generate_series(6, 3000, 6) g"))
    hold = {"table": "holds", "key": "record_id"}
    action: dict[str, Any] = {
        "action": "anonymise",
        "anonymise": {"email": None, "status": {"value": "inactive"}},
    }
    # Here the flag column does not hold: the hold table does.
    expected = {i for i in range(1, ROWS + 1) if i % 5 != 0 and overdue(i) and i % 6 != 0}
    url = engine.url.render_as_string(False)
    with bound_policy(url, batch_size=150, legal_hold=hold, **RECORDS, **action) as bound:
        recorder = Recorder(bound, store)
        done = enforce_policy(bound, clock, store)
        again = enforce_policy(bound, clock, store)
    with engine.connect() as connection:
        nulled = set(connection.execute(text("SELECT id FROM records WHERE email IS NULL")))

    assert {(ident,) for ident in expected} == nulled
    assert (len(expected), 0) == (done.processed, again.processed)
    assert expected == set().union(*recorder.intents.values())
    assert any("ctid >=" in statement for statement in recorder.statements)


def test_records_changed_and_added_during_the_walk(
    engine: Engine, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the first batch, another client puts a record not reached yet on hold, makes one
    recent, changes another's e-mail address (it stays eligible), and adds overdue records at
    the end of the table: the first two are left alone, the other two processed in the same
    run, and the evidence counts exactly what was deleted. One walker: with two, the second
    may have reached the end of the table by then."""
    held, recent, changed = 2997, 2994, 2991  # eligible, at the end of the table
    added = range(ROWS + 1, ROWS + 301)
    url = engine.url.render_as_string(False)

    def meanwhile(batch: Batch) -> None:
        if batch.index != 0:
            return
        with engine.begin() as connection:
            connection.execute(text(f"UPDATE records SET legal_hold = true WHERE id = {held}"))
            connection.execute(
                text(f"UPDATE records SET last_activity_at = :later WHERE id = {recent}"),
                {"later": DEADLINE + timedelta(days=1)},
            )
            connection.execute(
                text(f"UPDATE records SET email = 'changed@example.org' WHERE id = {changed}")
            )
            insert_records(connection, added)

    monkeypatch.setattr(enforce_module, "WALKERS", 1)
    with bound_policy(url, batch_size=100, **RECORDS) as bound:
        recorder = Recorder(bound, store)
        done = enforce_policy(bound, clock, store, on_batch=meanwhile)
    left = keys_of(engine)

    gone = (ELIGIBLE - {held, recent}) | {i for i in added if eligible(i)}
    assert {held, recent} <= left
    assert not gone & left
    assert set(range(1, added.stop)) - gone == left
    assert (len(gone), "done") == (done.processed, done.outcome)
    assert gone == set().union(*recorder.intents.values())
    assert len(gone) == sum(batch_records(store).values())


def test_ranges_without_eligible_records_and_a_range_holding_too_many(
    engine: Engine, store: StateStore
) -> None:
    """The first two thirds of the table hold no overdue record, the last third only overdue
    ones: the walk passes ranges without any (no batch, no evidence), and the range that
    reaches the overdue ones holds more than a batch may have; it is undone and cut, so every
    batch stays within batch_size and exactly the eligible records go."""
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE records SET last_activity_at = CASE WHEN id > 2000"
                " THEN :deadline - interval '1 day' ELSE :deadline + interval '1 day' END,"
                " legal_hold = false, status = 'inactive'"
            ),
            {"deadline": DEADLINE},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM FULL records"))  # the rows in key order again
    url = engine.url.render_as_string(False)
    with bound_policy(url, batch_size=60, **RECORDS) as bound:
        recorder = Recorder(bound, store)
        done = enforce_policy(bound, clock, store)

    assert set(range(1, 2001)) == keys_of(engine)
    assert (1000, "done") == (done.processed, done.outcome)
    assert max(map(len, recorder.intents.values())) <= 60
    assert set(range(2001, 3001)) == set().union(*recorder.intents.values())
    assert recorder.undone >= 1
    assert done.batches == len(recorder.intents) == len(batch_records(store))


def test_the_run_stops_exactly_at_its_limit_and_the_next_run_goes_on(
    engine: Engine, store: StateStore
) -> None:
    """--max-rows 123 with batches of 50: exactly 123 records (the last range cut short), then
    the next run processes the rest."""
    url = engine.url.render_as_string(False)
    with bound_policy(url, batch_size=50, **RECORDS) as bound:
        first = enforce_policy(bound, clock, store, max_rows=123)
        left = keys_of(engine)
        second = enforce_policy(bound, clock, store)

    assert (123, "limit-reached") == (first.processed, first.outcome)
    assert 123 == len(ELIGIBLE & (set(range(1, ROWS + 1)) - left))
    assert (len(ELIGIBLE) - 123, "done") == (second.processed, second.outcome)
    assert not ELIGIBLE & keys_of(engine)
    assert len(ELIGIBLE) == sum(batch_records(store).values())


class Interrupted(Exception):
    """Raised from inside a run, as a lost connection or a killed process would stop it."""


@pytest.mark.parametrize("where", ["before the commit", "after the commit"])
def test_an_interrupted_batch_is_reconciled_and_the_next_run_finishes(
    engine: Engine, store: StateStore, where: str
) -> None:
    """The second batch is interrupted after its intent is committed: before the data source's
    COMMIT (rolled back: reconciled as 0 rows) or after it, before its evidence (reconciled as
    the records its transaction processed). The next run walks the table again from its first
    block and finishes; the evidence adds up to exactly the records deleted."""
    url = engine.url.render_as_string(False)
    transactions = Transactions(engine)
    with bound_policy(url, batch_size=100, **RECORDS) as bound:
        begin, settle = store.begin_retention_batch, store.settle_retention_batch

        def begin_then(intent: Any) -> int:
            found = begin(intent)
            if intent.batch == 1 and where == "before the commit":
                raise Interrupted
            return found

        def settle_then(intent_id: int, rows: int, how: Any, content: Any, at: Any) -> Any:
            if content["batch"] == 1 and where == "after the commit":
                raise Interrupted
            return settle(intent_id, rows, how, content, at)

        store.begin_retention_batch = begin_then  # type: ignore[method-assign]
        store.settle_retention_batch = settle_then  # type: ignore[method-assign]
        with pytest.raises(Interrupted):
            enforce_policy(bound, clock, store)
        del store.begin_retention_batch, store.settle_retention_batch
        pending = store.pending_retention_batches("crm-contacts")
        deleted = ELIGIBLE - keys_of(engine)
        reconciled = reconcile_policy(bound, store, clock)
        finished = enforce_policy(bound, clock, store)

    assert [1] == [p.intent.batch for p in pending]
    held = pending[0].intent.source_transaction
    second = transactions.of(held)
    assert held is not None and held.processed > 0
    assert (held.processed if where == "after the commit" else 0) == len(second)
    assert [len(second)] == [batch.rows for batch in reconciled]
    assert second <= deleted
    assert not ELIGIBLE & keys_of(engine)
    assert (len(ELIGIBLE) - len(deleted), "done") == (finished.processed, finished.outcome)
    assert len(ELIGIBLE) == sum(batch_records(store).values())
    assert verify(evidence_of(store)).ok


FATES = {
    # fate: (the batch's transaction, the server its intent names, rows, undetermined)
    "committed": ("committed", "same", "processed", False),
    "rolled back": ("rolled back", "same", 0, False),
    "rolled back, before a restart": ("rolled back", "restarted", 0, False),
    "committed, before a restart, its range empty": ("committed", "restarted", "processed", False),
    "its id given again after a restart, its range full": ("reused", "restarted", 0, True),
    "its id not given yet (a history rewound)": ("not given", "restarted", 0, False),
    "committed on another database system": ("committed", "another system", 0, True),
}


@pytest.mark.parametrize("fate", FATES)
def test_a_pending_batch_by_row_address_is_settled_as_its_transaction_fared(
    engine: Engine, store: StateStore, fate: str
) -> None:
    """A batch's intent names its data-source transaction; reconciliation asks the server: a
    transaction committed there counts the records its statement processed, one rolled back
    (before a restart too) or never given counts none. Where the id may name another
    transaction (the server has restarted since), the range decides: empty, the records
    counted; still holding eligible records, the batch is undetermined, recorded with no
    records and said so. On another database system nothing tells: undetermined."""
    transaction, server, rows, undetermined = FATES[fate]
    with bound_policy(engine.url.render_as_string(False), batch_size=100, **RECORDS) as bound:
        plan = plan_policy(bound, clock())
        with bound.source.connect() as connection:
            walker = whole_table(connection, bound, plan)
            with connection.begin() as batch:
                held = walker.take(connection, 100, 100)
                assert held is not None and held.processed > 0
                if transaction == "committed":
                    batch.commit()
                else:
                    batch.rollback()
        if transaction == "reused":
            with engine.begin() as connection:  # another transaction, committed: any
                connection.execute(text("UPDATE records SET email = email WHERE id = 1"))
                other = connection.execute(text("SELECT pg_current_xact_id()::text")).scalar_one()
            held = replace(held, id=int(other))
        elif transaction == "not given":
            held = replace(held, id=held.id + 1_000_000)
        if server == "restarted":  # as the intent of a batch before the server's restart
            held = replace(held, started="946684800.000000")
        elif server == "another system":
            held = replace(held, system=str(int(held.system) + 1))
        store.begin_retention_batch(range_intent(plan, "0" * 32, 0, held, None, clock()))
        reconciled = reconcile_policy(bound, store, clock)
        again = reconcile_policy(bound, store, clock)
    recorded = [r.data() for r in evidence_of(store) if r.kind == "retention-batch"]

    expected = held.processed if rows == "processed" else rows
    assert [(expected, undetermined)] == [(b.rows, b.undetermined) for b in reconciled]
    assert [] == again and [] == store.pending_retention_batches("crm-contacts")
    assert [(expected, held.processed)] == [(d["rows"], d["planned"]) for d in recorded]
    assert undetermined == recorded[0].get("undetermined", False)
    assert len(ELIGIBLE & keys_of(engine)) == len(ELIGIBLE) - (
        held.processed if transaction == "committed" else 0
    )


def test_a_batch_still_in_progress_stays_pending(engine: Engine, store: StateStore) -> None:
    """A batch whose transaction is still open on the server that runs it stays pending; once
    it is rolled back, it is settled with no records. The reconciling session writes dates in
    another style: the server is still known as the one that ran the batch."""
    url = engine.url.render_as_string(False)
    options = engine.url.query["options"]
    elsewhere = engine.url.update_query_dict({"options": f"{options} -cDateStyle=SQL,DMY"})
    with (
        bound_policy(url, batch_size=100, **RECORDS) as bound,
        bound_policy(elsewhere.render_as_string(False), batch_size=100, **RECORDS) as other,
    ):
        plan = plan_policy(bound, clock())
        with bound.source.connect() as connection:
            walker = whole_table(connection, bound, plan)
            with connection.begin() as batch:
                held = walker.take(connection, 100, 100)
                assert held is not None
                store.begin_retention_batch(range_intent(plan, "0" * 32, 0, held, None, clock()))
                while_open = reconcile_policy(other, store, clock)
                pending = store.pending_retention_batches("crm-contacts")
                batch.rollback()
        after = reconcile_policy(other, store, clock)

    assert ([], 1) == (while_open, len(pending))
    assert [0] == [b.rows for b in after]
    assert ELIGIBLE <= keys_of(engine)


@pytest.fixture(name="restricted_url")
def _restricted_url() -> Iterator[str]:
    """`records` in a database of its own, for a user who may not call pg_control_system()
    (as some hosted servers keep it); yields that user's URL."""
    base = make_url(postgres_test_url()).set(drivername="postgresql+psycopg")
    name = f"gdpr_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        connection.execute(text(f'CREATE ROLE "{name}" LOGIN'))
    try:
        owner = create_engine(base.set(database=name))
        with owner.begin() as connection:
            connection.execute(text("REVOKE EXECUTE ON FUNCTION pg_control_system() FROM PUBLIC"))
            connection.execute(text(f'CREATE SCHEMA AUTHORIZATION "{name}"'))
        owner.dispose()
        url = base.set(database=name, username=name)
        engine = create_engine(url.update_query_dict({"options": f"-csearch_path={name}"}))
        create_records(engine)
        engine.dispose()
        yield url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()


def test_a_server_that_keeps_the_transaction_functions_from_its_user_is_walked_by_key(
    restricted_url: str, store: StateStore
) -> None:
    """Where the user may not read the server's identity, a batch by row address could not name
    its transaction: the table is walked by key, each intent naming its keys, and exactly the
    eligible records go."""
    with bound_policy(restricted_url, batch_size=200, **RECORDS) as bound:
        with bound.source.connect() as connection:
            size = walkable(connection, bound)
        begin = store.begin_retention_batch
        intents: list[Any] = []

        def begun(intent: Any) -> int:
            intents.append(intent)
            return begin(intent)

        store.begin_retention_batch = begun  # type: ignore[method-assign]
        done = enforce_policy(bound, clock, store)
        with bound.source.connect() as connection:
            left = set(connection.execute(text("SELECT id FROM records")).scalars())

    assert size is None
    assert (len(ELIGIBLE), "done") == (done.processed, done.outcome)
    assert not ELIGIBLE & left and len(left) == ROWS - len(ELIGIBLE)
    assert intents and all(i.source_transaction is None and i.keys for i in intents)
    assert ELIGIBLE == {key for i in intents for key in i.keys}


def pending_on_another_system(url: str, state: Path, batch: int) -> None:
    """A batch's intent pending in the SQLite state database at `state`: its transaction rolled
    back, its intent naming another database system."""
    store = StateStore.open(f"sqlite:///{state}")
    try:
        with bound_policy(url, batch_size=100, **RECORDS) as bound:
            plan = plan_policy(bound, clock())
            with bound.source.connect() as connection:
                walker = whole_table(connection, bound, plan)
                with connection.begin() as transaction:
                    held = walker.take(connection, 100, 100)
                    transaction.rollback()
        assert held is not None
        held = replace(held, system=str(int(held.system) + 1))
        store.begin_retention_batch(range_intent(plan, "0" * 32, batch, held, None, clock()))
    finally:
        store.close()


def test_the_command_line_says_a_batch_is_undetermined(engine: Engine, tmp_path: Path) -> None:
    """`retention plan` reconciling a batch whose fate the data source cannot tell warns on
    stderr and counts it in `reconciled.undetermined` (`--format json`)."""
    url = engine.url.render_as_string(False)
    (tmp_path / "retention").mkdir()
    (tmp_path / "retention" / "crm.yaml").write_text(policy_text(batch_size=100, **RECORDS))
    config = str(
        write_config(
            tmp_path,
            database={"url": "sqlite:///state.db"},
            data_sources={"crm": {"url": url, "read_only": False}},
            retention=["retention/"],
        )
    )

    pending_on_another_system(url, tmp_path / "state.db", 0)
    said = CliRunner().invoke(cli, ["retention", "plan", "--config", config])
    pending_on_another_system(url, tmp_path / "state.db", 1)
    counted = CliRunner().invoke(cli, ["retention", "plan", "--config", config, "--format", "json"])

    assert 0 == said.exit_code, said.output
    assert "what 1 of them did cannot be known" in said.stderr
    assert 0 == counted.exit_code, counted.output
    reconciled = json.loads(counted.stdout)["policies"][0]["reconciled"]
    assert {"batches": 1, "rows": 0, "undetermined": 1} == reconciled


def test_the_daemon_s_job_counts_an_undetermined_batch_and_logs_it(
    engine: Engine, tmp_path: Path
) -> None:
    """The retention job reconciling a batch whose fate the data source cannot tell logs a
    warning saying so and counts it in its metric (0 for the other policies)."""
    url = engine.url.render_as_string(False)
    pending_on_another_system(url, tmp_path / "state.db", 0)
    found, issues = parse_retention(
        parse_yaml(policy_text(batch_size=100, **RECORDS), "retention.yaml")
    )
    assert [] == issues
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        job = RetentionJob(
            policies=lambda: found,
            data_sources=lambda: source_settings(url),
            ledger=store,
            clock=clock,
            environ={},
        )
        with capture_logs() as logged:
            job(lambda: None)
    finally:
        store.close()
    snapshot = replace(Snapshot(), **job.state.snapshot_fields())
    registry = build_registry(lambda: snapshot)

    metric = "gdpr_auditor_retention_undetermined_batches_total"
    assert 1 == registry.get_sample_value(metric, {"policy": "crm-contacts"})
    reconciled = [e for e in logged if e["event"] == "retention_batch_reconciled"]
    assert [(0, True, "warning")] == [
        (e["rows"], e["undetermined"], e["log_level"]) for e in reconciled
    ]
