"""The state store: audit runs, findings with their history, and waivers, in SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from auditor.core.durations import Duration
from auditor.core.errors import InvalidInputError, Issue, StoreError
from auditor.core.ports import Clock
from auditor.core.results import AuditResult
from auditor.store.consents import ImportCounts, StoredCoverage
from auditor.store.engine import display_url
from auditor.store.migrations import SCHEMA_VERSION
from auditor.store.recording import AUDIT_SCOPE, JOB_RULES, FindingChanges, RuleScope, job_scope
from auditor.store.records import (
    FindingDetail,
    FindingEvent,
    RunRecord,
    RunSummary,
    SnapshotCounts,
    StoredFinding,
    StoreStatus,
    Waiver,
)
from auditor.store.repository import FINDING_STATES, StateStore

DEFAULT_FILE = "gdpr-auditor.db"
"""The SQLite file used when the configuration names no database."""


EVIDENCE_KEY_VARIABLE = "GDPR_AUDITOR_EVIDENCE_KEY"
"""The environment variable holding the key that signs evidence records (HMAC-SHA256)."""


def evidence_key(environ: Mapping[str, str]) -> bytes | None:
    """The evidence key from the environment, or None when it is not set.

    Raises:
        InvalidInputError: the key is set but shorter than 16 characters.
    """
    value = environ.get(EVIDENCE_KEY_VARIABLE)
    if not value:
        return None
    if len(value) < 16:
        raise InvalidInputError(
            [Issue(EVIDENCE_KEY_VARIABLE, "the evidence key must be at least 16 characters long")]
        )
    return value.encode("utf-8")


def prune_cutoff(keep: Duration, now: datetime) -> datetime:
    """The moment before which observations are pruned when `keep` of them are kept."""
    now = now.astimezone(UTC)
    months = Duration(years=keep.years, months=keep.months).before(now.date())
    return datetime.combine(months, now.timetz()) - timedelta(days=keep.days, seconds=keep.seconds)


def describe_error(exc: BaseException) -> str:
    """A short error for the run record: the class and the first line of the message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def record_audit(
    store: StateStore,
    audit: Callable[[], AuditResult],
    *,
    clock: Clock,
    tool_version: str,
    config_digest: str,
    policy_digest: str,
) -> tuple[AuditResult, RunSummary]:
    """Run `audit` as a recorded run: begun, then finished in one transaction, or failed.

    Raises:
        Exception: whatever `audit` raised, after the run is recorded as failed.
        StoreError: the run could not be recorded.
    """
    run_id = store.begin_run(
        clock(), tool_version=tool_version, config_digest=config_digest, policy_digest=policy_digest
    )
    try:
        result = audit()
    except Exception as exc:
        store.fail_run(run_id, clock(), describe_error(exc))
        raise
    try:
        return result, store.finish_run(run_id, result, clock())
    except StoreError as exc:
        # The run's writes were rolled back; say why on the run row if the database still answers.
        with contextlib.suppress(StoreError):
            store.fail_run(run_id, clock(), describe_error(exc))
        raise


__all__ = [
    "AUDIT_SCOPE",
    "DEFAULT_FILE",
    "FINDING_STATES",
    "JOB_RULES",
    "SCHEMA_VERSION",
    "FindingChanges",
    "FindingDetail",
    "FindingEvent",
    "ImportCounts",
    "RuleScope",
    "RunRecord",
    "RunSummary",
    "SnapshotCounts",
    "StateStore",
    "StoreStatus",
    "StoredCoverage",
    "StoredFinding",
    "Waiver",
    "describe_error",
    "display_url",
    "job_scope",
    "prune_cutoff",
    "record_audit",
]
