"""Backup rules: documented, kept apart from the primary place, not outliving the data, restored
in a recent test, and their procedure written down and reviewed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from auditor.core.durations import Duration
from auditor.core.model import Backups, Finding, Integration
from auditor.core.wording import iso_day
from auditor.transfers.rules import AuditContext, rule


@rule("backup-undocumented", "backup-not-offsite", "backup-retention-exceeds")
def backup_rules(context: AuditContext) -> Iterator[Finding]:
    """Backups of personal data must be known, off-site, and no longer kept than the data."""
    for integration in context.integrations.values():
        if not integration.data_categories:
            continue  # holds no personal data
        backups = integration.backups
        if backups is None or not backups.informative:
            yield context.finding(
                "backup-undocumented",
                integration,
                f"{integration.name} holds personal data but declares no backups; record where "
                "and for how long the vendor keeps them",
            )
            continue
        hosting = {place.spec for place in integration.hosting}
        if backups.regions and hosting and all(p.spec in hosting for p in backups.regions):
            places = ", ".join(p.spec for p in backups.regions)
            yield context.finding(
                "backup-not-offsite",
                integration,
                f"backups of {integration.name} stay in the hosting place ({places}); a backup "
                "belongs in a separate location",
                evidence={"backup_regions": [p.spec for p in backups.regions]},
            )
        exceeds = _retention_exceeds(context, integration, backups)
        if exceeds is not None:
            yield exceeds


def _retention_exceeds(
    context: AuditContext, integration: Integration, backups: Backups
) -> Finding | None:
    """Art. 5(1)(e): the longest of the backup retention and the generations against the data's.

    Personal data deleted from the live system lives on in the backups for that long.
    """
    retention = integration.retention
    effective = backups.effective_retention(context.as_of)
    if effective is None or retention is None:
        return None
    longest, which = effective
    if not longest.exceeds(retention, context.as_of):
        return None
    what = "" if which == "retention" else f" (the {which.removeprefix('generation ')} generation)"
    return context.finding(
        "backup-retention-exceeds",
        integration,
        f"backups of {integration.name} are kept for {longest}{what}, longer than the data may "
        f"be kept ({retention}): personal data deleted from the live system lives on in the "
        f"backups for up to {longest}",
        evidence={
            "backup_retention": str(backups.retention) if backups.retention else None,
            "generations": {name: str(d) for name, d in backups.generations},
            "effective_retention": str(longest),
            "longest": which,
            "retention": str(retention),
        },
    )


@rule("backup-restore-untested", "backup-documentation-stale")
def backup_practice(context: AuditContext) -> Iterator[Finding]:
    """Art. 32(1)(c), (d) and Art. 24(1): backups are restored in tests, and the procedure is
    written down and reviewed, within the configured periods.

    Nothing on record is said as an info-level finding, never taken as fine; a record older
    than the period is a warning. An integration without backup information is left to
    backup-undocumented.
    """
    checks = context.backup_checks
    for integration in context.integrations.values():
        backups = integration.backups
        if not integration.data_categories or backups is None or not backups.informative:
            continue
        tested = backups.restore_tested
        yield from _dated(
            context,
            integration,
            "backup-restore-untested",
            tested,
            checks.restore_test_max_age,
            missing=f"no successful restore test of the backups of {integration.name} is "
            "recorded; restore one and record the date in backups.restore_tested",
            stale=f"the last successful restore test of the backups of {integration.name} was "
            f"on {tested}",
            evidence={"restore_tested": tested.isoformat() if tested else None},
        )
        documented = backups.documented
        reviewed = documented.reviewed if documented else None
        yield from _dated(
            context,
            integration,
            "backup-documentation-stale",
            reviewed,
            checks.documentation_review_max_age,
            missing=f"where the backup procedure of {integration.name} is written down is not "
            "recorded; record it and its last review in backups.documented",
            stale=f"the backup procedure of {integration.name} "
            f"({documented.at if documented else '?'}) was last reviewed on {reviewed}",
            evidence={
                "documented_at": documented.at if documented else None,
                "reviewed": reviewed.isoformat() if reviewed else None,
            },
        )


def _dated(
    context: AuditContext,
    integration: Integration,
    rule_id: str,
    day: date | None,
    max_age: Duration,
    *,
    missing: str,
    stale: str,
    evidence: dict[str, object],
) -> Iterator[Finding]:
    """The finding for a dated record: info when there is none by the audit date, a warning
    when it is older than `max_age` on the audit date, none when it is recent enough."""
    evidence = {**evidence, "max_age": str(max_age), "as_of": iso_day(context.as_of)}
    if day is None or day > context.as_of:
        if day is not None:  # recorded for a later day: on the audit date there was none yet
            missing += f" (the one recorded is dated {day}, after {context.as_of})"
        yield context.finding(rule_id, integration, missing, evidence=evidence, unrecorded=True)
    elif max_age.after(day) < context.as_of:
        yield context.finding(
            rule_id,
            integration,
            f"{stale}, more than {max_age} before {context.as_of}",
            evidence={**evidence, "due": max_age.after(day).isoformat()},
        )
