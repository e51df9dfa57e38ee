"""Retention enforcement (GDPR Art. 5(1)(e)): policies, deadlines, plans, batched enforcement."""

from __future__ import annotations

from auditor.retention.deadline import is_overdue, retention_deadline
from auditor.retention.enforce import (
    Batch,
    Enforcement,
    EvidenceSink,
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
from auditor.retention.tables import BoundPolicy, bind_policy, check_policies

__all__ = [
    "ANONYMISE_KEY_ENV",
    "Batch",
    "BoundPolicy",
    "Enforcement",
    "EvidenceSink",
    "LegalHold",
    "Replacement",
    "RetentionPlan",
    "RetentionPolicy",
    "RetentionRefusedError",
    "anonymise_key",
    "bind_policy",
    "check_guard",
    "check_policies",
    "check_references",
    "enforce_policy",
    "is_overdue",
    "load_retention_policies",
    "parse_retention",
    "plan_policy",
    "retention_deadline",
    "retention_findings",
]
