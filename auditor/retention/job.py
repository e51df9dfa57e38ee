"""The daemon's retention job: plan every policy, enforce those with `mode: enforce`, and keep the
counts the metrics and the `retention-overdue` findings are drawn from.

One policy failing (its data source down, its table renamed, its share guard refusing) does not
stop the others: the job carries on, then raises one RetentionJobError naming every policy that
failed, so the job counts as failed and the metrics keep the last good counts of those policies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from auditor.core.errors import AuditorError
from auditor.core.jobs import JobContext, JobInputs
from auditor.core.ledger import RetentionLedger
from auditor.core.ports import Clock
from auditor.retention.enforce import anonymise_key, enforce_policy
from auditor.retention.plan import RetentionPlan, plan_policy, retention_findings
from auditor.retention.policy import RetentionPolicy, load_retention_policies
from auditor.retention.reconcile import Batch, reconcile_policy
from auditor.retention.tables import bind_policy
from auditor.sources.config import DataSourceSettings
from auditor.sources.datasources import DataSources
from auditor.store import StateStore

log = structlog.get_logger("auditor.retention")


class RetentionJobError(AuditorError):
    """Some policies could not be planned or enforced; `failures` maps their ids to the reason."""

    def __init__(self, failures: Mapping[str, str]) -> None:
        self.failures = dict(failures)
        listed = "; ".join(f"{policy}: {reason}" for policy, reason in sorted(failures.items()))
        super().__init__(f"retention failed for {len(failures)} polic{_ies(failures)}: {listed}")


class RetentionState:
    """The retention counts the metrics show and the findings come from; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._plans: dict[str, RetentionPlan] = {}
        self._processed: dict[tuple[str, str], int] = {}
        self._undetermined: dict[str, int] = {}
        self._last: dict[str, datetime] = {}

    def configure(self, policies: Sequence[RetentionPolicy]) -> None:
        """Start the counters of the configured policies at 0 and forget removed policies."""
        wanted = {policy.id: policy for policy in policies}
        with self._lock:
            for policy in policies:
                if policy.action != "report":
                    self._processed.setdefault((policy.id, policy.action), 0)
                    self._undetermined.setdefault(policy.id, 0)
            self._plans = {k: v for k, v in self._plans.items() if k in wanted}
            self._last = {k: v for k, v in self._last.items() if k in wanted}
            self._processed = {k: v for k, v in self._processed.items() if k[0] in wanted}
            self._undetermined = {k: v for k, v in self._undetermined.items() if k in wanted}

    def planned(self, plan: RetentionPlan) -> None:
        """Keep the policy's latest counts."""
        with self._lock:
            self._plans[plan.policy] = plan

    def processed(self, policy: str, action: str, rows: int) -> None:
        """Count records processed by one committed batch."""
        with self._lock:
            key = (policy, action)
            self._processed[key] = self._processed.get(key, 0) + rows

    def undetermined(self, policy: str) -> None:
        """Count a reconciled batch whose records the data source could not tell."""
        with self._lock:
            self._undetermined[policy] = self._undetermined.get(policy, 0) + 1

    def enforced(self, policy: str, finished: datetime) -> None:
        """Remember when the policy's last enforcement run finished."""
        with self._lock:
            self._last[policy] = finished

    def plans(self) -> list[RetentionPlan]:
        """The latest plan of every policy that has one, by policy id (for the findings)."""
        with self._lock:
            return [self._plans[policy] for policy in sorted(self._plans)]

    def snapshot_fields(self) -> dict[str, Any]:
        """The `Snapshot` fields (`retention_*`) as they stand now."""
        with self._lock:
            return {
                "retention_overdue": {k: p.eligible for k, p in self._plans.items()},
                "retention_held": {k: p.held for k, p in self._plans.items()},
                "retention_processed": dict(self._processed),
                "retention_undetermined": dict(self._undetermined),
                "retention_last_enforcement": dict(self._last),
            }


@dataclass
class RetentionJob:
    """The `retention` job's work: `job(context.check)` runs it once.

    `policies` and `data_sources` are read when a run starts (a reload takes effect at the next
    run); `environ` holds GDPR_AUDITOR_ANONYMISE_KEY; `ledger` (the state store) takes the
    batches' intents and evidence.
    """

    policies: Callable[[], Sequence[RetentionPolicy]]
    data_sources: Callable[[], Mapping[str, DataSourceSettings]]
    ledger: RetentionLedger
    clock: Clock
    environ: Mapping[str, str]
    state: RetentionState = field(default_factory=RetentionState)
    record: Callable[[list[RetentionPlan]], None] | None = None
    """Records the plans' `retention-overdue` findings; called only when every policy ran, so a
    policy whose database is down never resolves its open finding."""

    def __call__(self, check: Callable[[], None]) -> list[RetentionPlan]:
        """Plan every policy and enforce the `mode: enforce` ones; return the plans made.

        Raises:
            JobCancelled: (from `check`) the daemon is stopping; batches done stay done.
            RetentionJobError: some policies failed; the others were done.
        """
        policies = list(self.policies())
        self.state.configure(policies)
        failures: dict[str, str] = {}
        plans: list[RetentionPlan] = []
        with DataSources(self.data_sources(), self.environ) as sources:
            for policy in policies:
                check()
                try:
                    plans.append(self._one(policy, sources, check))
                except AuditorError as exc:
                    failures[policy.id] = str(exc).splitlines()[0]
                    log.error(
                        "retention_policy_failed", policy=policy.id, error=failures[policy.id]
                    )
        if failures:
            raise RetentionJobError(failures)
        if self.record is not None:
            self.record(plans)
        return plans

    def work(self, context: JobContext) -> None:
        """The daemon's `retention` work: one run, stopping at the context's checks."""
        self(context.check)

    def _one(
        self, policy: RetentionPolicy, sources: DataSources, check: Callable[[], None]
    ) -> RetentionPlan:
        bound = bind_policy(policy, sources)

        def count(batch: Batch) -> None:
            self.state.processed(policy.id, policy.action, batch.rows)

        # Batches an earlier run left unsettled are recorded first, whatever the policy's mode.
        for batch in reconcile_policy(bound, self.ledger, self.clock):
            count(batch)
            if batch.undetermined:
                self.state.undetermined(policy.id)
            log.warning(
                "retention_batch_reconciled",
                policy=policy.id,
                batch=batch.index,
                rows=batch.rows,
                undetermined=batch.undetermined,
            )
        plan = plan_policy(bound, self.clock())
        if policy.mode == "enforce" and policy.action != "report" and plan.to_process:
            enforcement = enforce_policy(
                bound,
                self.clock,
                self.ledger,
                secret=anonymise_key(self.environ),
                check=check,
                on_batch=count,
                plan=plan,
            )
            self.state.enforced(policy.id, enforcement.finished_at)
            log.info(
                "retention_enforced",
                policy=policy.id,
                action=policy.action,
                processed=enforcement.processed,
                batches=enforcement.batches,
                outcome=enforcement.outcome,
            )
            plan = plan_policy(bound, self.clock())
        self.state.planned(plan)
        log.info(
            "retention_planned",
            policy=policy.id,
            overdue=plan.overdue,
            held=plan.held,
            eligible=plan.eligible,
            deadline=plan.deadline.isoformat(),
        )
        return plan


class RetentionConfig(Protocol):
    """What the daemon's job reads of the configuration (which the daemon composes)."""

    @property
    def retention(self) -> Sequence[Path]: ...

    @property
    def base(self) -> Path: ...

    @property
    def data_sources(self) -> Mapping[str, DataSourceSettings]: ...


def daemon_job(
    sources: Callable[[], JobInputs[RetentionConfig]],
    store: StateStore,
    clock: Clock,
    environ: Mapping[str, str],
) -> RetentionJob:
    """The daemon's `retention` job over the current inputs: policies and data sources read when
    a run starts, intents and evidence kept in the state store, and `retention-overdue` findings
    recorded there after a run where every policy ran."""

    def policies() -> Sequence[RetentionPolicy]:
        config = sources().config
        return load_retention_policies(config.retention, display=config.base)

    def record(plans: list[RetentionPlan]) -> None:
        found = retention_findings(plans, sources().policies)
        changes = store.record_job_findings("retention", found, clock())
        log.info("retention_findings_recorded", open=changes.open, new=changes.new,
                 resolved=changes.resolved)  # fmt: skip

    return RetentionJob(
        policies=policies,
        data_sources=lambda: sources().config.data_sources,
        ledger=store,
        clock=clock,
        environ=environ,
        record=record,
    )


def _ies(items: Mapping[str, Any]) -> str:
    return "y" if len(items) == 1 else "ies"
