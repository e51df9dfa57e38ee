"""What retention enforcement would do for one policy, counted by the database: overdue, held and
to-be-processed records, the oldest overdue record's age, and the deadline used; and the
`retention-overdue` findings these counts give.

One statement, whatever the table's size: one pass counts the table (for the share guard) and,
within it, the overdue and held records in scope. Only counts and one timestamp come back. A
policy with dependents adds one count per dependent table: its rows that belong to records
enforcement would process now (overdue, not held), deleted with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from auditor.core.errors import InvalidInputError
from auditor.core.model import Finding
from auditor.core.policies import PolicyData
from auditor.retention.cascade import count_dependents
from auditor.retention.deadline import DeadlineOutOfRangeError, retention_deadline
from auditor.retention.policy import Action, Mode, RetentionPolicy
from auditor.retention.tables import BoundPolicy, as_instant

RULE = "retention-overdue"


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    """The counts for one policy at one audit time.

    `overdue` counts the records in scope (the filter, and for anonymise the records not
    anonymised yet) whose timestamp is before the deadline, on hold or not; `held` those of them
    on legal hold. Enforcement processes the others (`eligible`), at most `limit` per run.
    """

    policy: str
    subject: str  # the integration findings name: the policy's, else its data source
    source: str
    table: str
    action: Action
    mode: Mode
    keep_for: str
    planned_at: datetime
    deadline: datetime
    table_rows: int
    overdue: int
    held: int
    limit: int
    max_share: float
    oldest_overdue: datetime | None  # the oldest overdue record not on hold
    # The rows of each dependent table that belong to the eligible records, by table.
    dependents: Mapping[str, int] = field(default_factory=dict)

    @property
    def eligible(self) -> int:
        """Overdue records not on legal hold: the ones out of compliance."""
        return self.overdue - self.held

    @property
    def to_process(self) -> int:
        """What one enforcement run would process now: none for `report`, else up to `limit`."""
        return 0 if self.action == "report" else min(self.eligible, self.limit)

    @property
    def share(self) -> float:
        """The share of the whole table one run would process."""
        return self.to_process / self.table_rows if self.table_rows else 0.0

    @property
    def share_exceeded(self) -> bool:
        """Whether one run would process more than the policy's `max_share` of the table."""
        return self.share > self.max_share

    @property
    def oldest_age_seconds(self) -> float | None:
        """How long ago the oldest overdue record's period started, at `planned_at`."""
        if self.oldest_overdue is None:
            return None
        return (self.planned_at - self.oldest_overdue).total_seconds()

    def as_json(self) -> dict[str, Any]:
        """The plan for `--format json` (stable keys)."""
        age = self.oldest_age_seconds
        return {
            "policy": self.policy,
            "source": self.source,
            "table": self.table,
            "action": self.action,
            "mode": self.mode,
            "keep_for": self.keep_for,
            "planned_at": _iso(self.planned_at),
            "deadline": _iso(self.deadline),
            "table_rows": self.table_rows,
            "overdue": self.overdue,
            "held": self.held,
            "eligible": self.eligible,
            "to_process": self.to_process,
            "limit": self.limit,
            "share": round(self.share, 6),
            "max_share": self.max_share,
            "share_exceeded": self.share_exceeded,
            "oldest_overdue": _iso(self.oldest_overdue),
            "oldest_age_days": None if age is None else round(age / 86400, 2),
            "dependents": dict(self.dependents),
        }


def plan_policy(bound: BoundPolicy, now: datetime, max_rows: int | None = None) -> RetentionPlan:
    """Count what enforcement would do at audit time `now` (`max_rows` lowers the per-run limit).

    Raises:
        InvalidInputError: the policy's keep_for reaches back before the year 1 (named with the
            file, the policy and its line).
        DataSourceError: the data source cannot be reached or read.
        ValueError: `now` has no time zone.
    """
    policy = bound.policy
    deadline = policy_deadline(policy, now)
    table = bound.table
    held = bound.held_condition()
    is_held = sa.false() if held is None else held
    overdue = sa.and_(*bound.in_scope(), bound.overdue(deadline))
    # One pass over the table: its size (for the share guard) and the overdue counts together.
    if bound.dialect == "postgresql":
        # Aggregate FILTERs: each evaluates its condition alone (about a tenth faster than the
        # CASE sums below over a 5,000,000-row table).
        counts = sa.select(
            sa.func.count(),
            sa.func.count().filter(overdue),
            sa.func.count().filter(sa.and_(overdue, is_held)),
            sa.func.min(bound.time_value()).filter(sa.and_(overdue, sa.not_(is_held))),
        ).select_from(table)
    else:
        counts = sa.select(
            sa.func.count(),
            sa.func.sum(sa.case((overdue, 1), else_=0)),
            sa.func.sum(sa.case((sa.and_(overdue, is_held), 1), else_=0)),
            sa.func.min(sa.case((sa.and_(overdue, sa.not_(is_held)), bound.time_value()))),
        ).select_from(table)
    with bound.source.connect() as connection:
        table_rows, overdue_count, held_count, oldest = connection.execute(counts).one()
        dependents = (
            count_dependents(connection, bound.dependents, bound.owner(deadline))
            if bound.dependents
            else {}
        )
    return RetentionPlan(
        policy=policy.id,
        subject=policy.subject,
        source=policy.source,
        table=policy.selection.display_name,
        action=policy.action,
        mode=policy.mode,
        keep_for=str(policy.keep_for),
        planned_at=now,
        deadline=deadline,
        table_rows=int(table_rows),
        overdue=int(overdue_count or 0),
        held=int(held_count or 0),
        limit=run_limit(policy, max_rows),
        max_share=policy.max_share,
        oldest_overdue=as_instant(oldest),
        dependents=dependents,
    )


def policy_deadline(policy: RetentionPolicy, now: datetime) -> datetime:
    """The policy's deadline at `now` (see `retention_deadline`).

    Raises:
        InvalidInputError: its keep_for reaches back before the year 1.
    """
    try:
        return retention_deadline(now, policy.keep_for)
    except DeadlineOutOfRangeError as exc:
        message = f"too long for a retention deadline: {exc}"
        raise InvalidInputError([policy.issue(message, "keep_for")]) from None


def retention_findings(plans: Iterable[RetentionPlan], policies_data: PolicyData) -> list[Finding]:
    """One `retention-overdue` finding per plan with overdue records not on legal hold (Art.
    5(1)(e)); its place is the policy id, its integration the policy's (or its data source)."""
    findings = []
    for plan in plans:
        if plan.eligible <= 0:
            continue
        held = f"; {plan.held} more are on legal hold" if plan.held else ""
        age = plan.oldest_age_seconds
        oldest = f", the oldest from {_day(plan.oldest_overdue)}" if age is not None else ""
        records = "1 record is" if plan.eligible == 1 else f"{plan.eligible} records are"
        message = (
            f"{records} past the retention period of {plan.keep_for} in {plan.source}:"
            f"{plan.table} (deadline "
            f"{_day(plan.deadline)}{oldest}){held}; policy {plan.policy} ({plan.action})"
        )
        findings.append(
            policies_data.finding(
                RULE, plan.subject, message, place=plan.policy, evidence=_evidence(plan)
            )
        )
    return findings


def _evidence(plan: RetentionPlan) -> dict[str, Any]:
    document = plan.as_json()
    kept = ("source", "table", "action", "keep_for", "deadline", "overdue", "held", "eligible")
    evidence = {key: document[key] for key in kept}
    evidence["oldest_overdue"] = document["oldest_overdue"]
    return evidence


def run_limit(policy: RetentionPolicy, max_rows: int | None) -> int:
    """The records one run may process: the policy's max_rows_per_run, lowered by `max_rows`."""
    return policy.max_rows_per_run if max_rows is None else min(max_rows, policy.max_rows_per_run)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat().replace("+00:00", "Z")


def _day(when: datetime | None) -> str:
    return "" if when is None else when.date().isoformat()
