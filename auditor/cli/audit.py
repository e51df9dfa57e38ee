"""`check` and `validate`: one audit, or the inputs checked without probing."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from auditor.cli import (
    EXIT_INVALID,
    EXIT_OK,
    cli,
    config_option,
    exit_on_findings,
    findings_options,
    format_option,
    handles_errors,
    load_all,
    load_run,
    say,
    utcnow,
)
from auditor.cli.db import record_check
from auditor.cli.output import render_table, write_json
from auditor.cli.probing import parallel_probe
from auditor.config import Config, load_config
from auditor.consent.check import schema_issues
from auditor.consent.config import check_against_inventory
from auditor.core.collector import collector_paused
from auditor.core.errors import InvalidInputError, Issue, StoreError
from auditor.core.model import Integration
from auditor.core.results import AuditResult
from auditor.retention import RetentionPolicy, bind_policy
from auditor.retention.policy import check_references, load_retention_policies
from auditor.service.wiring import build_locator, build_resolver, database_url
from auditor.sources import DataSourceError, DataSources
from auditor.sources.datasources import source_url
from auditor.store.engine import driver_problem, normalise_url
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


@cli.command()
@config_option
@click.option(
    "--connect",
    is_flag=True,
    help="Also check the consent mappings' and retention policies' tables and columns in the "
    "organisation's databases (read only: nothing is written).",
)
@format_option
def validate(config_path: Path, connect: bool, output_format: str) -> None:
    """Check the configuration, inventory and policy data without probing anything (with
    --connect, the consent mappings and the retention policies, their dependents included,
    against the databases' schemas too).

    Exit status 0 when all is valid, 2 with every problem found (file, entry, key, line).
    """
    issues: list[Issue] = []
    count = 0
    try:
        config = load_config(config_path)
        issues.extend(_missing_files(config))
        _, integrations = load_all(config)
        count = len(integrations)
        issues.extend(check_against_inventory(config.consent, integrations))
        issues.extend(_driver_issues(config))
        if connect:
            issues.extend(_consent_schemas(config))
        issues.extend(_retention_issues(config, integrations, connect))
    except InvalidInputError as exc:
        issues.extend(exc.issues)
    if output_format == "json":
        doc = {"valid": not issues, "integrations": count, "errors": [vars_of(i) for i in issues]}
        click.echo(json.dumps(doc, indent=2))
    elif issues:
        say(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} found:", err=True)
        for issue in issues:
            say(f"  {issue}", err=True)
    else:
        say(f"valid: {config_path} ({count} integrations)")
    sys.exit(EXIT_INVALID if issues else EXIT_OK)


def _retention_issues(
    config: Config, integrations: list[Integration], connect: bool
) -> list[Issue]:
    """The retention policy files' problems, references to unknown data sources, and with
    `connect`, every problem against the reflected schemas."""
    if not config.retention:
        return []
    try:
        policies = load_retention_policies(config.retention, display=config.base)
    except InvalidInputError as exc:
        return list(config.located(exc).issues)
    issues = check_references(policies, config.data_sources, integrations)
    if connect:
        issues += _retention_schemas(config, policies)
    return issues


def _retention_schemas(config: Config, policies: list[RetentionPolicy]) -> list[Issue]:
    """The policies bound to the reflected schemas of their data sources, as enforcement binds
    them; a database that cannot be opened is a problem too (its policies cannot be checked)."""
    issues: list[Issue] = []
    unreachable: set[str] = set()
    with DataSources(config.data_sources, os.environ) as sources:
        for policy in policies:
            if policy.source not in sources or policy.source in unreachable:
                continue  # an unknown source is reported already; an unreachable one once
            try:
                bind_policy(policy, sources)
            except InvalidInputError as exc:
                issues.extend(exc.issues)
            except DataSourceError as exc:
                unreachable.add(policy.source)
                settings = config.data_sources[policy.source]
                issues.append(
                    settings.ref.issue(f"cannot check the retention policies: {exc.reason}")
                )
    return issues


def _consent_schemas(config: Config) -> list[Issue]:
    """The consent mappings' problems against the reflected schemas; a database that cannot be
    opened is a problem too (the mappings in it cannot be checked)."""
    issues, unreachable = schema_issues(config.consent_settings, os.environ)
    for exc in unreachable:
        settings = config.data_sources[exc.source]
        issues.append(settings.ref.issue(f"cannot check the consent mappings: {exc.reason}"))
    return issues


def _driver_issues(config: Config) -> list[Issue]:
    """The state database's and the data sources' URLs whose driver is not installed (or
    whose dialect SQLAlchemy does not know). A URL read from an environment variable that is
    not set here is not checked: the daemon's environment may well set it."""
    issues: list[Issue] = []
    if config.database is not None:
        key = "url" if config.database.url is not None else "url_env"
        if config.database.url is not None or os.environ.get(config.database.url_env or ""):
            try:
                problem = driver_problem(normalise_url(database_url(config, os.environ)))
            except InvalidInputError as exc:
                issues.extend(exc.issues)
                problem = None
            except StoreError as exc:
                problem = str(exc)
            if problem is not None:
                issues.append(config.issue(f"the state database {problem}", "database", key))
    for settings in config.data_sources.values():
        try:
            url = source_url(settings, os.environ)
        except DataSourceError:
            continue  # an unset variable or a bad URL: opening the source says so
        problem = driver_problem(url)
        if problem is not None:
            key = "url" if settings.url is not None else "url_env"
            issues.append(settings.ref.issue(f"the data source {problem}", key=key))
    return issues


def _missing_files(config: Config) -> list[Issue]:
    named: list[tuple[tuple[str | int, ...], Path | None]] = [
        (("geoip", "country_db"), config.country_db),
        (("geoip", "asn_db"), config.asn_db),
        (("ip_ranges",), config.ip_ranges),
    ]
    named += [(("dns", "zone_files", i), path) for i, path in enumerate(config.dns.zone_files)]
    return [
        config.issue(f"{path} does not exist", *loc)
        for loc, path in named
        if path is not None and not path.exists()
    ]


def vars_of(issue: Issue) -> dict[str, Any]:
    return {
        "source": issue.source,
        "line": issue.line,
        "entry": issue.entry,
        "field": issue.field,
        "message": issue.message,
    }
