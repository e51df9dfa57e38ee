"""Reading what evidence reports need from the state store: a period's runs, places, findings and records."""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select
from sqlalchemy.exc import SQLAlchemyError

from auditor.core.chain import EvidenceRecord, Verification, verify
from auditor.core.errors import StoreError
from auditor.core.model import PlaceCheck
from auditor.store.engine import display_url
from auditor.store.evidence import last_record, records
from auditor.store.records import (
    FindingEvent,
    RunRecord,
    StoredFinding,
    Waiver,
    event_record,
    place_check_record,
    run_record,
    stored_finding,
    waiver_record,
)
from auditor.store.repository import StateStore
from auditor.store.schema import (
    audit_runs,
    evidence,
    finding_events,
    findings,
    place_checks,
    waivers,
)

REPORTED_KINDS = ("retention-batch", "retention-run", "consent-check", "consent-import")
"""Evidence kinds whose records a report reads in full (the others it only counts)."""
WEB_RUN = "web-run"
"""The web audit's run record: a report reads the period's latest one (its websites section)."""

_SUCCESS = "success"


@dataclass(frozen=True, slots=True)
class RunTally:
    """The audit runs started in a period: how many, how they ended, and what they ran with."""

    outcomes: dict[str, int]
    first_started: datetime | None
    last_started: datetime | None
    tool_versions: dict[str, int]
    config_digests: dict[str, int]
    policy_digests: dict[str, int]
    problems: tuple[RunRecord, ...]  # runs that did not succeed, oldest first
    latest_success: RunRecord | None

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class FindingHistory:
    """A finding (its stored content, without a waiver judgement) and its past up to a moment."""

    finding: StoredFinding
    events: tuple[FindingEvent, ...]  # oldest first, before the period's end
    waivers: tuple[Waiver, ...]  # created before the period's end, oldest first


@dataclass(frozen=True, slots=True)
class PeriodRecords:
    """Everything stored about one period, read in one transaction."""

    start: datetime  # inclusive
    end: datetime  # exclusive
    runs: RunTally
    places: tuple[PlaceCheck, ...]  # of the latest successful run in the period
    findings: tuple[FindingHistory, ...]  # open, changed or waived at some time in the period
    records: tuple[EvidenceRecord, ...]  # the period's records of REPORTED_KINDS, in order
    record_kinds: dict[str, int]  # every kind recorded in the period -> records
    last_record: EvidenceRecord | None  # the newest record before the period's end
    web_run: EvidenceRecord | None = None  # the period's latest `web-run` record


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The evidence chain verified: the outcome, whether HMACs were checked, and where it broke."""

    verification: Verification
    hmac_checked: bool
    head: EvidenceRecord | None  # the newest record stored, verified or not
    offending: EvidenceRecord | None  # the record found where the first bad one should be


def _reading(engine: Engine) -> Engine:
    # Repeatable read on PostgreSQL: the several queries of one report see one state.
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="REPEATABLE READ")


@contextlib.contextmanager
def _read(engine: Engine) -> Iterator[Connection]:
    try:
        with _reading(engine).begin() as conn:
            yield conn
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [""])[0]
        password = engine.url.password
        if password:
            first = first.replace(str(password), "***")
        where = display_url(engine.url)
        raise StoreError(f"the state database {where}: {type(cause).__name__}: {first}") from exc


def read_period(engine: Engine, start: datetime, end: datetime) -> PeriodRecords:
    """Read the runs, places, findings and evidence records of [start, end).

    Raises:
        StoreError: the database cannot be read.
    """
    with _read(engine) as conn:
        runs = run_tally(conn, start, end)
        places = run_places(conn, runs.latest_success.id) if runs.latest_success else ()
        return PeriodRecords(
            start=start,
            end=end,
            runs=runs,
            places=places,
            findings=finding_histories(conn, start, end),
            records=tuple(records(conn, start, end, REPORTED_KINDS)),
            record_kinds=record_kinds(conn, start, end),
            last_record=last_record(conn, before=end),
            web_run=last_record(conn, before=end, kind=WEB_RUN, since=start),
        )


def run_tally(conn: Connection, start: datetime, end: datetime) -> RunTally:
    """Count the runs started in [start, end) by outcome and by what they ran with."""
    started = (audit_runs.c.started_at >= start, audit_runs.c.started_at < end)

    def counts(column: Any) -> dict[str, int]:
        rows = conn.execute(select(column, func.count()).where(*started).group_by(column))
        return {str(value): int(count) for value, count in sorted(rows, key=lambda r: str(r[0]))}

    first, last = conn.execute(
        select(func.min(audit_runs.c.started_at), func.max(audit_runs.c.started_at)).where(*started)
    ).one()
    problems = conn.execute(
        select(audit_runs)
        .where(*started, audit_runs.c.outcome != _SUCCESS)
        .order_by(audit_runs.c.started_at, audit_runs.c.id)
    )
    latest = conn.execute(
        select(audit_runs)
        .where(*started, audit_runs.c.outcome == _SUCCESS)
        .order_by(audit_runs.c.id.desc())
        .limit(1)
    ).first()
    return RunTally(
        outcomes=counts(audit_runs.c.outcome),
        # min/max lose the column type on SQLite: read them back through the UTC type.
        first_started=_aware(first),
        last_started=_aware(last),
        tool_versions=counts(audit_runs.c.tool_version),
        config_digests=counts(audit_runs.c.config_digest),
        policy_digests=counts(audit_runs.c.policy_digest),
        problems=tuple(run_record(row) for row in problems),
        latest_success=None if latest is None else run_record(latest),
    )


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise StoreError(f"unexpected timestamp {value!r} in audit_runs")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run_places(conn: Connection, run_id: int) -> tuple[PlaceCheck, ...]:
    """The place checks of one run, by integration, facet and place."""
    rows = conn.execute(
        select(place_checks)
        .where(place_checks.c.run_id == run_id)
        .order_by(
            place_checks.c.integration,
            place_checks.c.facet,
            place_checks.c.place,
            place_checks.c.id,
        )
    )
    return tuple(place_check_record(row) for row in rows)


def finding_histories(
    conn: Connection, start: datetime, end: datetime
) -> tuple[FindingHistory, ...]:
    """Findings first seen before `end` that were open, changed or waived at some time in the
    period, each with its events and waivers up to `end`, by finding id."""
    changed = select(finding_events.c.finding_id).where(
        finding_events.c.at >= start, finding_events.c.at < end
    )
    waived = select(waivers.c.finding_id).where(
        waivers.c.created_at < end,
        or_(waivers.c.revoked_at.is_(None), waivers.c.revoked_at >= start),
    )
    # Open now, resolved after the period began, or touched in it: a superset of what the
    # report keeps; the events decide the rest.
    relevant = select(findings.c.id).where(
        findings.c.first_seen < end,
        or_(
            findings.c.status == "open",
            findings.c.resolved_at >= start,
            findings.c.id.in_(changed),
            findings.c.id.in_(waived),
        ),
    )
    rows = conn.execute(select(findings).where(findings.c.id.in_(relevant)).order_by(findings.c.id))
    found = {int(row.id): stored_finding(row, None) for row in rows}
    events: dict[int, list[FindingEvent]] = {ident: [] for ident in found}
    for e in conn.execute(
        select(finding_events)
        .where(finding_events.c.finding_id.in_(relevant), finding_events.c.at < end)
        .order_by(finding_events.c.at, finding_events.c.id)
    ):
        if e.finding_id in events:
            events[e.finding_id].append(event_record(e))
    kept: dict[int, list[Waiver]] = {ident: [] for ident in found}
    for w in conn.execute(
        select(waivers)
        .where(waivers.c.finding_id.in_(relevant), waivers.c.created_at < end)
        .order_by(waivers.c.id)
    ):
        if w.finding_id in kept:
            kept[w.finding_id].append(waiver_record(w))
    return tuple(
        FindingHistory(finding, tuple(events[ident]), tuple(kept[ident]))
        for ident, finding in found.items()
    )


def record_kinds(conn: Connection, start: datetime, end: datetime) -> dict[str, int]:
    """Evidence kind -> records timed in [start, end)."""
    rows = conn.execute(
        select(evidence.c.kind, func.count())
        .where(evidence.c.at >= start, evidence.c.at < end)
        .group_by(evidence.c.kind)
    )
    return {str(kind): int(count) for kind, count in sorted(rows, key=lambda r: str(r[0]))}


def list_records(
    engine: Engine,
    start: datetime | None = None,
    end: datetime | None = None,
    kinds: Collection[str] = (),
) -> Iterator[EvidenceRecord]:
    """Evidence records for `evidence list`, read in batches within one transaction.

    Raises:
        StoreError: the database cannot be read.
    """
    with _read(engine) as conn:
        yield from records(conn, start, end, kinds)


def head(engine: Engine) -> EvidenceRecord | None:
    """The newest evidence record, or None when the chain is empty.

    Raises:
        StoreError: the database cannot be read.
    """
    with _read(engine) as conn:
        return last_record(conn)


class _Tracked:
    """Passes records through, remembering the last one handed out (where verification stopped)."""

    def __init__(self, records: Iterator[EvidenceRecord]) -> None:
        self._records = records
        self.last: EvidenceRecord | None = None

    def __iter__(self) -> Iterator[EvidenceRecord]:
        for record in self._records:
            self.last = record
            yield record


def check_chain(store: StateStore, expect_head: str | None = None) -> ChainCheck:
    """Verify the whole stored chain, with the store's evidence key when it has one.

    Raises:
        StoreError: the database cannot be read.
    """
    with _read(store.engine) as conn:
        tracked = _Tracked(records(conn))
        try:
            outcome = verify(tracked, store.evidence_key, expect_head)
        except ValueError as exc:  # a stored time that cannot be read back: rewritten by hand
            raise StoreError(
                f"the evidence table of {store.url} holds an unreadable row: {exc}"
            ) from None
        newest = last_record(conn)
    offending = tracked.last if outcome.first_bad is not None else None
    return ChainCheck(outcome, store.evidence_key is not None, newest, offending)
