"""`web`: what the organisation's websites make visitors' browsers send where, before and after
consent, in a real browser."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from auditor.cli import (
    EXIT_UNAVAILABLE,
    cli,
    exit_on_findings,
    findings_options,
    handles_errors,
    load_run,
    say,
    utcnow,
)
from auditor.cli.output import finding_json
from auditor.core.errors import InvalidRequestError
from auditor.discovery.web.job import audit_websites, record_web_audit
from auditor.discovery.web.output import render_table, web_json
from auditor.service.wiring import (
    build_locator,
    build_resolver,
    open_store,
    web_evidence_directory,
)


@cli.command("web")
@findings_options("Judge transfers by the rules in force that day (default: today, UTC).")
@handles_errors
def web_command(config_path: Path, as_of: str | None, output_format: str, fail_on: str) -> None:
    """Load every page of the sites under `websites:` in headless Chromium, before any consent
    choice, after reject and after accept; record what each sends where (screenshot, HAR and a
    JSON record per page and state, under the state directory) and judge the third parties.

    With a database configured the findings and the evidence record are stored, as the daemon's
    `web` job does. Exit status: 0 no finding at or above --fail-on, 1 there are such findings,
    2 invalid configuration, 3 the browser could not run or no page loaded at all.
    """
    day, config, policies, integrations = load_run(config_path, as_of)
    if not config.websites.sites:
        raise InvalidRequestError(f"{config.path}: nothing to look at: `websites:` names no site")
    resolver = build_resolver(config)
    locator = build_locator(config, policies)
    root = web_evidence_directory(config, os.environ)
    audit = audit_websites(
        config, policies, integrations, resolver, locator, root=root, as_of=day, clock=utcnow
    )
    if config.database is not None:
        store = open_store(config, os.environ)
        try:
            record_web_audit(store, audit, utcnow())
        finally:
            store.close()
    if output_format == "json":
        document = web_json(audit)
        document["evidence_directory"] = str(root / audit.directory)
        document["findings"] = [finding_json(finding) for finding in audit.findings]
        click.echo(json.dumps(document, indent=2))
    else:
        say(render_table(audit), nl=False)
    if audit.nothing_observed:
        say("gdpr-auditor: no page could be observed: " + "; ".join(audit.problems[:3]), err=True)
        sys.exit(EXIT_UNAVAILABLE)
    if not audit.complete:
        say(
            f"gdpr-auditor: {len(audit.failed_probes)} pages, sites or hosts could not be "
            "observed completely; what they would show is unknown",
            err=True,
        )
    exit_on_findings(audit.findings, fail_on)
