"""`check`: one audit, its findings printed (and recorded with a state database)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import click

from auditor.cli import (
    cli,
    exit_on_findings,
    findings_options,
    handles_errors,
    load_run,
    say,
    utcnow,
)
from auditor.cli.output import render_table, write_json
from auditor.cli.probing import parallel_probe
from auditor.core.collector import collector_paused
from auditor.core.results import AuditResult
from auditor.service.wiring import build_locator, build_resolver
from auditor.transfers.audit import run_audit


@cli.command()
@findings_options("Evaluate the rules in force that day (default: today, UTC).")
@click.option(
    "--no-record",
    "no_record",
    is_flag=True,
    help="Do not record this run in the state database (a run as of another day than today "
    "is never recorded).",
)
@handles_errors
def check(
    config_path: Path, as_of: str | None, output_format: str, fail_on: str, no_record: bool
) -> None:
    """Run one complete audit and print the findings.

    With a state database configured, the run is recorded and the findings' history updated,
    unless --no-record is given or --as-of names another day than today: such a what-if audit
    is printed only, never stored as if it were today's state.

    Exit status: 0 no finding at or above --fail-on, 1 there are such findings, 2 bad usage or
    invalid configuration/inventory, 3 the audit could not run at all.
    """
    # The objects of a check live to its end and make no reference cycles to speak of: the
    # cycle collector would only walk their millions again and again, a third of the time of a
    # large audit. It is off while the check runs.
    with collector_paused():
        _check(config_path, as_of, output_format, fail_on, no_record)


def _check(
    config_path: Path, as_of: str | None, output_format: str, fail_on: str, no_record: bool
) -> None:
    day, config, policies, integrations = load_run(config_path, as_of)
    needs_geo = any(integration.endpoints for integration in integrations)
    resolver = build_resolver(config)
    locator = build_locator(config, policies, needed=needs_geo)
    progress = _progress_printer()

    def audit() -> AuditResult:
        # Data ages are measured against the wall clock's day (utcnow), never against --as-of.
        return run_audit(
            integrations,
            policies,
            resolver,
            locator,
            day,
            utcnow,
            progress,
            max_data_age_days=config.geoip_max_age_days,
            backup_checks=config.backups,
            probe=parallel_probe(resolver, locator),
        )

    # With a database configured the run is recorded like the daemon's; without one nothing is.
    # A what-if day is never recorded: the findings' history is the history of real days.
    skip = unrecorded_reason(day, utcnow().date(), no_record=no_record)
    if config.database is None or skip is not None:
        result = audit()
        if config.database is not None:
            say(f"gdpr-auditor: not recorded in the state database: {skip}", err=True)
    else:
        # Here only: the state store, and SQLAlchemy with it, is imported when a run is recorded.
        from auditor.cli.db import record_check

        result = record_check(config, policies, audit)
    _report_timing(result)
    if output_format == "json":
        write_json(result, sys.stdout)
    else:
        say(render_table(result), nl=False)
    exit_on_findings(result.findings, fail_on)


def unrecorded_reason(day: date, today: date, *, no_record: bool) -> str | None:
    """Why a `check` as of `day` is not recorded when run on `today`; None when it is."""
    if day != today:
        when = "past" if day < today else "future"
        return (
            f"--as-of {day.isoformat()} is a what-if audit in the {when} (today is "
            f"{today.isoformat()}); only audits as of today enter the findings' history"
        )
    if no_record:
        return "--no-record was given"
    return None


def _progress_printer() -> Callable[[str, int, int], None] | None:
    if not sys.stderr.isatty():
        return None

    def show(phase: str, done: int, total: int) -> None:
        end = "\n" if done >= total else ""
        click.echo(f"\r{phase}: {done}/{total} hostnames", err=True, nl=False)
        if end:
            click.echo("", err=True)

    return show


def _report_timing(result: AuditResult) -> None:
    if sys.stderr.isatty():
        say(
            f"audited {len(result.integrations)} integrations, {result.hostnames} hostnames in "
            f"{result.duration_seconds:.1f} s",
            err=True,
        )
