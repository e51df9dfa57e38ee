"""The daemon's web job: findings and the run's evidence record in the store, metrics by site id,
carried findings when a page does not load, old evidence files pruned."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from auditor.core.errors import AuditUnavailableError
from auditor.service.daemon import Daemon
from auditor.service.metrics import build_registry
from auditor.store import StateStore
from auditor.store.reporting import list_records
from tests.discovery.web.conftest import World
from tests.jobs import run_job_once

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
BLOG = """
websites:
  timeout: 4
  settle: 0.3
  browser_args: {switches}
  sites:
    - id: blog
      start: ["https://www.blog.test:{port}/"]
      max_pages: 1
"""
JOBS = "jobs:\n  web: {interval: P1D}\n"


def run_job(config: Path) -> tuple[Daemon, StateStore]:
    return run_job_once(
        "web", config, lambda _: StateStore.open(f"sqlite:///{config.parent / 'state.db'}"), AT
    )


def test_the_job_records_findings_evidence_and_metrics(world: World, tmp_path: Path) -> None:
    """The run's `web-run` evidence record holds the SHA-256 of every file it wrote; the metrics
    label sites by their configured id; old runs' files are pruned, other files kept."""
    config = world.configure(tmp_path, BLOG, JOBS)
    root = tmp_path / "web-evidence"
    (root / "20200101T000000Z").mkdir(parents=True)
    (root / "README").write_text("kept")
    daemon, store = run_job(config)
    try:
        found = {(f.rule, f.integration) for f in store.open_findings(AT.date())}
        (record,) = [r.data() for r in list_records(store.engine, kinds=["web-run"])]
    finally:
        store.close()
    assert ("web-tracking-before-consent", "test-tracker") in found
    assert ("web-transfer-unsafeguarded", "test-tagmanager") in found
    assert ("web-third-party-undeclared", "embed.test") in found
    state = record["sites"][0]["pages"][0]["states"]["before"]
    for kind in ("record", "screenshot", "har"):
        entry = state["files"][kind]
        assert hashlib.sha256((root / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    assert record["complete"] is True
    assert sorted(p.name for p in root.iterdir()) == sorted([record["directory"], "README"])
    metrics = generate_latest(build_registry(daemon.snapshot)).decode()
    assert (
        'gdpr_auditor_web_third_parties{site="blog",state="before",verdict="unsafeguarded"} 2.0'
        in metrics
    )
    assert 'gdpr_auditor_web_pages{outcome="observed",site="blog"} 1.0' in metrics
    assert (
        'gdpr_auditor_findings_open{integration="test-tracker",rule="web-tracking-before-consent"'
        in metrics
    )
    web_lines = [line for line in metrics.splitlines() if line.startswith("gdpr_auditor_web_")]
    assert web_lines and not any(".test" in line or "https" in line for line in web_lines)


def test_a_page_that_does_not_load_carries_the_findings_and_fails_the_job(
    world: World, tmp_path: Path
) -> None:
    """Never resolved by a page that failed: the findings stay open, marked carried with the
    page's failure, and the job fails so that its failure counter shows it."""
    config = world.configure(tmp_path, BLOG, JOBS)
    run_job(config)[1].close()
    world.sites.broken.add(("www.blog.test", "/"))
    try:
        with pytest.raises(AuditUnavailableError, match="web audit incomplete") as failed:
            run_job(config)
    finally:
        world.sites.broken.clear()
    assert "findings carried" in str(failed.value)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        open_now = store.open_findings(AT.date())
        resolved = store.list_findings(status="resolved")
    finally:
        store.close()
    assert resolved == []
    assert open_now and all(f.carried for f in open_now)
    assert all("HTTP 503" in (f.carried_reason or "") for f in open_now)
