"""Retention evidence under faults, on SQLite, PostgreSQL and MariaDB data sources: a process
SIGKILLed between a batch's commit and its evidence, a state database locked past its timeout
before or after a batch, a reconciliation racing a batch. After the next run, the
`retention-batch` records add up to exactly the records deleted or anonymised, and the chain
verifies."""

from __future__ import annotations

import signal
import sqlite3
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from auditor.core.chain import verify
from auditor.core.errors import StoreError
from auditor.core.yamlsource import parse_yaml
from auditor.evidence.ledgers import retention as report_retention
from auditor.retention import enforce_policy, parse_retention, reconcile_policy
from auditor.retention.job import RetentionJob, RetentionJobError
from auditor.store import StateStore
from auditor.store import engine as store_engine
from tests.conftest import OrgDatabase
from tests.retention.test_retention import (
    ELIGIBLE,
    SECRET,
    _crm,  # noqa: F401  (the `crm` fixture)
    bound_policy,
    clock,
    evidence_of,
    hashed,
    killed_at,
    people,
    policy_text,
    rows_of,
    source_settings,
)

ANONYMISE: dict[str, Any] = {
    "action": "anonymise",
    "anonymise": {"email": {"hash": True}, "name": None, "phone": {"value": "redacted"}},
}
ORIGINAL = {row["id"]: row for row in people()}


def processed_in_source(org: OrgDatabase, action: str) -> set[int]:
    """The records the data source shows deleted, or anonymised (every column replaced)."""
    rows = rows_of(org)
    if action == "delete":
        return set(ORIGINAL) - set(rows)
    return {
        ident
        for ident, row in rows.items()
        if row[1:4] == (hashed(ORIGINAL[ident]["email"]), None, "redacted")
    }


def recorded_rows(store: StateStore) -> int:
    """What the evidence report says was processed: its retention rows, summed."""
    return sum(group["rows"] for group in report_retention(evidence_of(store)))


def batch_rows(store: StateStore) -> int:
    return sum(r.data()["rows"] for r in evidence_of(store) if r.kind == "retention-batch")


@pytest.fixture(name="state")
def _state(state_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[StateStore]:
    """A state store (SQLite or PostgreSQL) whose writers give up on a lock after half a second."""
    monkeypatch.setattr(store_engine, "BUSY_TIMEOUT_SECONDS", 0.5)
    store = StateStore.open(state_url)
    yield store
    store.close()


@contextmanager
def locked(store: StateStore) -> Iterator[None]:
    """Hold the state database's write lock from another connection: SQLite BEGIN EXCLUSIVE,
    PostgreSQL a lock on the intents table that lets readers in and no writer."""
    if store.engine.dialect.name == "sqlite":
        path = store.engine.url.database
        assert path is not None
        # The batches may run on a thread of their own (by row address, on PostgreSQL).
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    engine = create_engine(store.engine.url)
    try:
        with engine.connect() as other, other.begin():
            other.execute(text("LOCK TABLE retention_intents IN EXCLUSIVE MODE"))
            yield
    finally:
        engine.dispose()


@contextmanager
def uncommitted(
    engine: Engine, store: StateStore, nth: int, then: Callable[[], None]
) -> Iterator[None]:
    """Call `then` once, when the `nth` batch's intent is committed and its DELETE done but not
    committed: after the DELETE where the intent comes first, after the intent on PostgreSQL,
    where one statement reads and deletes a batch before its intent is committed."""
    begin = store.begin_retention_batch
    begun: list[int] = []
    deleted: list[int] = []

    def maybe() -> None:
        if len(begun) == len(deleted) == nth:
            then()

    def begin_then(intent: Any) -> int:
        found = begin(intent)
        begun.append(found)
        maybe()
        return found

    def delete_then(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "DELETE FROM" in statement.upper():
            deleted.append(1)
            maybe()

    store.begin_retention_batch = begin_then  # type: ignore[method-assign]
    event.listen(engine, "after_cursor_execute", delete_then)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", delete_then)
        del store.begin_retention_batch


class TestKilled:
    @pytest.mark.slow
    @pytest.mark.parametrize("action", ["delete", "anonymise"])
    def test_a_batch_killed_after_its_commit_is_reconciled_and_the_evidence_adds_up(
        self, crm: OrgDatabase, tmp_path: Path, action: str
    ) -> None:
        """SIGKILL after the third batch committed in the data source and before its evidence:
        its intent is pending; the next run records what it did (reconciled) and finishes, and
        the evidence totals equal the records processed in the data source."""
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        StateStore.open(state_url).close()
        overrides: dict[str, Any] = {"batch_size": 2, **(ANONYMISE if action != "delete" else {})}
        policy_file = tmp_path / "retention.yaml"
        policy_file.write_text(policy_text(**overrides))
        args = (crm.url, str(policy_file), state_url)
        assert -signal.SIGKILL == killed_at("committed", 1, KILLED_AFTER_COMMIT, *args)
        store = StateStore.open(state_url)
        try:
            # Batches {1, 2}, {4, 5}, then the third ({7, 9} by key, {7} by row address on
            # PostgreSQL) committed, without evidence: its intent names its keys, or (by row
            # address) the transaction that processed them, and how many.
            processed = processed_in_source(crm, action)
            pending = store.pending_retention_batches("crm-contacts")
            assert [2] == [p.intent.batch for p in pending]
            third = processed - {1, 2, 4, 5}
            assert third in ({7, 9}, {7})
            held = pending[0].intent.source_transaction
            named = set(pending[0].intent.keys) if held is None else held.processed
            assert named == (third if held is None else len(third))
            # By row address: PostgreSQL, without keyed hashes.
            assert (held is not None) == (crm.kind == "postgresql" and action == "delete")
            assert 4 == batch_rows(store)
            with bound_policy(crm.url, **overrides) as bound:
                finished = enforce_policy(bound, clock, store, secret=SECRET)
            chain = evidence_of(store)
        finally:
            store.close()

        assert (len(ELIGIBLE) - len(processed), "done") == (finished.processed, finished.outcome)
        assert ELIGIBLE == processed_in_source(crm, action)
        reconciled = [r.data() for r in chain if r.data().get("reconciled")]
        assert [(2, len(third))] == [(d["batch"], d["rows"]) for d in reconciled]
        assert len(ELIGIBLE) == batch_rows(store) == recorded_rows(store)
        assert verify(chain).ok
        assert "example.org" not in "".join(r.content for r in chain)

    @pytest.mark.slow
    def test_a_batch_killed_before_its_commit_is_reconciled_as_nothing_done(
        self, crm: OrgDatabase, tmp_path: Path
    ) -> None:
        """SIGKILL while the third DELETE is uncommitted, its intent committed: rolled back; its
        reconciliation records 0 rows, and the totals still equal the records deleted."""
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        StateStore.open(state_url).close()
        policy_file = tmp_path / "retention.yaml"
        policy_file.write_text(policy_text(batch_size=2))
        killed_at("uncommitted", 1, KILLED_AFTER_COMMIT, crm.url, str(policy_file), state_url, "x")
        store = StateStore.open(state_url)
        try:
            assert {1, 2, 4, 5} == processed_in_source(crm, "delete")
            with bound_policy(crm.url, batch_size=2) as bound:
                reconciled = reconcile_policy(bound, store, clock)
                finished = enforce_policy(bound, clock, store)
            total = batch_rows(store)
            ok = verify(evidence_of(store)).ok
        finally:
            store.close()

        assert [0] == [batch.rows for batch in reconciled]
        assert (3, "done") == (finished.processed, finished.outcome)
        assert len(ELIGIBLE) == total == len(processed_in_source(crm, "delete"))
        assert ok


KILLED_AFTER_COMMIT = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from sqlalchemy import event
    from auditor.sources.config import ConfigRef, DataSourceSettings
    from auditor.retention import bind_policy, enforce_policy, load_retention_policies
    from auditor.sources.datasources import DataSources
    from auditor.store import StateStore

    # Batches of exactly batch_size, however slow this machine's commits (as tests/conftest.py).
    import auditor.retention.batches
    auditor.retention.batches.TARGET_TRANSACTION_SECONDS = 3600.0
    url, policy_path, state_url = sys.argv[1:4]
    before_commit = len(sys.argv) > 4
    now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    store = StateStore.open(state_url)
    settle = store.settle_retention_batch
    settled = []

    def slow_settle(*args, **kwargs):
        # After the batch's data-source COMMIT, before its evidence: the third one waits there
        # for the parent's SIGKILL.
        settled.append(1)
        if len(settled) == 3 and not before_commit:
            say("committed")
            time.sleep(30)
        return settle(*args, **kwargs)

    store.settle_retention_batch = slow_settle
    begin = store.begin_retention_batch
    begun = []
    changes = []

    def uncommitted():
        # The third batch's intent committed and its DELETE done, before its COMMIT: whichever
        # comes second waits for the parent's SIGKILL (on PostgreSQL the DELETE comes first).
        if before_commit and len(begun) == len(changes) == 3:
            say("uncommitted")
            time.sleep(30)

    def slow_begin(*args, **kwargs):
        intent = begin(*args, **kwargs)
        begun.append(1)
        uncommitted()
        return intent

    def slow_change(conn, cursor, statement, *args):
        if "DELETE FROM" in statement.upper():
            changes.append(1)
            uncommitted()

    store.begin_retention_batch = slow_begin

    ref = ConfigRef("auditor.yaml", "data_sources.crm")
    settings = {"crm": DataSourceSettings("crm", url, None, False, ref)}
    with DataSources(settings) as sources:
        bound = bind_policy(load_retention_policies([Path(policy_path)])[0], sources)
        event.listen(bound.source.engine, "after_cursor_execute", slow_change)
        secret = b"a test secret of 32 bytes......."
        enforce_policy(bound, lambda: now, store, secret=secret)
    say("finished")
    """
)


class TestStateDatabaseLocked:
    def test_no_batch_runs_without_a_committed_intent(
        self, crm: OrgDatabase, state: StateStore
    ) -> None:
        """The state database locked past its timeout: the first intent cannot be committed, so
        nothing in the data source changes and the run stops with the store's error; after the
        lock is gone, the next run does everything and the evidence adds up."""
        before = rows_of(crm)
        with bound_policy(crm.url, batch_size=2) as bound:
            with locked(state), pytest.raises(StoreError, match="state database"):
                enforce_policy(bound, clock, state)
            unchanged = rows_of(crm)
            finished = enforce_policy(bound, clock, state)

        assert before == unchanged
        assert (len(ELIGIBLE), "done") == (finished.processed, finished.outcome)
        assert len(ELIGIBLE) == batch_rows(state) == recorded_rows(state)
        assert verify(evidence_of(state)).ok

    def test_a_batch_whose_evidence_cannot_be_written_is_reconciled(
        self, crm: OrgDatabase, state: StateStore
    ) -> None:
        """The lock is taken while the second batch runs (its intent committed, its DELETE
        done, not yet committed): the batch commits in the data source,
        its evidence cannot be written and the run stops; the run record says one batch is
        unsettled, and the next plan's reconciliation records its rows."""
        with bound_policy(crm.url, batch_size=2) as bound:
            holder: list[Any] = []

            def lock() -> None:
                holder.append(locked(state))
                holder[0].__enter__()

            with uncommitted(bound.source.engine, state, 2, lock):
                try:
                    with pytest.raises(StoreError):
                        enforce_policy(bound, clock, state)
                finally:
                    holder[0].__exit__(None, None, None)
            deleted = processed_in_source(crm, "delete")
            unrecorded = batch_rows(state)
            reconciled = reconcile_policy(bound, state, clock)
            finished = enforce_policy(bound, clock, state)

        assert {1, 2, 4, 5} == deleted
        assert 2 == unrecorded
        assert [(1, 2)] == [(batch.index, batch.rows) for batch in reconciled]
        assert len(ELIGIBLE) - 4 == finished.processed
        assert len(ELIGIBLE) == batch_rows(state) == len(processed_in_source(crm, "delete"))
        assert verify(evidence_of(state)).ok

    def test_the_job_counts_a_locked_state_database_as_a_failure_and_changes_nothing(
        self, crm: OrgDatabase, state: StateStore
    ) -> None:
        """In the daemon's job the policy fails with the store's error (a failed job)."""
        found, _ = parse_retention(
            parse_yaml(policy_text(mode="enforce", batch_size=2), "retention.yaml")
        )
        job = RetentionJob(
            policies=lambda: found,
            data_sources=lambda: source_settings(crm.url),
            ledger=state,
            clock=clock,
            environ={},
        )
        before = rows_of(crm)
        with locked(state), pytest.raises(RetentionJobError) as failed:
            job(lambda: None)

        assert before == rows_of(crm)
        assert "crm-contacts" in failed.value.failures
        assert "state database" in failed.value.failures["crm-contacts"]
        assert {} == job.state.snapshot_fields()["retention_last_enforcement"]


def test_a_reconciliation_during_a_batch_is_corrected_by_its_confirmation(
    crm: OrgDatabase, tmp_path: Path
) -> None:
    """A reconciliation (another process's `retention plan`) that runs while a batch's change
    is uncommitted finds nothing done; the batch's confirmation then records the difference, so
    the totals are exact. By row address (PostgreSQL), the server says the batch's transaction
    is still in progress: it stays pending, and its confirmation records it once."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with (
            bound_policy(crm.url, batch_size=100) as bound,
            # The same policy through its own data-source connection, as another process has it.
            bound_policy(crm.url, batch_size=100) as other,
        ):
            raced: list[int] = []

            def race() -> None:
                raced.extend(b.rows for b in reconcile_policy(other, store, clock))

            with uncommitted(bound.source.engine, store, 1, race):
                done = enforce_policy(bound, clock, store)
        chain = [r.data() for r in evidence_of(store) if r.kind == "retention-batch"]
    finally:
        store.close()

    assert len(ELIGIBLE) == done.processed
    assert len(ELIGIBLE) == sum(d["rows"] for d in chain)
    if crm.kind == "postgresql":
        assert [] == raced
        assert [(len(ELIGIBLE), None)] == [(d["rows"], d.get("correction")) for d in chain]
    else:
        assert [0] == raced
        assert [0, len(ELIGIBLE)] == [d["rows"] for d in chain]
        assert [True] == [d.get("correction") for d in chain if "correction" in d]
