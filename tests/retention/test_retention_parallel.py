"""Retention enforcement by row address on two connections at once (PostgreSQL): each walker on
its own thread and part of the table, the batch numbers and the row limit shared, the plan
counted beside the first batches with nothing committed before it and the guard, a walker's
failure stopping the other, a process killed with a batch of each walker under way, the
daemon's job stopping both, and the command line leaving one policy's plan to its run."""

from __future__ import annotations

import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, event, exc

import auditor.retention.enforce as enforce_module
from auditor.cli import cli
from auditor.core.chain import verify
from auditor.core.jobs import JobCancelled
from auditor.core.ledger import SourceTransaction
from auditor.core.yamlsource import parse_yaml
from auditor.retention import enforce_policy, parse_retention, reconcile_policy
from auditor.retention.enforce import RetentionRefusedError
from auditor.retention.job import RetentionJob
from auditor.retention.reconcile import Batch
from auditor.sources.config import ConfigRef, DataSourceSettings
from auditor.sources.datasources import DataSourceError
from auditor.store import StateStore
from tests.helpers import write_config
from tests.retention.test_retention import (
    bound_policy,
    clock,
    evidence_of,
    killed_when,
    policy_text,
)
from tests.retention.test_retention_ranges import (
    ELIGIBLE,
    RECORDS,
    ROWS,
    Transactions,
    _engine,  # noqa: F401  (the `engine` fixture)
    batch_records,
    keys_of,
)

pytestmark = pytest.mark.postgres


class Walks:
    """What a run did, by thread: the transaction each intent named and when, when the plan was
    counted, the statements each thread ran and when."""

    def __init__(self, bound: Any, store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.begun: dict[int, tuple[str, SourceTransaction, float]] = {}
        self.transactions = Transactions(bound.source.engine)
        self.deletes: list[tuple[str, float]] = []
        self.rollbacks = 0
        self.planned: float | None = None
        self.lock = threading.Lock()
        begin = store.begin_retention_batch
        plan = enforce_module.plan_policy

        def begun(intent: Any) -> int:
            found = begin(intent)
            with self.lock:
                name = threading.current_thread().name
                self.begun[intent.batch] = (name, intent.source_transaction, time.monotonic())
            return found

        def planned(*args: Any, **kwargs: Any) -> Any:
            time.sleep(self.plan_delay)  # a large table's count, here
            found = plan(*args, **kwargs)
            self.planned = time.monotonic()
            return found

        def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if statement.lstrip().upper().startswith(("DELETE", "WITH")):
                with self.lock:
                    self.deletes.append((threading.current_thread().name, time.monotonic()))

        def rolled_back(*_: Any) -> None:
            self.rollbacks += 1

        self.plan_delay = 0.0
        store.begin_retention_batch = begun  # type: ignore[method-assign]
        monkeypatch.setattr(enforce_module, "plan_policy", planned)
        event.listen(bound.source.engine, "before_cursor_execute", executed)
        event.listen(bound.source.engine, "rollback", rolled_back)

    @property
    def intents(self) -> dict[int, tuple[str, set[int], float]]:
        """By batch: its thread, the keys its transaction processed (as many as its intent
        counted) and when its intent was committed."""
        keys = self.transactions.by_batch({b: held for b, (_, held, _) in self.begun.items()})
        return {batch: (name, keys[batch], at) for batch, (name, _, at) in self.begun.items()}

    @property
    def threads(self) -> set[str]:
        return {name for name, _, _ in self.begun.values()}

    def keys(self) -> list[int]:
        return [key for _, keys, _ in self.intents.values() for key in keys]


@pytest.fixture(name="beside")
def _beside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count every table beside its first batches, however small."""
    monkeypatch.setattr(enforce_module, "BESIDE", 0)


def test_two_walkers_each_on_its_connection_process_exactly_the_eligible_records(
    engine: Engine, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The table is walked in two parts at once, each batch from one walker's thread; together
    they process exactly the eligible records, no key twice, the batch numbers 0..n-1 once
    each, and the evidence counts every batch."""
    url = engine.url.render_as_string(False)
    with bound_policy(url, batch_size=97, **RECORDS) as bound:
        walks = Walks(bound, store, monkeypatch)
        done = enforce_policy(bound, clock, store)
        again = enforce_policy(bound, clock, store)

    assert {"retention-walker-0", "retention-walker-1"} == walks.threads
    assert sorted(ELIGIBLE) == sorted(walks.keys())
    assert set(range(1, ROWS + 1)) - ELIGIBLE == keys_of(engine)
    assert (len(ELIGIBLE), "done", 0) == (done.processed, done.outcome, again.processed)
    assert list(range(done.batches)) == sorted(walks.intents)
    assert {b: len(keys) for b, (_, keys, _) in walks.intents.items()} == batch_records(store)
    assert verify(evidence_of(store)).ok


def test_the_limit_is_shared_exactly(
    engine: Engine, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--max-rows 250 with batches of 40 on two walkers: exactly 250 records, whichever walker
    took them."""
    url = engine.url.render_as_string(False)
    with bound_policy(url, batch_size=40, **RECORDS) as bound:
        walks = Walks(bound, store, monkeypatch)
        done = enforce_policy(bound, clock, store, max_rows=250)

    assert (250, "limit-reached") == (done.processed, done.outcome)
    assert 250 == len(set(range(1, ROWS + 1)) - keys_of(engine)) == len(walks.keys())
    assert 2 == len(walks.threads)


def test_the_plan_counted_beside_the_first_batches_comes_before_every_intent(
    engine: Engine, store: StateStore, monkeypatch: pytest.MonkeyPatch, beside: None
) -> None:
    """While the plan is counted (slowly), both walkers already process their first ranges;
    no intent is committed (and so nothing in the data source) before the plan is in. Run
    again, the plan finds nothing to do, and the walkers stop with nothing committed."""
    url = engine.url.render_as_string(False)
    with bound_policy(url, batch_size=100, **RECORDS) as bound:
        walks = Walks(bound, store, monkeypatch)
        walks.plan_delay = 0.3
        done = enforce_policy(bound, clock, store)
        planned, deletes, intents = walks.planned, list(walks.deletes), dict(walks.intents)
        again = enforce_policy(bound, clock, store)  # nothing left: the plan says so

    assert planned is not None
    assert {name for name, at in deletes if at < planned} == walks.threads
    assert all(at > planned for _, _, at in intents.values())
    assert (0, 0, "done") == (again.processed, again.batches, again.outcome)
    assert intents == walks.intents
    assert (len(ELIGIBLE), "done") == (done.processed, done.outcome)
    assert not ELIGIBLE & keys_of(engine)
    assert len(ELIGIBLE) == sum(batch_records(store).values())


def test_a_run_refused_by_the_plan_counted_beside_commits_nothing(
    engine: Engine, store: StateStore, monkeypatch: pytest.MonkeyPatch, beside: None
) -> None:
    """The walkers' first ranges are deleted, uncommitted, when the plan (counted beside) says
    the run would process more than max_share: refused, every record is still there, no
    intent and no batch evidence, one `refused` run record."""
    before = keys_of(engine)
    url = engine.url.render_as_string(False)
    with bound_policy(url, batch_size=100, **{**RECORDS, "max_share": 0.01}) as bound:
        walks = Walks(bound, store, monkeypatch)
        walks.plan_delay = 0.2
        with pytest.raises(RetentionRefusedError):
            enforce_policy(bound, clock, store)
        pending = store.pending_retention_batches("crm-contacts")

    assert walks.deletes  # they did go ahead, and were rolled back
    assert before == keys_of(engine)
    assert ([], {}) == (pending, walks.intents)
    runs = [r.data() for r in evidence_of(store)]
    assert ["refused"] == [r["outcome"] for r in runs]


def test_a_late_plan_undoes_the_first_ranges_and_no_transaction_waits_for_it(
    engine: Engine, store: StateStore, monkeypatch: pytest.MonkeyPatch, beside: None
) -> None:
    """A walker waits for the plan at most WAIT into its transaction; here the plan takes
    longer, so the first ranges are rolled back and taken again once it is in: no transaction
    lasted as long as the plan, and exactly the eligible records go."""
    monkeypatch.setattr("auditor.retention.parallel.WAIT", 0.05)
    url = engine.url.render_as_string(False)
    with bound_policy(url, batch_size=100, **RECORDS) as bound:
        walks = Walks(bound, store, monkeypatch)
        # Far longer than any batch here takes, so that a transaction that waited for the plan
        # stands out from one that only met a slow moment of a busy machine.
        walks.plan_delay = 1.5
        done = enforce_policy(bound, clock, store)

    assert walks.rollbacks >= 2
    assert done.longest_transaction_seconds < 1.0
    assert (len(ELIGIBLE), "done") == (done.processed, done.outcome)
    assert sorted(ELIGIBLE) == sorted(walks.keys())


def test_a_failing_walker_stops_the_other_and_the_evidence_adds_up(
    engine: Engine, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second walker's third statement fails (a lost connection): the run stops with the
    data source's error, the first walker ends its batch under way (settled) and begins no
    other; the run record says `stopped`; the evidence counts exactly what was deleted, and
    the next run finishes."""
    url = engine.url.render_as_string(False)
    failed: list[float] = []

    def fail(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name != "retention-walker-1" or "DELETE" not in statement:
            return
        failed.append(time.monotonic())
        if len(failed) == 3:
            raise exc.OperationalError(statement, {}, Exception("server closed the connection"))

    with bound_policy(url, batch_size=50, **RECORDS) as bound:
        walks = Walks(bound, store, monkeypatch)
        event.listen(bound.source.engine, "before_cursor_execute", fail)
        with pytest.raises(DataSourceError, match="server closed the connection"):
            enforce_policy(bound, clock, store)
        event.remove(bound.source.engine, "before_cursor_execute", fail)
        begun = [at for _, _, at in walks.intents.values()]
        deleted = ELIGIBLE - keys_of(engine)
        stopped = [r.data() for r in evidence_of(store) if r.kind == "retention-run"]
        pending = store.pending_retention_batches("crm-contacts")
        finished = enforce_policy(bound, clock, store)

    # At most the other walker's batch under way began after the failure.
    assert len([at for at in begun if at > failed[2]]) <= 1
    assert [] == pending
    assert ["stopped"] == [r["outcome"] for r in stopped]
    assert 0 < len(deleted) == stopped[0]["rows"] < len(ELIGIBLE)
    assert len(ELIGIBLE) == sum(batch_records(store).values())
    assert (len(ELIGIBLE) - len(deleted), "done") == (finished.processed, finished.outcome)
    assert not ELIGIBLE & keys_of(engine)
    assert verify(evidence_of(store)).ok


def test_a_run_killed_with_a_batch_of_each_walker_under_way_is_reconciled(
    engine: Engine, tmp_path: Path
) -> None:
    """SIGKILL while one walker's batch is committed in the data source but not settled and
    the other's is deleted but not committed: both intents are pending; reconciliation
    records the first's rows and 0 for the second; the next run finishes, and the evidence
    adds up to exactly the records deleted."""
    state_url = f"sqlite:///{tmp_path / 'state.db'}"
    StateStore.open(state_url).close()
    policy_file = tmp_path / "retention.yaml"
    overrides = {"batch_size": 60, **RECORDS}
    policy_file.write_text(policy_text(**overrides))
    paths = (str(policy_file), state_url)
    url = engine.url.render_as_string(False)
    transactions = Transactions(engine)
    both = {"committed", "uncommitted"}
    returned = killed_when(lambda printed: both <= set(printed), KILLED_TWO, url, *paths)
    assert -signal.SIGKILL == returned

    store = StateStore.open(state_url)
    try:
        deleted = ELIGIBLE - keys_of(engine)
        processed = transactions.keys()
        held = [
            p.intent.source_transaction for p in store.pending_retention_batches("crm-contacts")
        ]
        with bound_policy(url, **overrides) as bound:
            reconciled = reconcile_policy(bound, store, clock)
            finished = enforce_policy(bound, clock, store)
        chain = evidence_of(store)
    finally:
        store.close()

    assert 2 == len(held) and all(h is not None and h.processed > 0 for h in held)
    # The trigger's record of the uncommitted batch went with it: one transaction committed.
    (committed,) = [h for h in held if h is not None and h.id in processed]
    keys = processed[committed.id]
    assert committed.processed == len(keys) and keys <= deleted
    assert sorted([0, len(keys)]) == sorted(batch.rows for batch in reconciled)
    assert (len(ELIGIBLE) - len(deleted), "done") == (finished.processed, finished.outcome)
    assert not ELIGIBLE & keys_of(engine)
    batches = [r.data() for r in chain if r.kind == "retention-batch"]
    assert len(ELIGIBLE) == sum(b["rows"] for b in batches)
    assert verify(chain).ok


KILLED_TWO = textwrap.dedent(
    """
    import sys, threading, time
    from datetime import UTC, datetime
    from pathlib import Path
    from auditor.sources.config import ConfigRef, DataSourceSettings
    from auditor.retention import bind_policy, enforce_policy, load_retention_policies
    from auditor.sources.datasources import DataSources
    from auditor.store import StateStore

    url, policy_path, state_url = sys.argv[1:4]
    now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    store = StateStore.open(state_url)
    settle, begin = store.settle_retention_batch, store.begin_retention_batch
    counts = {}

    def nth(name):
        counts[name] = counts.get(name, 0) + 1
        return counts[name]

    def slow_settle(*args, **kwargs):
        # Walker 0's second batch, committed in the data source, waits before its evidence.
        if threading.current_thread().name == "retention-walker-0" and nth("settle") == 2:
            say("committed")
            time.sleep(60)
        return settle(*args, **kwargs)

    def slow_begin(*args, **kwargs):
        # Walker 1's second batch, its intent committed, waits before its COMMIT.
        found = begin(*args, **kwargs)
        if threading.current_thread().name == "retention-walker-1" and nth("begin") == 2:
            say("uncommitted")
            time.sleep(60)
        return found

    store.settle_retention_batch = slow_settle
    store.begin_retention_batch = slow_begin
    ref = ConfigRef("auditor.yaml", "data_sources.crm")
    settings = {"crm": DataSourceSettings("crm", url, None, False, ref)}
    with DataSources(settings) as sources:
        bound = bind_policy(load_retention_policies([Path(policy_path)])[0], sources)
        enforce_policy(bound, lambda: now, store)
    say("finished")
    """
)


def test_the_listener_hears_of_one_batch_at_a_time(
    engine: Engine, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller's listener is called from both walkers' threads, never from two at once."""
    url = engine.url.render_as_string(False)
    inside: list[int] = []
    overlapped: list[bool] = []
    heard: list[Batch] = []

    def listener(batch: Batch) -> None:
        inside.append(1)
        overlapped.append(len(inside) > 1)
        time.sleep(0.01)
        heard.append(batch)
        inside.pop()

    with bound_policy(url, batch_size=60, **RECORDS) as bound:
        walks = Walks(bound, store, monkeypatch)
        done = enforce_policy(bound, clock, store, on_batch=listener)

    assert 2 == len(walks.threads)
    assert not any(overlapped)
    assert done.batches == len(heard)
    assert len(ELIGIBLE) == sum(batch.rows for batch in heard)


def test_the_daemon_job_stops_both_walkers_and_counts_what_they_did(
    engine: Engine, store: StateStore
) -> None:
    """The daemon's retention job on a table walked in two halves: its check, called from the
    walkers' threads, stops the run (JobCancelled reaches the job's caller); the batches done
    are counted in its metrics state exactly as deleted, and the run record says `stopped`."""
    url = engine.url.render_as_string(False)
    found, issues = parse_retention(
        parse_yaml(policy_text(batch_size=50, **RECORDS, mode="enforce"), "r.yaml")
    )
    assert [] == issues
    settings = {
        "crm": DataSourceSettings("crm", url, None, False, ConfigRef("auditor.yaml", "crm"))
    }
    job = RetentionJob(
        policies=lambda: found, data_sources=lambda: settings, ledger=store, clock=clock, environ={}
    )
    calls: list[str] = []
    lock = threading.Lock()

    def stop_after_some() -> None:
        with lock:
            calls.append(threading.current_thread().name)
            if len(calls) > 8:
                raise JobCancelled("stopping")

    with pytest.raises(JobCancelled):
        job(stop_after_some)
    deleted = ELIGIBLE - keys_of(engine)
    runs = [r.data() for r in evidence_of(store) if r.kind == "retention-run"]

    assert {"retention-walker-0", "retention-walker-1"} <= set(calls)
    assert 0 < len(deleted) < len(ELIGIBLE)
    assert {("crm-contacts", "delete"): len(deleted)} == job.state.snapshot_fields()[
        "retention_processed"
    ]
    assert [("stopped", len(deleted))] == [(r["outcome"], r["rows"]) for r in runs]
    assert len(deleted) == sum(batch_records(store).values())
    assert [] == store.pending_retention_batches("crm-contacts")


def test_the_command_line_enforcing_one_policy_counts_it_beside_its_first_batches(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, beside: None
) -> None:
    """`retention enforce` with one policy leaves its planning to the run: the walkers have
    deleted (uncommitted) before the plan refuses the run for its share, and the run's own
    `refused` record is in the evidence; exit status 2, every record still there."""
    before = keys_of(engine)
    url = engine.url.render_as_string(False)
    (tmp_path / "retention").mkdir()
    overrides = {**RECORDS, "max_share": 0.01, "batch_size": 100}
    (tmp_path / "retention" / "crm.yaml").write_text(policy_text(**overrides))
    config = write_config(
        tmp_path,
        database={"url": "sqlite:///state.db"},
        data_sources={"crm": {"url": url, "read_only": False}},
        retention=["retention/"],
    )
    deletes: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "DELETE FROM records" in statement:
            deletes.append(statement)

    event.listen(Engine, "before_cursor_execute", executed)
    try:
        refused = CliRunner().invoke(cli, ["retention", "enforce", "--config", str(config)])
    finally:
        event.remove(Engine, "before_cursor_execute", executed)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        runs = [r.data()["outcome"] for r in evidence_of(store) if r.kind == "retention-run"]
    finally:
        store.close()

    assert 2 == refused.exit_code, refused.output
    assert "refused, nothing was changed" in refused.output
    assert deletes
    assert ["refused"] == runs
    assert before == keys_of(engine)
