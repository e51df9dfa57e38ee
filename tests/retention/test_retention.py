"""Retention plan and enforcement on SQLite, PostgreSQL and MariaDB: the deadline boundary, legal
holds, anonymise and delete, records changed mid-batch, SIGKILL mid-run, and the guard rails."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    text,
    update,
)

from auditor.core.chain import EvidenceRecord, verify
from auditor.core.errors import InvalidInputError
from auditor.core.ledger import SourceTransaction
from auditor.core.yamlsource import parse_yaml
from auditor.retention import (
    BoundPolicy,
    RetentionRefusedError,
    bind_policy,
    enforce_policy,
    is_overdue,
    parse_retention,
    plan_policy,
    reconcile_policy,
    retention_deadline,
)
from auditor.retention.intent import range_intent
from auditor.retention.ranges import walkable
from auditor.sources.config import ConfigRef, DataSourceSettings
from auditor.sources.datasources import DataSourceError, DataSources
from auditor.store import StateStore
from auditor.store.evidence import records
from tests.conftest import OrgDatabase

NOW = datetime(2026, 11, 22, 10, 30, 0, 400_000, tzinfo=UTC)
DEADLINE = datetime(2024, 11, 22, 10, 30, tzinfo=UTC)  # NOW - P2Y, whole seconds
SECRET = b"a test secret of 32 bytes......."
ROOT = Path(__file__).resolve().parents[2]


def clock() -> datetime:
    return NOW


def contacts(metadata: MetaData) -> Table:
    return Table(
        "contacts",
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("email", String(120)),
        Column("name", String(80)),
        Column("phone", String(40)),
        Column("status", String(20), nullable=False),
        Column("last_activity_at", DateTime),
        Column("legal_hold", Boolean),
    )


def held_contacts(metadata: MetaData) -> Table:
    return Table(
        "held_contacts",
        metadata,
        Column("contact_id", Integer, primary_key=True, autoincrement=False),
        Column("active", Boolean, nullable=False),
    )


def stamp(ident: int) -> datetime:
    """10 at the deadline, 11 a second before, 12 a second after; below 10 older, above 12 newer."""
    exact = {10: DEADLINE, 11: DEADLINE - timedelta(seconds=1), 12: DEADLINE + timedelta(seconds=1)}
    return exact.get(ident, DEADLINE + timedelta(days=(ident - 10) * 37))


def people() -> list[dict[str, Any]]:
    return [
        {
            "id": ident,
            "email": "shared@example.org" if ident in (2, 7) else f"person{ident}@example.org",
            "name": f"Person {ident}",
            "phone": f"+49 30 {ident:04d}",
            "status": "active" if ident % 6 == 0 else "inactive",
            "last_activity_at": stamp(ident).replace(tzinfo=None),
            "legal_hold": True if ident in (3, 8) else (None if ident == 5 else False),
        }
        for ident in range(1, 31)
    ]


OVERDUE = {1, 2, 3, 4, 5, 7, 8, 9, 11}  # inactive, before the deadline (6 is active)
HELD = {3, 8}
ELIGIBLE = OVERDUE - HELD


def policy_text(**overrides: Any) -> str:
    entry: dict[str, Any] = {
        "id": "crm-contacts",
        "source": "crm",
        "table": "contacts",
        "key": "id",
        "timestamp": "last_activity_at",
        "keep_for": "P2Y",
        "filter": {"status": "inactive"},
        "legal_hold": {"column": "legal_hold"},
        "action": "delete",
        "batch_size": 3,
        "max_share": 0.5,
    }
    entry.update(overrides)
    return yaml.safe_dump({"policies": [{k: v for k, v in entry.items() if v is not None}]})


def source_settings(url: str, read_only: bool = False) -> dict[str, DataSourceSettings]:
    ref = ConfigRef("auditor.yaml", "data_sources.crm", {"": 3})
    return {"crm": DataSourceSettings("crm", url, None, read_only, ref)}


@contextmanager
def bound_policy(url: str, read_only: bool = False, **overrides: Any) -> Iterator[BoundPolicy]:
    found, issues = parse_retention(parse_yaml(policy_text(**overrides), "retention.yaml"))
    assert [] == issues
    with DataSources(source_settings(url, read_only)) as sources:
        yield bind_policy(found[0], sources)


@pytest.fixture(name="crm")
def _crm(org_database: OrgDatabase) -> OrgDatabase:
    """The contacts (and held contacts) loaded into the organisation's database."""
    return load_crm(org_database)


def load_crm(org_database: OrgDatabase) -> OrgDatabase:
    """Create the contacts and held contacts in `org_database` and fill them."""
    metadata = MetaData()
    table, held = contacts(metadata), held_contacts(metadata)
    metadata.create_all(org_database.engine)
    with org_database.engine.begin() as connection:
        connection.execute(insert(table), people())
        connection.execute(
            insert(held),
            [
                {"contact_id": 3, "active": True},
                {"contact_id": 8, "active": True},
                {"contact_id": 9, "active": False},
            ],
        )
    return org_database


def rows_of(org: OrgDatabase) -> dict[int, tuple[Any, ...]]:
    table = contacts(MetaData())
    with org.engine.connect() as connection:
        return {
            row.id: tuple(row) for row in connection.execute(select(table).order_by(table.c.id))
        }


def evidence_of(store: StateStore) -> list[EvidenceRecord]:
    with store.engine.connect() as connection:
        return list(records(connection))


def hashed(value: str) -> str:
    return "hmac:" + hmac.new(SECRET, value.encode(), hashlib.sha256).hexdigest()


class TestPlan:
    def test_plan_counts_overdue_held_and_the_oldest_record(self, crm: OrgDatabase) -> None:
        """Overdue counts the in-scope records before the deadline, held those on hold; the
        record exactly at the deadline is not overdue, the one a second before is."""
        with bound_policy(crm.url) as bound:
            plan = plan_policy(bound, NOW)

        assert (DEADLINE, 30, len(OVERDUE), len(HELD), len(ELIGIBLE)) == (
            plan.deadline,
            plan.table_rows,
            plan.overdue,
            plan.held,
            plan.eligible,
        )
        assert stamp(1) == plan.oldest_overdue
        assert (NOW - stamp(1)).total_seconds() == plan.oldest_age_seconds
        assert (len(ELIGIBLE), False) == (plan.to_process, plan.share_exceeded)

    def test_report_policies_process_nothing_and_max_rows_caps_the_run(
        self, crm: OrgDatabase
    ) -> None:
        """`report` plans zero to process; --max-rows lowers what one run would process."""
        with bound_policy(crm.url, action="report") as bound:
            report = plan_policy(bound, NOW)
        with bound_policy(crm.url) as bound:
            capped = plan_policy(bound, NOW, max_rows=2)

        assert (len(ELIGIBLE), 0) == (report.eligible, report.to_process)
        assert (2, 2) == (capped.limit, capped.to_process)

    def test_a_legal_hold_table_holds_its_active_keys(self, crm: OrgDatabase) -> None:
        """Keys in the held table (within its filter) are held; an inactive hold holds nothing."""
        hold = {"table": "held_contacts", "key": "contact_id", "filter": {"active": True}}
        with bound_policy(crm.url, legal_hold=hold) as bound:
            plan = plan_policy(bound, NOW)

        # 5 (a NULL flag) and 9 (an inactive hold) are not held here either.
        assert (len(OVERDUE), 2) == (plan.overdue, plan.held)


class TestEnforce:
    def test_delete_removes_exactly_the_overdue_records_not_held(
        self, crm: OrgDatabase, store: StateStore
    ) -> None:
        """Every eligible record is deleted in batches; the rest is untouched; a rerun does nothing."""
        before = rows_of(crm)
        with bound_policy(crm.url) as bound:
            done = enforce_policy(bound, clock, store, secret=SECRET)
            again = enforce_policy(bound, clock, store, secret=SECRET)
        after = rows_of(crm)

        assert (len(ELIGIBLE), 3, "done") == (done.processed, done.batches, done.outcome)
        assert (0, 0, "done") == (again.processed, again.batches, again.outcome)
        assert {k: v for k, v in before.items() if k not in ELIGIBLE} == after

    def test_every_batch_is_evidence_without_keys(
        self, crm: OrgDatabase, store: StateStore
    ) -> None:
        """One chained evidence record per batch (policy, action, rows, a keyed range hash,
        deadline, start, end) and one for the run; no key or e-mail address appears."""
        with bound_policy(crm.url) as bound:
            enforce_policy(bound, clock, store, secret=SECRET)
        chain = evidence_of(store)

        rows = [r.data()["rows"] for r in chain[:-1]]
        assert ["retention-batch"] * len(rows) + ["retention-run"] == [r.kind for r in chain]
        assert verify(chain).ok
        batch = chain[0].data()
        assert {
            "policy": "crm-contacts",
            "action": "delete",
            "deadline": "2024-11-22T10:30:00Z",
            "key_range_keyed": True,
            "batch": 0,
        }.items() <= batch.items()
        assert batch["key_range"].startswith("hmac-sha256:")
        assert {"started_at", "finished_at", "run"} <= batch.keys()
        # By key, every batch but the last is full; on PostgreSQL, by row address, a range may
        # hold fewer (auditor/retention/ranges.py). Never more than batch_size.
        assert len(ELIGIBLE) == sum(rows) and max(rows) <= 3
        assert crm.kind == "postgresql" or [3, 3, 1] == rows
        run = chain[-1].data()
        assert ("done", len(ELIGIBLE)) == (run["outcome"], run["rows"])
        text = "".join(r.content for r in chain)
        assert "example.org" not in text and '"first"' not in text

    def test_anonymise_writes_null_a_value_and_a_keyed_hash_once(
        self, crm: OrgDatabase, store: StateStore
    ) -> None:
        """Eligible records get NULL, the fixed value and HMAC-SHA256 of their value (equal
        values, equal hashes); they then count as done, so a rerun changes nothing."""
        replacements = {"email": {"hash": True}, "name": None, "phone": {"value": "redacted"}}
        before = rows_of(crm)
        with bound_policy(crm.url, action="anonymise", anonymise=replacements) as bound:
            done = enforce_policy(bound, clock, store, secret=SECRET)
            after_plan = plan_policy(bound, NOW)
            again = enforce_policy(bound, clock, store, secret=SECRET)
        after = rows_of(crm)

        assert (len(ELIGIBLE), 0) == (done.processed, again.processed)
        for ident in ELIGIBLE:
            email = before[ident][1]
            assert (hashed(email), None, "redacted") == after[ident][1:4], ident
            assert before[ident][4:] == after[ident][4:]
        assert after[2][1] == after[7][1]  # the same address, the same hash
        assert {k: v for k, v in before.items() if k not in ELIGIBLE} == {
            k: v for k, v in after.items() if k not in ELIGIBLE
        }
        assert (len(HELD), len(HELD), 0) == (
            after_plan.overdue,
            after_plan.held,
            after_plan.eligible,
        )

    def test_anonymise_without_a_hash_is_one_update_per_batch(
        self, crm: OrgDatabase, store: StateStore
    ) -> None:
        """NULL and fixed values alone need no secret, and are written by range."""
        with bound_policy(crm.url, action="anonymise", anonymise={"name": None}) as bound:
            done = enforce_policy(bound, clock, store)
        after = rows_of(crm)

        assert len(ELIGIBLE) == done.processed
        assert {ident for ident, row in after.items() if row[2] is None} == ELIGIBLE
        assert evidence_of(store)[0].data()["key_range"].startswith("sha256:")

    def test_records_held_in_a_table_are_kept(self, crm: OrgDatabase, store: StateStore) -> None:
        """With a legal-hold table, its active keys survive; the NULL column flag is not used."""
        hold = {"table": "held_contacts", "key": "contact_id", "filter": {"active": True}}
        with bound_policy(crm.url, legal_hold=hold) as bound:
            done = enforce_policy(bound, clock, store)

        assert len(ELIGIBLE) == done.processed
        assert HELD <= rows_of(crm).keys()

    def test_a_record_touched_or_held_after_its_batch_was_chosen_is_left_alone(
        self, crm: OrgDatabase, store: StateStore
    ) -> None:
        """Between choosing a batch's keys and its DELETE, one record becomes recent and one is
        put on hold: the DELETE re-checks both and leaves them."""
        recent = (NOW - timedelta(days=1)).replace(tzinfo=None)
        with bound_policy(crm.url, batch_size=100) as bound:
            meddled: list[bool] = []

            def meddle(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
                if meddled or not deletes(statement):
                    return
                meddled.append(True)
                change(crm, cursor, recent)

            event.listen(bound.source.engine, "before_cursor_execute", meddle)
            done = enforce_policy(bound, clock, store)
        remaining = rows_of(crm)

        assert meddled
        assert len(ELIGIBLE) - 2 == done.processed
        assert {2, 4} <= remaining.keys()
        assert not (ELIGIBLE - {2, 4}) & remaining.keys()

    @pytest.mark.postgres
    def test_a_record_held_while_the_batch_waits_for_its_lock_is_left_alone(
        self, postgres_schema_url: str, store: StateStore
    ) -> None:
        """PostgreSQL, where one statement reads and deletes a batch: another transaction puts
        record 4 on hold and commits while the statement waits for that record's lock; the
        statement re-checks it as committed and leaves it, and the evidence counts the others."""
        crm = load_crm(
            OrgDatabase("postgresql", postgres_schema_url, create_engine(postgres_schema_url))
        )
        table = contacts(MetaData())
        waited: list[int] = []
        with crm.engine.connect() as other:
            holding = other.begin()
            other.execute(update(table).where(table.c.id == 4).values(legal_hold=True))
            holder = other.execute(text("SELECT pg_backend_pid()")).scalar_one()

            def release() -> None:
                # Commit the hold once a backend waits for this transaction's row lock.
                blocked = text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :holder = ANY(pg_blocking_pids(pid))"
                )
                deadline = time.monotonic() + 30
                # Each poll in its own transaction: pg_stat_activity is read once per transaction.
                autocommit = crm.engine.execution_options(isolation_level="AUTOCOMMIT")
                with autocommit.connect() as watcher:
                    while time.monotonic() < deadline:
                        count = watcher.execute(blocked, {"holder": holder}).scalar_one()
                        if count:
                            waited.append(count)
                            break
                        time.sleep(0.02)
                holding.commit()

            releaser = threading.Thread(target=release)
            releaser.start()
            try:
                with bound_policy(crm.url, batch_size=100) as bound:
                    done = enforce_policy(bound, clock, store)
            finally:
                releaser.join(timeout=60)
        remaining = rows_of(crm)
        chain = [r.data() for r in evidence_of(store) if r.kind == "retention-batch"]
        crm.engine.dispose()

        assert waited
        assert len(ELIGIBLE) - 1 == done.processed == sum(d["rows"] for d in chain)
        assert 4 in remaining
        assert not (ELIGIBLE - {4}) & remaining.keys()

    def test_max_rows_stops_the_run_and_the_next_run_finishes(
        self, crm: OrgDatabase, store: StateStore
    ) -> None:
        """A run stops at --max-rows (`limit-reached`); the next one carries on where it stopped."""
        with bound_policy(crm.url) as bound:
            first = enforce_policy(bound, clock, store, max_rows=4)
            second = enforce_policy(bound, clock, store, max_rows=4)

        assert (4, "limit-reached") == (first.processed, first.outcome)
        assert (len(ELIGIBLE) - 4, "done") == (second.processed, second.outcome)
        assert not ELIGIBLE & rows_of(crm).keys()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("ddl", "by_address"),
    [
        ("", True),
        (" PARTITION BY RANGE (id)", False),
    ],
    ids=["plain", "partitioned"],
)
def test_only_a_table_where_a_ctid_names_one_row_is_walked_by_row_address(
    postgres_schema_url: str, store: StateStore, ddl: str, by_address: bool
) -> None:
    """On PostgreSQL a plain table is walked by row address (ctid ranges); a partitioned
    table's partitions repeat ctids, so its batches go by key. Both delete exactly the eligible
    records, and the evidence names as many."""
    engine = create_engine(postgres_schema_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "CREATE TABLE contacts (id integer NOT NULL, email varchar(120), name varchar(80),"
                " phone varchar(40), status varchar(20) NOT NULL, last_activity_at timestamp,"
                f" legal_hold boolean, PRIMARY KEY (id)){ddl}"
            )
        )
        if ddl:
            # Two partitions of equal rows: the same ctids in both.
            for low, high in ((1, 16), (16, 31)):
                connection.execute(
                    text(
                        f"CREATE TABLE contacts_{low} PARTITION OF contacts"
                        f" FOR VALUES FROM ({low}) TO ({high})"
                    )
                )
        connection.execute(insert(contacts(MetaData())), people())
    org = OrgDatabase("postgresql", postgres_schema_url, engine)
    before = rows_of(org)
    with bound_policy(postgres_schema_url, batch_size=4) as bound:
        with bound.source.connect() as connection:
            found = walkable(connection, bound) is not None
        done = enforce_policy(bound, clock, store)
    after = rows_of(org)
    chain = [r.data() for r in evidence_of(store) if r.kind == "retention-batch"]
    engine.dispose()

    assert by_address == found
    assert {k: v for k, v in before.items() if k not in ELIGIBLE} == after
    assert len(ELIGIBLE) == done.processed == sum(d["rows"] for d in chain)


class TestGuardRails:
    def test_more_than_max_share_is_refused_and_nothing_changes(
        self, crm: OrgDatabase, store: StateStore
    ) -> None:
        """7 of 30 records is more than the default 20 %: refused, unless explicitly allowed."""
        before = rows_of(crm)
        with bound_policy(crm.url, max_share=None) as bound:
            with pytest.raises(RetentionRefusedError) as refused:
                enforce_policy(bound, clock, store)
            unchanged = rows_of(crm)
            allowed = enforce_policy(bound, clock, store, allow_large_share=True)

        assert before == unchanged
        message = str(refused.value)
        assert "nothing was changed" in message
        assert (
            "7 of the 30 records in contacts (23.3%), more than its max_share of 20.0%" in message
        )
        assert "--allow-large-share" in message
        assert "refused" == evidence_of(store)[0].data()["outcome"]
        assert len(ELIGIBLE) == allowed.processed

    def test_a_read_only_source_is_refused(self, crm: OrgDatabase, store: StateStore) -> None:
        """Enforcing through a read-only data source is refused before anything is tried."""
        with (
            bound_policy(crm.url, read_only=True) as bound,
            pytest.raises(RetentionRefusedError, match="read_only: false"),
        ):
            enforce_policy(bound, clock, store)

        assert 30 == len(rows_of(crm))

    def test_a_keyed_hash_without_a_secret_is_refused(
        self, crm: OrgDatabase, store: StateStore
    ) -> None:
        """Without GDPR_AUDITOR_ANONYMISE_KEY a hash cannot be computed: refused, not skipped."""
        hashing: dict[str, Any] = {"action": "anonymise", "anonymise": {"email": {"hash": True}}}
        with (
            bound_policy(crm.url, **hashing) as bound,
            pytest.raises(RetentionRefusedError, match="GDPR_AUDITOR_ANONYMISE_KEY"),
        ):
            enforce_policy(bound, clock, store)

    @pytest.mark.parametrize(
        ("overrides", "field", "message"),
        [
            ({"timestamp": "last_seen"}, "timestamp", "column 'last_seen' not in table contacts"),
            (
                {"timestamp": "legal_hold", "legal_hold": None},
                "timestamp",
                "not a date or timestamp",
            ),
            ({"key": "status"}, "key", "not unique on its own"),
            ({"legal_hold": {"column": "status"}}, "legal_hold.column", "not a boolean"),
            ({"table": "contact"}, "table", "table 'contact' not found"),
            ({"filter": {"stat": "x"}}, "filter.stat", "column 'stat' not in table"),
            (
                {"legal_hold": {"table": "held", "key": "contact_id"}},
                "legal_hold.table",
                "table 'held' not found",
            ),
            (
                {"action": "anonymise", "anonymise": {"phone": {"hash": True}}},
                "anonymise.phone",
                "holds 40 characters; a keyed hash needs 69",
            ),
            (
                {"action": "anonymise", "anonymise": {"status": None}},
                "anonymise.status",
                "NOT NULL",
            ),
            (
                {"action": "anonymise", "anonymise": {"phone": {"value": "x" * 41}}},
                "anonymise.phone",
                "longer than 40 characters",
            ),
        ],
    )
    def test_a_misconfigured_column_is_named_with_file_policy_key_and_line(
        self, crm: OrgDatabase, overrides: dict[str, Any], field: str, message: str
    ) -> None:
        """A column or table that is not there, or not fit for its use, is an InvalidInputError
        naming the retention file, the policy, the key and its line; nothing runs."""
        with pytest.raises(InvalidInputError) as raised, bound_policy(crm.url, **overrides):
            pass

        issues = raised.value.issues
        assert 1 == len(issues), issues
        issue = issues[0]
        assert ("retention.yaml", "policy 'crm-contacts'", field) == (
            issue.source,
            issue.entry,
            issue.field,
        )
        assert message in issue.message
        assert issue.line is not None


class TestBoundaries:
    def test_a_date_column_is_overdue_the_day_before_the_deadline(
        self, org_database: OrgDatabase
    ) -> None:
        """A DATE on the deadline's day is not overdue; the day before is."""
        metadata = MetaData()
        invoices = Table(
            "invoices",
            metadata,
            Column("invoice_id", Integer, primary_key=True, autoincrement=False),
            Column("issued_on", Date, nullable=False),
            Column("status", String(20), nullable=False),
        )
        metadata.create_all(org_database.engine)
        days = [
            DEADLINE.date() - timedelta(days=1),
            DEADLINE.date(),
            DEADLINE.date() + timedelta(1),
        ]
        with org_database.engine.begin() as connection:
            connection.execute(
                insert(invoices),
                [
                    {"invoice_id": n, "issued_on": d, "status": "inactive"}
                    for n, d in enumerate(days)
                ],
            )
        overrides: dict[str, Any] = {
            "table": "invoices",
            "key": "invoice_id",
            "timestamp": "issued_on",
        }
        with bound_policy(org_database.url, legal_hold=None, **overrides) as bound:
            plan = plan_policy(bound, NOW)

        assert 1 == plan.overdue
        assert stamp(1) != plan.oldest_overdue
        assert datetime.combine(days[0], datetime.min.time(), tzinfo=UTC) == plan.oldest_overdue

    def test_sql_agrees_with_the_deadline_and_a_later_date_never_shrinks_the_set(
        self, org_database: OrgDatabase
    ) -> None:
        """For random records around the deadline, the database finds exactly the records
        `is_overdue` says, and at a later audit time a superset of them."""
        metadata = MetaData()
        events = Table(
            "events",
            metadata,
            Column("event_id", Integer, primary_key=True, autoincrement=False),
            Column("happened_at", DateTime),
            Column("status", String(20), nullable=False),
        )
        metadata.create_all(org_database.engine)
        overrides: dict[str, Any] = {
            "table": "events",
            "key": "event_id",
            "timestamp": "happened_at",
        }
        offsets = st.lists(st.integers(-3 * 86400, 3 * 86400) | st.sampled_from([-1, 0, 1]))

        with bound_policy(org_database.url, legal_hold=None, **overrides) as bound:

            @settings(
                max_examples=12 if org_database.kind == "sqlite" else 6,
                deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture],
            )
            @given(offsets=offsets, later_by=st.integers(0, 5 * 86400))
            def check(offsets: list[int], later_by: int) -> None:
                stamps = [DEADLINE + timedelta(seconds=offset) for offset in offsets]
                with org_database.engine.begin() as connection:
                    connection.execute(delete(events))
                    if stamps:
                        rows = [
                            {
                                "event_id": n,
                                "happened_at": s.replace(tzinfo=None),
                                "status": "inactive",
                            }
                            for n, s in enumerate(stamps)
                        ]
                        connection.execute(insert(events), rows)
                later = NOW + timedelta(seconds=later_by)
                now_set = overdue_ids(bound, retention_deadline(NOW, bound.policy.keep_for))
                later_set = overdue_ids(bound, retention_deadline(later, bound.policy.keep_for))
                expected = {n for n, s in enumerate(stamps) if is_overdue(s, DEADLINE)}

                assert expected == now_set
                assert now_set <= later_set
                assert len(now_set) == plan_policy(bound, NOW).overdue

            check()


def killed_at(line: str, nth: int, script: str, *args: str) -> int:
    """Run `script` in a child Python with `args`, SIGKILL it when it prints `line` the `nth`
    time (or kill it when its output ends first); return its exit status."""
    return killed_when(lambda printed: printed.count(line) >= nth, script, *args)


SAY = textwrap.dedent(
    """
    import sys as _sys, threading as _threading
    _said = _threading.Lock()

    def say(word):
        # One whole line at a time: print() writes a word and its newline apart, and another
        # thread's word can come between (two walkers print).
        with _said:
            _sys.stdout.write(word + chr(10))
            _sys.stdout.flush()
    """
)


def killed_when(enough: Callable[[list[str]], bool], script: str, *args: str) -> int:
    """Run `script` in a child Python with `args`, SIGKILL it as soon as the lines it printed
    are `enough` (or kill it when its output ends first); return its exit status. The script
    prints its lines with `say(word)`, which keeps lines from two threads apart."""
    child = subprocess.Popen(
        [sys.executable, "-c", SAY + script, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    printed: list[str] = []
    try:
        for line in child.stdout:
            printed.append(line.strip())
            if enough(printed):
                child.send_signal(signal.SIGKILL)
                break
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    return child.returncode


@pytest.mark.slow
def test_a_run_killed_mid_batch_leaves_whole_batches_and_the_next_run_finishes(
    crm: OrgDatabase, store: StateStore, tmp_path: Path
) -> None:
    """SIGKILL while the third batch's DELETE is uncommitted: the two committed batches stay
    done (with their evidence), the third is rolled back whole; a second run finishes the job,
    and no record outside the deadline or on hold was touched."""
    before = rows_of(crm)
    policy_file = tmp_path / "retention.yaml"
    policy_file.write_text(policy_text(batch_size=2))
    state_url = store.engine.url.render_as_string(hide_password=False)
    returncode = killed_at("deleted", 3, KILLED_CHILD, crm.url, str(policy_file), state_url)
    assert -signal.SIGKILL == returncode
    killed = rows_of(crm)
    chain = evidence_of(store)

    # Batches {1, 2}, {4, 5} (3 and 8 are held), then a third killed uncommitted ({7, 9} by key,
    # {7} by row address on PostgreSQL).
    assert set(before) - {1, 2, 4, 5} == set(killed)
    assert ["retention-batch", "retention-batch"] == [r.kind for r in chain]
    with bound_policy(crm.url) as bound:
        finished = enforce_policy(bound, clock, store)
    after = rows_of(crm)

    assert (3, "done") == (finished.processed, finished.outcome)
    assert {k: v for k, v in before.items() if k not in ELIGIBLE} == after
    assert verify(evidence_of(store)).ok


KILLED_CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from sqlalchemy import event
    from auditor.sources.config import ConfigRef, DataSourceSettings
    from auditor.retention import bind_policy, enforce_policy
    from auditor.retention import load_retention_policies
    from auditor.sources.datasources import DataSources
    from auditor.store import StateStore

    # Batches of exactly batch_size, however slow this machine's commits (as tests/conftest.py).
    import auditor.retention.batches
    auditor.retention.batches.TARGET_TRANSACTION_SECONDS = 3600.0
    url, policy_path, state_url = sys.argv[1:4]
    now = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)
    store = StateStore.open(state_url)
    ref = ConfigRef("auditor.yaml", "data_sources.crm")
    settings = {"crm": DataSourceSettings("crm", url, None, False, ref)}

    deletes = []

    def slow(conn, cursor, statement, *args):
        # After the DELETE, before its COMMIT: where a kill hurts most. The third one waits
        # there for the parent's SIGKILL.
        if "DELETE FROM" in statement.upper():
            deletes.append(statement)
            say("deleted")
            time.sleep(30 if len(deletes) == 3 else 0.01)

    with DataSources(settings) as sources:
        bound = bind_policy(load_retention_policies([Path(policy_path)])[0], sources)
        event.listen(bound.source.engine, "after_cursor_execute", slow)
        enforce_policy(bound, lambda: now, store)
    say("finished")
    """
)


def deletes(statement: str) -> bool:
    """Whether a statement deletes: a DELETE, or on PostgreSQL the one statement that reads and
    deletes a batch (WITH done AS (DELETE ...))."""
    return "DELETE FROM" in statement.upper()


def overdue_ids(bound: BoundPolicy, deadline: datetime) -> set[int]:
    with bound.source.connect() as connection:
        query = select(bound.key).where(bound.overdue(deadline))
        return set(connection.execute(query).scalars())


def change(org: OrgDatabase, cursor: Any, recent: datetime) -> None:
    """Make record 2 recent and put record 4 on hold, as another client would."""
    if org.kind == "sqlite":
        # SQLite lets no other writer in while this transaction is open: change the records in
        # it, just before the DELETE, which is what the DELETE would see of a committed change.
        cursor.connection.execute(
            "UPDATE contacts SET last_activity_at = ? WHERE id = 2", (recent.isoformat(" "),)
        )
        cursor.connection.execute("UPDATE contacts SET legal_hold = 1 WHERE id = 4")
        return
    table = contacts(MetaData())
    with org.engine.begin() as other:
        other.execute(update(table).where(table.c.id == 2).values(last_activity_at=recent))
        other.execute(update(table).where(table.c.id == 4).values(legal_hold=True))


def test_a_lost_data_source_is_a_data_source_error(tmp_path: Path) -> None:
    """A data source that cannot be opened fails the bind with its name, never with a guess."""
    missing = f"sqlite:///{tmp_path / 'nowhere' / 'crm.db'}"
    found, _ = parse_retention(parse_yaml(policy_text(), "retention.yaml"))

    with pytest.raises(DataSourceError, match="'crm'"), DataSources(source_settings(missing)) as s:
        bind_policy(found[0], s)


def test_a_policy_naming_an_unconfigured_source_is_invalid(tmp_path: Path) -> None:
    """An unknown data source name is an InvalidInputError on the policy's `source` key."""
    found, _ = parse_retention(parse_yaml(policy_text(source="ledger"), "retention.yaml"))

    with pytest.raises(InvalidInputError) as raised, DataSources({}) as sources:
        bind_policy(found[0], sources)

    assert "source" == raised.value.issues[0].field


def test_a_batch_by_row_address_reconciled_on_another_database_system_is_undetermined(
    crm: OrgDatabase, store: StateStore
) -> None:
    """An intent naming a transaction of another database system (on SQLite and MariaDB: any
    PostgreSQL's; on PostgreSQL: another system's) cannot be told: it is settled as undetermined,
    no records counted, the records its statement processed as `planned`, and changes nothing."""
    before = rows_of(crm)
    held = SourceTransaction(1234, "1", "1767225600.000000", 3, "(0,1)", "(0,9)")
    with bound_policy(crm.url) as bound:
        plan = plan_policy(bound, clock())
        store.begin_retention_batch(range_intent(plan, "0" * 32, 0, held, None, clock()))
        reconciled = reconcile_policy(bound, store, clock)
    chain = [r.data() for r in evidence_of(store) if r.kind == "retention-batch"]

    assert [(0, True)] == [(b.rows, b.undetermined) for b in reconciled]
    assert [(0, True, 3)] == [(d["rows"], d["undetermined"], d["planned"]) for d in chain]
    assert [] == store.pending_retention_batches("crm-contacts")
    assert before == rows_of(crm)
