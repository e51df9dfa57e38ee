"""Writing one audit's results: the findings' lifecycle and history, observations, places."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, insert, select, true, update
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ColumnElement

from auditor.core.lifecycle import Change, FindingKey, Known, Status, transitions
from auditor.core.model import Finding, Observation, PlaceCheck
from auditor.core.ports import DataSet
from auditor.core.results import AuditResult
from auditor.core.wording import with_article
from auditor.store.engine import dumps
from auditor.store.records import RunSummary
from auditor.store.schema import (
    finding_events,
    findings,
    observations,
    place_checks,
    run_integrations,
)


@dataclass(frozen=True, slots=True)
class RuleScope:
    """The findings one kind of work owns: it opens, updates and resolves those, and no other.

    The audit does not resolve a consent finding because it did not raise one, nor does the
    consent job resolve a transfer finding: each job's findings live by its own runs.
    """

    only: frozenset[str] | None = None  # these rules; None: every rule not in `excluding`
    excluding: frozenset[str] = frozenset()

    def owns(self, rule: str) -> bool:
        """Whether findings of `rule` are this work's."""
        if self.only is not None:
            return rule in self.only
        return rule not in self.excluding

    def where(self) -> ColumnElement[bool]:
        """SQL: the finding of the current row is this work's."""
        if self.only is not None:
            return findings.c.rule.in_(sorted(self.only))
        if not self.excluding:
            return true()
        return findings.c.rule.not_in(sorted(self.excluding))


JOB_RULES: Mapping[str, frozenset[str]] = {
    "consent": frozenset({"transfer-consent-missing"}),
    "retention": frozenset({"retention-overdue"}),
    "discovery": frozenset({"inventory-undeclared"}),
    "web": frozenset(
        {"web-transfer-unsafeguarded", "web-tracking-before-consent", "web-third-party-undeclared"}
    ),
}
"""The rules raised by jobs of their own rather than by the audit, by job."""

AUDIT_SCOPE = RuleScope(excluding=frozenset().union(*JOB_RULES.values()))
"""What an audit run owns: every rule but the other jobs'."""


def job_scope(job: str) -> RuleScope:
    """The findings a job other than the audit owns (`consent`, `retention`, `discovery`, `web`)."""
    return RuleScope(only=JOB_RULES[job])


@dataclass(frozen=True, slots=True)
class FindingChanges:
    """What applying one run's findings did to the stored ones."""

    new: int
    resolved: int
    reopened: int
    still_open: int
    carried: int = 0  # open, not seen again, but a probe they rest on failed: kept open

    @property
    def open(self) -> int:
        """Findings of the scope open afterwards, waived or not, carried ones included."""
        return self.new + self.reopened + self.still_open + self.carried


def record_findings(
    conn: Connection, run_id: int, result: AuditResult, scope: RuleScope = AUDIT_SCOPE
) -> RunSummary:
    """Apply one audit's findings to the stored ones (lifecycle.transitions) and record the
    history; return what changed. Runs inside the caller's transaction."""
    changes = apply_findings(
        conn, run_id, result.started_at, result.findings, scope, failed=result.failed_probes
    )
    return RunSummary(
        run_id=run_id,
        new=changes.new,
        resolved=changes.resolved,
        reopened=changes.reopened,
        still_open=changes.still_open,
        carried=changes.carried,
    )


def apply_findings(
    conn: Connection,
    run_id: int | None,
    at: datetime,
    found: Iterable[Finding],
    scope: RuleScope,
    *,
    failed: Mapping[str, str] | None = None,
) -> FindingChanges:
    """Apply the findings of one run of the work owning `scope` to the stored findings of that
    scope, and record their history; findings of other scopes are left as they are. Runs
    inside the caller's transaction; `run_id` is the audit run's, None for other jobs.

    `failed` maps the probes of this run that observed nothing to why: an open finding resting
    on one of them is carried (kept open with its last evidence and last_seen, marked with
    `carried_since` and `carried_reason`) rather than resolved.

    It stays one function of about 140 lines: one transaction's lifecycle (new, still open,
    carried, resolved, reopened) over the same rows; split, each helper would need the whole
    state.

    Raises:
        ValueError: a finding's rule is not in the scope (a rule raised by the wrong work).
    """
    failures = dict(failed or {})
    current: dict[FindingKey, Finding] = {}
    for finding in found:
        if not scope.owns(finding.rule):
            raise ValueError(
                f"{with_article(finding.rule)} finding is outside the scope of this work"
            )
        # The rules give each key once; should two share one, the first (the worst) is kept.
        current.setdefault(finding.key, finding)
    known = _stored(conn, scope, current)
    changes = transitions(
        {key: Known(stored.status, stored.probes) for key, stored in known.items()},
        current,
        failures.keys(),
    )
    by_change: dict[Change, list[FindingKey]] = {change: [] for change in Change}
    for key, change in changes.items():
        by_change[change].append(key)
    events: list[dict[str, Any]] = []

    resolved = sorted(known[key].id for key in by_change[Change.RESOLVED])
    if resolved:
        execute_in_chunks(
            conn,
            update(findings)
            .where(findings.c.id == bindparam("b_id"))
            .values(status=Status.RESOLVED.value, resolved_at=at, carried_since=None,
                    carried_reason=None),
            ({"b_id": finding_id} for finding_id in resolved),
        )  # fmt: skip
        events += [event_row(i, run_id, at, Change.RESOLVED, {}) for i in resolved]

    carried = _in_id_order(by_change[Change.CARRIED], known)
    if carried:
        # Neither last_seen nor the evidence changes: they stay those of the last observation.
        execute_in_chunks(
            conn,
            update(findings)
            .where(findings.c.id == bindparam("b_id"))
            .values(carried_since=bindparam("b_since"), carried_reason=bindparam("b_reason")),
            (
                {
                    "b_id": known[key].id,
                    "b_since": known[key].carried_since or at,
                    "b_reason": carried_reason(known[key].probes, failures),
                }
                for key in carried
            ),
        )

    reopened = _in_id_order(by_change[Change.REOPENED], known)
    if reopened:
        execute_in_chunks(
            conn,
            update(findings)
            .where(findings.c.id == bindparam("b_id"))
            .values(
                status=Status.OPEN.value,
                resolved_at=None,
                reopened=findings.c.reopened + 1,
                **_content_binds(),
            ),
            ({"b_id": known[key].id, **_content(current[key])} for key in reopened),
        )
        events += [
            event_row(
                known[key].id, run_id, at, Change.REOPENED, {"times": known[key].reopened + 1}
            )
            for key in reopened
        ]

    changed = [key for key in by_change[Change.STILL_OPEN] if known[key].changed]
    if changed:
        execute_in_chunks(
            conn,
            update(findings).where(findings.c.id == bindparam("b_id")).values(**_content_binds()),
            (
                {"b_id": known[key].id, **_content(current[key])}
                for key in _in_id_order(changed, known)
            ),
        )

    new = sorted(by_change[Change.NEW])
    for start in range(0, len(new), ROWS_PER_STATEMENT):
        rows = [
            {
                "rule": key[0],
                "integration": key[1],
                "facet": key[2],
                "place": key[3],
                "status": Status.OPEN.value,
                "first_seen": at,
                "last_seen": at,
                "reopened": 0,
                "first_run_id": run_id,
                "last_run_id": run_id,
                **{name.removeprefix("b_"): v for name, v in _content(current[key]).items()},
            }
            for key in new[start : start + ROWS_PER_STATEMENT]
        ]
        inserted = conn.execute(
            insert(findings).returning(findings.c.id, sort_by_parameter_order=True), rows
        )
        events += [
            event_row(int(finding_id), run_id, at, Change.NEW, {"severity": row["severity"]})
            for finding_id, row in zip(inserted.scalars(), rows, strict=True)
        ]

    # The findings this run saw again: seen now, and no longer carried.
    seen_again = sorted(
        known[key].id for key in by_change[Change.STILL_OPEN] + by_change[Change.REOPENED]
    )
    if seen_again:
        seen: dict[str, Any] = {"last_seen": at, "carried_since": None, "carried_reason": None}
        if run_id is not None:
            seen["last_run_id"] = run_id
        execute_in_chunks(
            conn,
            update(findings).where(findings.c.id == bindparam("b_id")).values(seen),
            ({"b_id": finding_id} for finding_id in seen_again),
        )
    _insert_rows(conn, finding_events, events)
    return FindingChanges(
        new=len(new),
        resolved=len(resolved),
        reopened=len(reopened),
        still_open=len(by_change[Change.STILL_OPEN]),
        carried=len(carried),
    )


def carried_reason(probes: Iterable[str], failures: Mapping[str, str]) -> str:
    """Why a finding is carried: each of its probes that failed, with the failure."""
    return "; ".join(f"{probe} failed ({failures[probe]})" for probe in probes if probe in failures)


_CONTENT = ("severity", "article", "country", "message", "evidence", "probes")


def _content(finding: Finding) -> dict[str, Any]:
    return {
        "b_severity": finding.severity.value,
        "b_article": finding.article,
        "b_country": finding.country,
        "b_message": finding.message,
        # Through JSON and back, so that comparing with the stored evidence compares like with like.
        "b_evidence": json.loads(dumps(finding.evidence)),
        "b_probes": list(finding.probes),
    }


def _content_binds() -> dict[str, Any]:
    return {name: bindparam(f"b_{name}") for name in _CONTENT}


STORED_PER_FETCH = 5_000
"""Stored findings fetched at a time while the lifecycle reads them."""


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the lifecycle needs of a stored finding. The rows themselves, with their messages
    and evidence, are read one at a time and never all held: a large audit has hundreds of
    thousands of them."""

    id: int
    status: Status
    probes: tuple[str, ...]
    carried_since: datetime | None
    reopened: int
    changed: bool
    """Its content differs from this run's finding of the same key (False without one)."""


def _stored(
    conn: Connection, scope: RuleScope, current: Mapping[FindingKey, Finding]
) -> dict[FindingKey, _Stored]:
    """The stored findings of `scope` by key, each compared with this run's as it is read."""
    rows = conn.execute(
        select(findings).where(scope.where()).execution_options(yield_per=STORED_PER_FETCH)
    )
    known: dict[FindingKey, _Stored] = {}
    for row in rows:
        key = (row.rule, row.integration, row.facet, row.place)
        fresh = current.get(key)
        known[key] = _Stored(
            row.id,
            Status(row.status),
            tuple(row.probes or ()),
            row.carried_since,
            row.reopened,
            fresh is not None and _changed(row, fresh),
        )
    return known


def _changed(row: Row[Any], finding: Finding) -> bool:
    fresh = _content(finding)
    return any(getattr(row, name) != fresh[f"b_{name}"] for name in _CONTENT)


def event_row(
    finding_id: int, run_id: int | None, at: datetime, change: str, detail: Mapping[str, Any]
) -> dict[str, Any]:
    return {
        "finding_id": finding_id,
        "run_id": run_id,
        "at": at,
        "change": str(change),
        "detail": dict(detail),
    }


def insert_event(
    conn: Connection,
    finding_id: int,
    run_id: int | None,
    at: datetime,
    change: str,
    detail: Mapping[str, Any],
) -> None:
    conn.execute(insert(finding_events).values(**event_row(finding_id, run_id, at, change, detail)))


ROWS_PER_STATEMENT = 5000
"""Rows per executemany. A run's 200,000 rows built, held and freed at once would raise the
daemon's peak memory by as much again as the audit's result, and freeing them in one go holds
the interpreter lock (and the metrics endpoint's thread) for a large part of a second."""


def execute_in_chunks(
    conn: Connection, statement: Executable, rows: Iterable[dict[str, Any]]
) -> None:
    """Execute `statement` for each of `rows` (made as they are needed), ROWS_PER_STATEMENT at a
    time; none is no statement (an empty executemany fails)."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == ROWS_PER_STATEMENT:
            conn.execute(statement, chunk)
            chunk = []
    if chunk:
        conn.execute(statement, chunk)


def _insert_rows(conn: Connection, table: Table, rows: Iterable[dict[str, Any]]) -> None:
    execute_in_chunks(conn, insert(table), rows)


def insert_observations(conn: Connection, run_id: int, observed: Iterable[Observation]) -> None:
    _insert_rows(
        conn,
        observations,
        (
            {
                "run_id": run_id,
                "integration": o.integration,
                "hostname": o.hostname,
                "status": o.resolution.status,
                "reason": o.resolution.reason,
                "addresses": list(o.resolution.addresses),
                "cname_chain": list(o.resolution.cname_chain),
                "countries": [location.country for location in o.locations],
                "edge_reason": o.edge_reason,
            }
            for o in observed
        ),
    )


def insert_places(conn: Connection, run_id: int, checks: Iterable[PlaceCheck]) -> None:
    _insert_rows(
        conn,
        place_checks,
        ({"run_id": run_id, "integration": c.integration, **c.verdict_fields()} for c in checks),
    )


def insert_integrations(conn: Connection, run_id: int, result: AuditResult) -> None:
    _insert_rows(
        conn,
        run_integrations,
        (
            {"run_id": run_id, "integration": i.id, "category": i.category}
            for i in result.integrations
        ),
    )


def dataset_json(dataset: DataSet) -> dict[str, Any]:
    return {
        "kind": dataset.kind,
        "name": dataset.name,
        "path": dataset.path,
        "built": dataset.built.isoformat() if dataset.built else None,
        "entries": dataset.entries,
    }


def _in_id_order(keys: list[FindingKey], known: Mapping[FindingKey, Any]) -> list[FindingKey]:
    """Stored findings' keys in the order of their row ids: every run updates rows in the same
    order (two writers never wait on each other's rows crosswise), and sorting integers is quick
    where sorting 100,000 keys of four strings would hold the interpreter lock, and with it the
    daemon's metrics, for a large part of a second."""
    return sorted(keys, key=lambda key: known[key].id)
