"""The command line: `gdpr-auditor check|validate|geodb ...`; exit 0 ok, 1 findings, 2 invalid, 3 could not run."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from auditor import __version__
from auditor.audit import AuditResult, run_audit
from auditor.config import Config, load_config
from auditor.errors import AuditUnavailableError, InvalidInputError, Issue
from auditor.inventory import load_inventory
from auditor.model import Integration, Severity
from auditor.output import render_json, render_table
from auditor.policies import PolicyData, load_policies
from auditor.wiring import build_locator, build_resolver

EXIT_OK, EXIT_FINDINGS, EXIT_INVALID, EXIT_UNAVAILABLE = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _fail(code: int, message: str) -> None:
    click.echo(f"gdpr-auditor: {message}", err=True)
    sys.exit(code)


def handles_errors(function: F) -> F:
    """Turn the project's errors into messages on stderr and the documented exit statuses."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except InvalidInputError as exc:
            _fail(EXIT_INVALID, str(exc))
        except AuditUnavailableError as exc:
            _fail(EXIT_UNAVAILABLE, f"the audit could not run: {exc}")
        return None

    return wrapper  # type: ignore[return-value]


config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The configuration file (YAML).",
)
format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output for people (table) or tools (json).",
)


def _as_of(value: str | None) -> date:
    if value is None:
        return _utcnow().date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"expected YYYY-MM-DD, got {value!r}", param_hint="--as-of"
        ) from None


def load_all(config: Config) -> tuple[PolicyData, list[Integration]]:
    """Load the policy data and the inventory a configuration names."""
    policies = load_policies(config.policies)
    return policies, load_inventory(config.inventory, policies, display=config.base)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gdpr-auditor")
def cli() -> None:
    """Audit where an organisation's SaaS integrations keep personal data, against the GDPR.

    Not legal advice: it checks what you declare and what it observes against the rules and
    policy data it ships; a DPO decides what the findings mean.
    """


@cli.command()
@config_option
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    help="Evaluate the rules in force that day (default: today, UTC).",
)
@format_option
@click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity]),
    default="critical",
    show_default=True,
    help="Exit 1 when a finding at or above this severity exists.",
)
@handles_errors
def check(config_path: Path, as_of: str | None, output_format: str, fail_on: str) -> None:
    """Run one complete audit and print the findings.

    Exit status: 0 no finding at or above --fail-on, 1 there are such findings, 2 bad usage or
    invalid configuration/inventory, 3 the audit could not run at all.
    """
    day = _as_of(as_of)
    config = load_config(config_path)
    policies, integrations = load_all(config)
    needs_geo = any(integration.endpoints for integration in integrations)
    resolver = build_resolver(config)
    locator = build_locator(config, policies, needed=needs_geo)
    result = run_audit(integrations, policies, resolver, locator, day, _utcnow, _progress_printer())
    _report_timing(result)
    click.echo(render_json(result) if output_format == "json" else render_table(result), nl=False)
    threshold = Severity(fail_on).rank
    if any(finding.severity.rank >= threshold for finding in result.findings):
        sys.exit(EXIT_FINDINGS)


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
        click.echo(
            f"audited {len(result.integrations)} integrations, {result.hostnames} hostnames in "
            f"{result.duration_seconds:.1f} s",
            err=True,
        )


@cli.command()
@config_option
@format_option
def validate(config_path: Path, output_format: str) -> None:
    """Check the configuration, inventory and policy data without probing anything.

    Exit status 0 when all is valid, 2 with every problem found (file, entry, key, line).
    """
    issues: list[Issue] = []
    count = 0
    try:
        config = load_config(config_path)
        issues.extend(_missing_files(config))
        _, integrations = load_all(config)
        count = len(integrations)
    except InvalidInputError as exc:
        issues.extend(exc.issues)
    if output_format == "json":
        doc = {"valid": not issues, "integrations": count, "errors": [vars_of(i) for i in issues]}
        click.echo(json.dumps(doc, indent=2))
    elif issues:
        click.echo(f"{len(issues)} problem{'s' if len(issues) != 1 else ''} found:", err=True)
        for issue in issues:
            click.echo(f"  {issue}", err=True)
    else:
        click.echo(f"valid: {config_path} ({count} integrations)")
    sys.exit(EXIT_INVALID if issues else EXIT_OK)


def _missing_files(config: Config) -> list[Issue]:
    named = [
        ("geoip.country_db", config.country_db),
        ("geoip.asn_db", config.asn_db),
        ("ip_ranges", config.ip_ranges),
    ]
    named += [(f"dns.zone_files[{i}]", path) for i, path in enumerate(config.dns.zone_files)]
    return [
        Issue(str(config.path), f"{path} does not exist", field=label)
        for label, path in named
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


@cli.group()
def geodb() -> None:
    """GeoIP and cloud IP-range data: what is loaded, and updating the range files."""


@geodb.command("info")
@config_option
@format_option
@handles_errors
def geodb_info(config_path: Path, output_format: str) -> None:
    """Print the geolocation data the configuration loads and how old it is."""
    config = load_config(config_path)
    policies = load_policies(config.policies)
    locator = build_locator(config, policies, needed=True)
    now = _utcnow()
    rows: list[dict[str, Any]] = []
    for dataset in locator.datasets():
        age = (now - dataset.built).total_seconds() / 86400 if dataset.built else None
        rows.append(
            {
                "kind": dataset.kind,
                "name": dataset.name,
                "path": dataset.path,
                "built": dataset.built.isoformat().replace("+00:00", "Z")
                if dataset.built
                else None,
                "age_days": round(age, 1) if age is not None else None,
                "entries": dataset.entries,
            }
        )
    if output_format == "json":
        click.echo(json.dumps({"datasets": rows}, indent=2))
        return
    for row in rows:
        known = row["age_days"] is not None
        age_text = f"{row['age_days']} days old" if known else "build date unknown"
        entries = f", {row['entries']} entries" if row["entries"] is not None else ""
        click.echo(f"{row['kind']:<14} {row['name']:<22} {age_text}{entries}  {row['path']}")


@geodb.command("update")
@config_option
@click.option("--provider", "providers", multiple=True, help="Only these providers (repeatable).")
@click.option(
    "--mirror",
    metavar="URL",
    help="Fetch the files by name from this base URL (an internal mirror) instead of the providers.",
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per download.")
@format_option
@handles_errors
def geodb_update(
    config_path: Path,
    providers: tuple[str, ...],
    mirror: str | None,
    timeout: float,
    output_format: str,
) -> None:
    """Download the cloud providers' published IP-range files into the `ip_ranges` directory.

    Each file is checked before it replaces the one there; a failed download keeps the old file
    and makes the exit status 3. The MaxMind database stays your own download (geodb/README.md).
    """
    import requests

    from auditor.probes.ipranges import SOURCES, fetch_ip_ranges

    config = load_config(config_path)
    if config.ip_ranges is None:
        issue = Issue(str(config.path), "set it to a directory first", field="ip_ranges")
        raise InvalidInputError([issue])
    config.ip_ranges.mkdir(parents=True, exist_ok=True)
    urls = None
    if mirror is not None:
        urls = {source.filename: f"{mirror.rstrip('/')}/{source.filename}" for source in SOURCES}
    with requests.Session() as session:
        results = fetch_ip_ranges(
            session, config.ip_ranges, providers or None, timeout=timeout, urls=urls
        )
    if output_format == "json":
        rows = [
            {"provider": r.provider, "path": r.path, "ok": r.ok, "entries": r.entries,
             "built": r.built.isoformat() if r.built else None, "error": r.error}
            for r in results
        ]  # fmt: skip
        click.echo(json.dumps({"files": rows}, indent=2))
    else:
        for result in results:
            if result.ok:
                built = f", built {result.built:%Y-%m-%d}" if result.built else ""
                click.echo(
                    f"{result.provider:<11} {result.entries} prefixes{built} -> {result.path}"
                )
            else:
                click.echo(f"{result.provider:<11} failed: {result.error}", err=True)
    if not all(result.ok for result in results):
        sys.exit(EXIT_UNAVAILABLE)


def main() -> None:
    """Console entry point."""
    cli(prog_name="gdpr-auditor")
