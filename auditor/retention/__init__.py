"""Retention enforcement (GDPR Art. 5(1)(e)): policies, deadlines, plans, batched enforcement."""

from __future__ import annotations

from auditor.core.ledger import BatchIntent, PendingBatch, RetentionLedger
from auditor.retention.anonymised import is_anonymised, is_keyed_hash
from auditor.retention.deadline import is_overdue, retention_deadline
from auditor.retention.enforce import (
    Enforcement,
    RetentionRefusedError,
    anonymise_key,
    check_guard,
    enforce_policy,
)
from auditor.retention.plan import RetentionPlan, plan_policy, retention_findings
from auditor.retention.policy import (
    ANONYMISE_KEY_ENV,
    LegalHold,
    Replacement,
    RetentionPolicy,
    check_references,
    load_retention_policies,
    parse_retention,
)
from auditor.retention.reconcile import Batch, reconcile_policy
from auditor.retention.tables import BoundPolicy, bind_policy, check_policies

__all__ = [
    "ANONYMISE_KEY_ENV",
    "Batch",
    "BatchIntent",
    "BoundPolicy",
    "Enforcement",
    "LegalHold",
    "PendingBatch",
    "Replacement",
    "RetentionLedger",
    "RetentionPlan",
    "RetentionPolicy",
    "RetentionRefusedError",
    "anonymise_key",
    "bind_policy",
    "check_guard",
    "check_policies",
    "check_references",
    "enforce_policy",
    "is_anonymised",
    "is_keyed_hash",
    "is_overdue",
    "load_retention_policies",
    "parse_retention",
    "plan_policy",
    "reconcile_policy",
    "retention_deadline",
    "retention_findings",
]
