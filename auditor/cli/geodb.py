"""`geodb info|update`: the geolocation data loaded, and fetching the IP-range files."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from auditor.cli import (
    EXIT_UNAVAILABLE,
    cli,
    config_option,
    format_option,
    handles_errors,
    say,
    utcnow,
)
from auditor.config import load_config
from auditor.core.errors import InvalidInputError
from auditor.core.policies import load_policies
from auditor.core.staleness import dataset_warning
from auditor.service.wiring import build_locator


@cli.group()
def geodb() -> None:
    """GeoIP and cloud IP-range data: what is loaded, and updating the range files."""


@geodb.command("info")
@config_option
@format_option
@handles_errors
def geodb_info(config_path: Path, output_format: str) -> None:
    """Print the geolocation data the configuration loads, how old it is, and whether it is
    older than geoip.max_age_days.

    Also lists the regions and zones in the IP-range files that the policy's region tables do
    not map: addresses there are located by GeoIP alone, and a new region shows up here the
    day its provider publishes it.
    """
    from auditor.probes.geo import MmdbGeoLocator

    config = load_config(config_path)
    policies = load_policies(config.policies)
    locator = build_locator(config, policies, needed=True)
    unmapped = [
        {
            "provider": name.provider,
            "name": name.name,
            "region": name.region,
            "border_group": name.is_zone,
            "entries": name.entries,
            "left_out": policies.left_out.get(name.provider, {}).get(name.name),
        }
        for name in (locator.unmapped() if isinstance(locator, MmdbGeoLocator) else [])
    ]
    now = utcnow()
    rows: list[dict[str, Any]] = []
    for dataset in locator.datasets():
        age = (now - dataset.built).total_seconds() / 86400 if dataset.built else None
        stale = dataset_warning(dataset, now.date(), config.geoip_max_age_days) is not None
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
                "dated_by": dataset.dated_by,
                "stale": stale if dataset.built else None,
                "max_age_days": config.geoip_max_age_days,
            }
        )
    if output_format == "json":
        click.echo(json.dumps({"datasets": rows, "unmapped": unmapped}, indent=2))
        return
    for row in rows:
        if row["age_days"] is None:
            age_text = "age unknown (no build date, no recorded fetch)"
        elif row["dated_by"] == "fetched":
            age_text = f"fetched {row['age_days']} days ago"
        else:
            age_text = f"{row['age_days']} days old"
        if row["stale"]:
            age_text += f", STALE (more than {row['max_age_days']} days)"
        entries = f", {row['entries']} entries" if row["entries"] is not None else ""
        say(f"{row['kind']:<14} {row['name']:<22} {age_text}{entries}  {row['path']}")
    _echo_unmapped(unmapped)


def _echo_unmapped(unmapped: list[dict[str, Any]]) -> None:
    if not unmapped:
        return
    say("\nNot in the region tables (located by GeoIP alone):")
    for item in unmapped:
        what = f"border group of {item['region']}" if item["border_group"] else "region"
        why = f"; left out: {item['left_out']}" if item["left_out"] else ""
        say(f"{item['provider']:<14} {item['name']:<22} {what}, {item['entries']} entries{why}")


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
        issue = config.issue("set it to a directory first", "ip_ranges")
        raise InvalidInputError([issue])
    urls = None
    if mirror is not None:
        urls = {source.filename: f"{mirror.rstrip('/')}/{source.filename}" for source in SOURCES}
    with requests.Session() as session:
        results = fetch_ip_ranges(
            session, config.ip_ranges, providers or None, timeout=timeout, urls=urls, clock=utcnow
        )
    if output_format == "json":
        rows = [
            {"provider": r.provider, "path": r.path, "ok": r.ok, "entries": r.entries,
             "built": r.built.isoformat() if r.built else None, "error": r.error,
             "fetched": r.fetched.isoformat() if r.fetched else None}
            for r in results
        ]  # fmt: skip
        click.echo(json.dumps({"files": rows}, indent=2))
    else:
        for result in results:
            if result.ok:
                built = f", built {result.built:%Y-%m-%d}" if result.built else ""
                if result.built == result.fetched:
                    built = ", no build date of its own: dated by this fetch"
                say(f"{result.provider:<11} {result.entries} prefixes{built} -> {result.path}")
            else:
                say(f"{result.provider:<11} failed: {result.error}", err=True)
    if not all(result.ok for result in results):
        sys.exit(EXIT_UNAVAILABLE)
