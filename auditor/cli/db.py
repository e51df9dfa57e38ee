"""`db upgrade|status`, and recording a `check` run in the state database when one is configured."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from auditor import __version__
from auditor.cli import EXIT_INVALID, cli, config_option, format_option, handles_errors, say, utcnow
from auditor.config import Config, load_config
from auditor.core.policies import PolicyData
from auditor.core.results import AuditResult
from auditor.service.wiring import database_url, open_store
from auditor.store import SCHEMA_VERSION, RunRecord, StateStore, prune_cutoff, record_audit


def store_for(config_path: Path) -> StateStore:
    """Open the state store a configuration file names (or the default one)."""
    return open_store(load_config(config_path), os.environ)


def record_check(
    config: Config, policies: PolicyData, audit: Callable[[], AuditResult]
) -> AuditResult:
    """Run `check`'s audit as a recorded run, the way the daemon records its runs."""
    store = open_store(config, os.environ)
    try:
        store.expire_waivers(utcnow())
        result, summary = record_audit(
            store,
            audit,
            clock=utcnow,
            tool_version=__version__,
            config_digest=config.digest,
            policy_digest=policies.digest,
        )
        if config.database is not None:
            store.prune_observations(prune_cutoff(config.database.keep_observations, utcnow()))
    finally:
        store.close()
    if sys.stderr.isatty():
        say(
            f"recorded as run {summary.run_id}: {summary.new} new, {summary.reopened} re-opened, "
            f"{summary.resolved} resolved, {summary.open} open"
            + (f" ({summary.carried} carried: their probe failed)" if summary.carried else ""),
            err=True,
        )
    return result


@cli.group()
def db() -> None:
    """The state database: its schema version, upgrading it, and what it holds."""


@db.command("upgrade")
@config_option
@handles_errors
def db_upgrade(config_path: Path) -> None:
    """Create the state database's schema, or upgrade it to this version of gdpr-auditor."""
    store = StateStore.open(database_url(load_config(config_path), os.environ), check_version=False)
    try:
        before, after = store.upgrade()
    finally:
        store.close()
    if before is None:
        say(f"created schema version {after} in {store.url}")
    elif before == after:
        say(f"{store.url} is at schema version {after} already")
    else:
        say(f"upgraded {store.url} from schema version {before} to {after}")


@db.command("status")
@config_option
@format_option
@handles_errors
def db_status(config_path: Path, output_format: str) -> None:
    """Show the state database's schema version, runs and findings.

    Exit status 2 when the database has an older or newer schema than this version's.
    """
    store = StateStore.open(database_url(load_config(config_path), os.environ), check_version=False)
    try:
        version = store.schema_version()
        status = store.status(utcnow().date()) if version == SCHEMA_VERSION else None
    finally:
        store.close()
    doc: dict[str, Any] = {
        "database": store.url,
        "schema_version": version,
        "code_schema_version": SCHEMA_VERSION,
        "up_to_date": version == SCHEMA_VERSION,
    }
    if status is not None:
        doc["runs"] = status.runs
        doc["findings"] = status.findings
        doc["latest_run"] = run_json(status.latest_run)
        doc["latest_success"] = run_json(status.latest_success)
    if output_format == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        say(_status_text(doc), nl=False)
    if version is not None and status is None:
        sys.exit(EXIT_INVALID)


def _status_text(doc: dict[str, Any]) -> str:
    lines = [f"database        {doc['database']}"]
    version = doc["schema_version"]
    if version is None:
        lines.append(
            f"schema version  none yet (this gdpr-auditor creates version {SCHEMA_VERSION})"
        )
    elif not doc["up_to_date"]:
        advice = (
            "run `gdpr-auditor db upgrade`" if version < SCHEMA_VERSION else "upgrade gdpr-auditor"
        )
        lines.append(
            f"schema version  {version}, this gdpr-auditor uses {SCHEMA_VERSION}: {advice}"
        )
    else:
        lines.append(f"schema version  {version}")
        runs = ", ".join(f"{count} {outcome}" for outcome, count in doc["runs"].items())
        lines.append(f"runs            {runs}")
        counts = ", ".join(f"{count} {state}" for state, count in doc["findings"].items())
        lines.append(f"findings        {counts}")
        for label, key in (("latest run", "latest_run"), ("latest success", "latest_success")):
            run = doc[key]
            if run is not None:
                lines.append(
                    f"{label:<15} #{run['id']} {run['outcome']} at {run['started_at']}"
                    + (f": {run['error']}" if run["error"] else "")
                )
    return "\n".join(lines) + "\n"


def when(moment: datetime | None) -> str | None:
    """A UTC timestamp as `2026-11-22T10:00:00Z`."""
    if moment is None:
        return None
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def run_json(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "id": run.id,
        "outcome": run.outcome,
        "started_at": when(run.started_at),
        "finished_at": when(run.finished_at),
        "error": run.error,
        "as_of": run.as_of.isoformat() if run.as_of else None,
        "tool_version": run.tool_version,
        "integrations": run.integrations,
        "findings": run.findings,
        "new": run.new,
        "resolved": run.resolved,
        "reopened": run.reopened,
        "carried": run.carried,
        "probes_failed": list(run.probes_failed),
    }
