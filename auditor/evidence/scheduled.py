"""The daemon's report job: the evidence report of the last period, written to files on a schedule."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Protocol

import structlog

from auditor import __version__
from auditor.core.jobs import JobContext, JobInputs
from auditor.evidence.config import ReportSettings
from auditor.evidence.render import render
from auditor.evidence.report import ReportInputs, build_report, period_bounds
from auditor.store import StateStore
from auditor.store.reporting import check_chain, read_period

log = structlog.get_logger("auditor.evidence.scheduled")


class ReportConfig(Protocol):
    """What the job reads of the configuration (which the daemon composes)."""

    @property
    def reports(self) -> ReportSettings: ...

    @property
    def digest(self) -> str: ...


def report_days(settings: ReportSettings, today: date) -> tuple[date, date]:
    """The first and last day of the report written on `today`: the last `period` of whole UTC
    days, ending yesterday (today is not over, and a report over finished days never changes)."""
    return settings.period.before(today), today - timedelta(days=1)


def report_path(directory: Path, first_day: date, last_day: date, output_format: str) -> Path:
    """The file a scheduled report is written to: `report-<from>-<to>.<format>`."""
    return directory / f"report-{first_day.isoformat()}-{last_day.isoformat()}.{output_format}"


def write_atomically(target: Path, text: str) -> None:
    """Replace `target` whole with `text`: readers see the old file or the new, never a part.

    Raises:
        OSError: the file cannot be written (the temporary file is removed).
    """
    temporary: str | None = None
    try:
        # Through a temporary file in the same directory, so that the rename stays on one disk.
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", newline="", dir=target.parent, delete=False,
            prefix=f".{target.name}.", suffix=".tmp",
        ) as handle:  # fmt: skip
            temporary = handle.name
            handle.write(text)
        # A temporary file is private (0600); the report gets the mode of the file it replaces,
        # or the usual one for a new file. Reports hold no personal data.
        os.chmod(temporary, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        os.replace(temporary, target)
    except OSError:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise


class ReportJob:
    """Writes the evidence report of the last configured period in each configured format."""

    def __init__(
        self,
        sources: Callable[[], JobInputs[ReportConfig]],
        store: StateStore,
        clock: Callable[[], datetime],
    ) -> None:
        self._sources = sources
        self._store = store
        self._clock = clock
        self.last_written: datetime | None = None  # for the metrics snapshot

    def work(self, context: JobContext) -> None:
        """Read the period, verify the chain and write every format.

        Raises:
            JobCancelled: the daemon is stopping or lost leadership; nothing more is written.
            StoreError: the state database cannot be read.
            OSError: the reports directory or a file in it cannot be written.
        """
        sources = self._sources()
        settings = sources.config.reports
        first_day, last_day = report_days(settings, self._clock().date())
        start, end = period_bounds(first_day, last_day)
        records = read_period(self._store.engine, start, end)
        context.check()
        chain = check_chain(self._store)
        context.check()
        document = build_report(
            ReportInputs(
                first_day=first_day,
                last_day=last_day,
                as_of=last_day,
                generated_at=None,  # the same records give the same bytes, whenever written
                tool_version=__version__,
                config_digest=sources.config.digest,
                policies=sources.policies,
                integrations=sources.integrations,
                records=records,
                chain=chain,
            )
        )
        settings.directory.mkdir(parents=True, exist_ok=True)
        written = []
        for output_format in settings.formats:
            target = report_path(settings.directory, first_day, last_day, output_format)
            write_atomically(target, render(document, output_format))
            written.append(target.name)
        self.last_written = self._clock()
        log.info("report_written", first_day=first_day.isoformat(),
                 last_day=last_day.isoformat(), files=written)  # fmt: skip
        if not chain.verification.ok:
            log.error("evidence_chain_broken", problem=chain.verification.problem)
