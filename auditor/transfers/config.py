"""The `backups:` configuration section: how recent a restore test and a review of the backup
documentation must be before the backup rules call them stale.

```yaml
backups:
  restore_test_max_age: P12M          # backup-restore-untested past this (default P12M)
  documentation_review_max_age: P12M  # backup-documentation-stale past this (default P12M)
```

The section is validated with the rest of the configuration when it is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditor.core.durations import Duration, DurationText, parse_duration
from auditor.core.validation import Strict

DEFAULT_MAX_AGE = "P12M"


class BackupChecksModel(Strict):
    """The `backups:` configuration section as written."""

    restore_test_max_age: DurationText = DEFAULT_MAX_AGE
    documentation_review_max_age: DurationText = DEFAULT_MAX_AGE


@dataclass(frozen=True, slots=True)
class BackupChecks:
    """How old the last restore test and the last documentation review may be."""

    restore_test_max_age: Duration = field(default_factory=lambda: parse_duration(DEFAULT_MAX_AGE))
    documentation_review_max_age: Duration = field(
        default_factory=lambda: parse_duration(DEFAULT_MAX_AGE)
    )


def backup_checks(model: BackupChecksModel | None) -> BackupChecks:
    """The validated section as settings (the defaults when it is absent)."""
    parsed = model or BackupChecksModel()
    return BackupChecks(
        restore_test_max_age=parse_duration(parsed.restore_test_max_age),
        documentation_review_max_age=parse_duration(parsed.documentation_review_max_age),
    )
