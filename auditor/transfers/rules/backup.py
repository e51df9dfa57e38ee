"""Backup rules: documented, kept apart from the primary place, not outliving the data."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.core.model import Finding
from auditor.transfers.rules import AuditContext, rule


@rule("backup-undocumented", "backup-not-offsite", "backup-retention-exceeds")
def backup_rules(context: AuditContext) -> Iterator[Finding]:
    """Backups of personal data must be known, off-site, and no longer kept than the data."""
    for integration in context.integrations.values():
        if not integration.data_categories:
            continue  # holds no personal data
        backups = integration.backups
        if backups is None or (not backups.regions and backups.retention is None):
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
        retention = integration.retention
        if (
            backups.retention is not None
            and retention is not None
            and backups.retention.exceeds(retention, context.as_of)
        ):
            yield context.finding(
                "backup-retention-exceeds",
                integration,
                f"backups of {integration.name} are kept for {backups.retention}, longer than "
                f"the data may be kept ({retention})",
                evidence={"backup_retention": str(backups.retention), "retention": str(retention)},
            )
