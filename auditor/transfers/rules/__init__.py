"""The rule registry: pure functions of (inventory, observations, policies, as-of date) -> findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Unpack

from auditor.core.model import PROBED_FACETS, Finding, Integration, Observation
from auditor.core.policies import FindingDetails, PolicyData
from auditor.core.wording import with_article
from auditor.transfers.config import BackupChecks


@dataclass(frozen=True, slots=True)
class AuditContext:
    """What every rule sees: the inventory, what was observed, the policy data, the audit date
    and the configured backup checks."""

    integrations: Mapping[str, Integration]
    observations: Mapping[str, tuple[Observation, ...]]
    policies: PolicyData
    as_of: date
    backup_checks: BackupChecks = field(default_factory=BackupChecks)
    memo: dict[object, Any] = field(default_factory=dict, compare=False, repr=False)
    """What rules compute once per context and share (the assessed places), by a key of their own."""
    whole: Mapping[str, Integration] | None = field(default=None, compare=False, repr=False)
    """Every integration of the inventory when `integrations` are only a part of it (a large
    audit evaluates its inventory a part at a time)."""

    @property
    def inventory(self) -> Mapping[str, Integration]:
        """Every integration, for looking up those an audited one names (its sub-processors)."""
        return self.integrations if self.whole is None else self.whole

    def finding(
        self, rule: str, integration: Integration, message: str, **details: Unpack[FindingDetails]
    ) -> Finding:
        """Build a finding with the severity and article the policy data gives the rule;
        `probes` name the probes whose observations it rests on (every endpoint finding has);
        `unrecorded` when nothing is on record to judge (the rule's `unrecorded_severity`)."""
        shared = self.memo.setdefault(_SHARED_EVIDENCE, {})
        return self.policies.finding(rule, integration.id, message, **details, shared=shared)


_SHARED_EVIDENCE = object()
"""The memo key of the context's equal evidence values, held once (`PolicyData.finding`)."""


Rule = Callable[[AuditContext], Iterable[Finding]]
_REGISTRY: dict[str, Rule] = {}


def rule(*names: str) -> Callable[[Rule], Rule]:
    """Register a rule function under the rule identifiers it can raise."""

    def register(function: Rule) -> Rule:
        for name in names:
            _REGISTRY[name] = function
        return function

    return register


def registered() -> Mapping[str, Rule]:
    """Rule identifier -> the function that raises it (importing the built-in rule modules)."""
    from auditor.transfers.rules import (  # noqa: F401  (registers)
        backup,
        contract,
        location,
        transfer,
        vendor,
    )

    return dict(_REGISTRY)


def evaluate(context: AuditContext) -> Iterator[Finding]:
    """Run every registered rule function once and yield its findings.

    Raises:
        ValueError: a rule raised a finding about an observed place without naming the probe it
            rests on; the lifecycle could then resolve it when that probe fails.
    """
    seen: set[Rule] = set()
    for function in registered().values():
        if function not in seen:
            seen.add(function)
            for finding in function(context):
                if finding.facet in PROBED_FACETS and not finding.probes:
                    raise ValueError(
                        f"rule {finding.rule} raised {with_article(str(finding.facet))} finding "
                        "without its probes"
                    )
                yield finding
    context.memo.pop(_SHARED_EVIDENCE, None)  # the findings hold the values; the keys can go
