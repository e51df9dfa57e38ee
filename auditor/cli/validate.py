"""`validate`: the configuration, inventory and policy data checked without probing (with
`--connect`, the consent mappings and retention policies against the databases' schemas)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from auditor.cli import (
    EXIT_INVALID,
    EXIT_OK,
    cli,
    config_option,
    format_option,
    load_all,
    say,
)
from auditor.config import Config, load_config
from auditor.consent.check import schema_issues
from auditor.consent.config import check_against_inventory
from auditor.core.errors import InvalidInputError, Issue, StoreError
from auditor.core.model import Integration
from auditor.retention import RetentionPolicy, bind_policy
from auditor.retention.policy import check_references, load_retention_policies
from auditor.service.wiring import database_url
from auditor.sources.datasources import DataSourceError, DataSources, source_url
from auditor.store.engine import driver_problem, normalise_url


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
