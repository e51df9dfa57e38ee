"""The daemon's discovery job: findings in the store, metrics, and carried findings when incomplete."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from auditor.config import load_config
from auditor.core.errors import AuditUnavailableError
from auditor.core.jobs import JobContext
from auditor.service.daemon import NEEDED, WORK, Daemon
from auditor.service.generation import Generation, load_generation
from auditor.service.leader import SingleReplica
from auditor.service.metrics import build_registry
from auditor.service.sdnotify import Notifier
from auditor.store import StateStore
from tests.conftest import DnsServerFactory
from tests.discovery.test_discovery_dns import ZONE
from tests.jobs import run_job_once

AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
INVENTORY = """
integrations:
  - id: google-workspace
    name: Google Workspace
    category: other
    role: processor
    data_categories: [contact]
    hosting: [US]
"""


def configure(tmp_path: Path, nameserver: str, discovery: str) -> Path:
    (tmp_path / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    config = tmp_path / "auditor.yaml"
    config.write_text(
        "inventory: inventory.yaml\n"
        f"dns:\n  nameservers: ['{nameserver}']\n  timeout: 0.5\n"
        "database:\n  url: sqlite:///state.db\n"
        "jobs:\n  discovery: {interval: P1D}\n" + discovery,
        encoding="utf-8",
    )
    return config


def run_job(config: Path) -> tuple[Daemon, StateStore]:
    return run_job_once("discovery", config, _configured_store, AT)


def _configured_store(generation: Generation) -> StateStore:
    settings = generation.config.database
    assert settings is not None and settings.url is not None
    return StateStore.open(settings.url)


def test_job_records_undeclared_vendors_and_exports_coverage(
    tmp_path: Path, dns_server_factory: DnsServerFactory
) -> None:
    """One finding per undeclared vendor (integration and place = vendor id, evidence = the
    records); the declared vendor has none; the metrics show declared, undeclared and coverage."""
    server = dns_server_factory(ZONE)
    config = configure(tmp_path, server.address, "discovery:\n  domains: [shop-co.example]\n")
    assert load_config(config).jobs["discovery"].interval is not None
    daemon, store = run_job(config)
    try:
        findings = store.open_findings(AT.date())
    finally:
        store.close()
    undeclared = {f.integration: f for f in findings if f.rule == "inventory-undeclared"}
    assert "google-workspace" not in undeclared
    assert set(undeclared) == {
        "atlassian",
        "sendgrid",
        "mailchimp",
        "shopify",
        "zendesk",
        "microsoft-365",
    }
    shopify = undeclared["shopify"]
    assert shopify.place == "shopify"
    assert shopify.evidence["signals"][0]["value"] == "shops.myshopify.com."
    metrics = generate_latest(build_registry(daemon.snapshot)).decode()
    total = len(undeclared) + 1
    assert 'gdpr_auditor_discovery_vendors{state="declared"} 1.0' in metrics
    assert (
        f'gdpr_auditor_discovery_vendors{{state="undeclared"}} {float(len(undeclared))}' in metrics
    )
    assert f"gdpr_auditor_inventory_coverage_ratio {1 / total}" in metrics


def test_incomplete_run_carries_the_findings_of_what_failed_and_fails(
    tmp_path: Path, dns_server_factory: DnsServerFactory
) -> None:
    """A first complete run records the undeclared vendors. Then the domain's records fail: the
    job fails, the vendors seen through them are carried (not resolved), those seen through a
    CNAME that still answers stay open, and the coverage is unknown (absent). Then a CNAME that
    answers without the vendor resolves its finding while the domain still fails."""
    server = dns_server_factory(ZONE)
    config = configure(tmp_path, server.address, "discovery:\n  domains: [shop-co.example]\n")
    run_job(config)[1].close()

    server.set_behaviour("shop-co.example", "servfail")
    with pytest.raises(AuditUnavailableError, match="discovery incomplete") as failed:
        run_job(config)
    assert "4 findings carried" in str(failed.value)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        during = {f.integration: f for f in store.open_findings(AT.date())}
        assert store.list_findings(status="resolved") == []
    finally:
        store.close()
    assert set(during) == {"atlassian", "sendgrid", "mailchimp", "shopify", "zendesk",
                           "microsoft-365"}  # fmt: skip
    assert {name for name, f in during.items() if f.carried} == {
        "atlassian", "sendgrid", "mailchimp", "microsoft-365"
    }  # fmt: skip
    assert during["shopify"].probes == ("discovery-dns:www.shop-co.example",)

    server.serve(ZONE.replace("www.shop-co.example.    IN CNAME shops.myshopify.com.\n", ""))
    server.set_behaviour("shop-co.example", "servfail")
    generation = load_generation(config)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    daemon = Daemon(config, generation, store, SingleReplica(), Notifier({}), clock=lambda: AT)
    job = WORK["discovery"](daemon)
    try:
        with pytest.raises(AuditUnavailableError):
            job(JobContext("discovery", lambda: None))
        resolved = {f.integration for f in store.list_findings(status="resolved")}
        server.set_behaviour("shop-co.example", None)
        job(JobContext("discovery", lambda: None))
        complete = generate_latest(build_registry(daemon.snapshot)).decode()
        server.set_behaviour("shop-co.example", "servfail")
        with pytest.raises(AuditUnavailableError):
            job(JobContext("discovery", lambda: None))
        incomplete = generate_latest(build_registry(daemon.snapshot)).decode()
    finally:
        store.close()
    assert resolved == {"shopify"}
    assert "\ngdpr_auditor_inventory_coverage_ratio 0.16" in complete
    assert "\ngdpr_auditor_inventory_coverage_ratio " not in incomplete


def test_job_is_needed_only_with_something_to_look_at(
    tmp_path: Path, dns_server_factory: DnsServerFactory
) -> None:
    """Without domains or pages under `discovery:` the job is not scheduled; with one it is."""
    server = dns_server_factory(ZONE)
    config = configure(tmp_path, server.address, "")
    assert not NEEDED["discovery"](load_generation(config))
    config = configure(tmp_path, server.address, "discovery:\n  pages: ['http://127.0.0.1:9/']\n")
    assert NEEDED["discovery"](load_generation(config))
