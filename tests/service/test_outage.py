"""A DNS outage never resolves a finding about an observed endpoint: it is carried until a probe
sees the endpoint again. A loopback DNS server that answers, then goes silent, then answers with
the endpoint moved; the audit recorded in a real store; the daemon as a process with a webhook.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select, text, update

from auditor.cli import cli
from auditor.core.lifecycle import Status
from auditor.core.results import AuditResult
from auditor.service.generation import load_generation
from auditor.service.metrics import build_registry
from auditor.service.snapshot import Snapshot
from auditor.store import SCHEMA_VERSION, RunSummary, StateStore
from auditor.store.schema import audit_runs, findings, schema_meta
from auditor.transfers.audit import run_audit
from tests.dnsserver import LoopbackDnsServer
from tests.service.test_daemon import UNLAWFUL, DaemonProcess, Workdir, _dns, _spawn, _workdir  # noqa: F401 (fixtures)
from tests.service.test_notify import Hook, _hook  # noqa: F401 (the webhook receiver fixture)
from tests.store.test_store import upgrade

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

# Declared in Germany, observed in the US: a critical endpoint transfer and a location drift.
DRIFTING = {**UNLAWFUL, "hosting": ["DE"], "endpoints": ["api.shop.example"]}
OTHER = {**DRIFTING, "id": "other", "name": "Other", "endpoints": ["api.other.example"]}
ZONE = """
$ORIGIN .
$TTL 60
api.shop.example.   A   198.51.100.10
api.other.example.  A   198.51.100.20
api.eu.example.     A   192.0.2.10
"""
MOVED = ZONE.replace("198.51.100.10", "192.0.2.11").replace("198.51.100.20", "192.0.2.21")
ENDPOINT_RULES = {"transfer-unsafeguarded", "location-drift"}


class Audits:
    """Audits of a workdir's inventory recorded in its state database, a day apart."""

    def __init__(self, workdir: Workdir) -> None:
        config = yaml.safe_load(workdir.config.read_text())
        config["dns"]["timeout"] = 0.5  # a silent server costs half a second per run
        workdir.config.write_text(yaml.safe_dump(config))
        self.workdir = workdir
        self.day = 0

    def run(self) -> tuple[AuditResult, RunSummary]:
        generation = load_generation(self.workdir.config)
        at = T0 + timedelta(days=self.day)
        self.day += 1
        result = run_audit(
            generation.integrations,
            generation.policies,
            generation.resolver,
            generation.locator,
            at.date(),
            lambda: at,
        )
        store = self.workdir.store()
        try:
            run_id = store.begin_run(at, tool_version="t", config_digest="c", policy_digest="p")
            return result, store.finish_run(run_id, result, at)
        finally:
            store.close()

    def open_findings(self) -> dict[tuple[str, str, str], Any]:
        store = self.workdir.store()
        try:
            found = store.list_findings(status="open")
        finally:
            store.close()
        return {(f.rule, f.integration, f.place or ""): f for f in found}


@pytest.fixture(name="dns")
def _outage_dns(dns_server_factory: Any) -> LoopbackDnsServer:
    server: LoopbackDnsServer = dns_server_factory(ZONE)
    return server


@pytest.mark.parametrize("silence", ["timeout", "servfail"])
def test_a_silent_dns_server_carries_endpoint_findings_and_the_move_resolves_them(
    workdir: Workdir, dns: LoopbackDnsServer, silence: str
) -> None:
    """Run 1 sees the US endpoint; run 2 gets no answer: the critical transfer and the drift stay
    open (carried, evidence and last_seen from run 1), location-unverified opens, nothing is
    resolved; run 3 sees the endpoint moved to Germany: both resolve."""
    workdir.write_inventory([DRIFTING])
    audits = Audits(workdir)
    _, first = audits.run()
    before = audits.open_findings()
    assert {("transfer-unsafeguarded", "shop", "US"), ("location-drift", "shop", "US")} <= set(
        before
    )

    dns.set_behaviour("api.shop.example", silence)
    result, second = audits.run()
    during = audits.open_findings()

    assert {"endpoint:api.shop.example"} == set(result.failed_probes)
    assert 0 == second.resolved
    assert 2 == second.carried
    for rule in ENDPOINT_RULES:
        carried = during[(rule, "shop", "US")]
        assert carried.carried and carried.carried_since == T0 + timedelta(days=1)
        assert "endpoint:api.shop.example failed" in (carried.carried_reason or "")
        assert carried.last_seen == T0  # the evidence is the last observation's
        assert carried.evidence == before[(rule, "shop", "US")].evidence
    assert ("location-unverified", "shop", "api.shop.example") in during
    store = workdir.store()
    try:
        run = store.latest_run()
        counts = store.snapshot_counts(T0.date())
        resolved = store.list_findings(status="resolved")
    finally:
        store.close()
    assert run is not None and ("endpoint:api.shop.example",) == run.probes_failed
    assert 2 == run.carried
    assert resolved == []
    assert counts.open_findings[("transfer-unsafeguarded", "critical", "shop")] == 1
    assert counts.carried_findings[("transfer-unsafeguarded", "critical")] == 1

    dns.set_behaviour("api.shop.example", None)
    dns.serve(MOVED)
    _, third = audits.run()
    after = audits.open_findings()

    assert not {key for key in after if key[0] in ENDPOINT_RULES | {"location-unverified"}}
    assert 3 == third.resolved
    assert first.new >= 2


def test_only_the_hostname_whose_probe_failed_keeps_its_findings(
    workdir: Workdir, dns: LoopbackDnsServer
) -> None:
    """Two integrations in the US: one's DNS fails, the other's moves to Germany. The first
    finding is carried, the second resolved."""
    workdir.write_inventory([DRIFTING, OTHER])
    audits = Audits(workdir)
    audits.run()

    dns.serve(MOVED)
    dns.set_behaviour("api.shop.example", "servfail")
    _, summary = audits.run()
    after = audits.open_findings()

    assert ("transfer-unsafeguarded", "shop", "US") in after
    assert after[("transfer-unsafeguarded", "shop", "US")].carried
    assert ("transfer-unsafeguarded", "other", "US") not in after
    assert 2 == summary.resolved and 2 == summary.carried


def test_a_carried_finding_shows_in_finding_list_and_its_json(
    workdir: Workdir, dns: LoopbackDnsServer
) -> None:
    """`finding list` marks it carried and says why; the JSON has carried, carried_since, the
    reason and the probes; a finding seen again is no longer carried."""
    workdir.write_inventory([DRIFTING])
    audits = Audits(workdir)
    audits.run()
    dns.set_behaviour("api.shop.example", "servfail")
    audits.run()
    runner = CliRunner()

    table = runner.invoke(cli, ["finding", "list", "--config", str(workdir.config)])
    listed = runner.invoke(
        cli, ["finding", "list", "--config", str(workdir.config), "--format", "json"]
    )

    assert 0 == table.exit_code, table.output
    assert "(carried since 2026-11-23)" in table.output
    assert "2 findings marked (carried) kept open" in table.output
    by_rule = {(f["rule"], f["place"]): f for f in json.loads(listed.output)["findings"]}
    unsafe = by_rule[("transfer-unsafeguarded", "US")]
    assert unsafe["carried"] is True and unsafe["carried_since"] == "2026-11-23T10:00:00Z"
    assert unsafe["probes"] == ["endpoint:api.shop.example"]
    assert "servfail" in unsafe["carried_reason"]
    assert by_rule[("location-unverified", "api.shop.example")]["carried"] is False

    dns.set_behaviour("api.shop.example", None)
    audits.run()
    seen_again = audits.open_findings()[("transfer-unsafeguarded", "shop", "US")]
    assert not seen_again.carried and seen_again.carried_reason is None


def test_the_carried_metric_counts_open_findings_whose_probe_failed() -> None:
    """gdpr_auditor_findings_carried by rule and severity, next to findings_open."""
    snapshot = Snapshot(
        open_findings={("transfer-unsafeguarded", "critical", "shop"): 1},
        carried_findings={("transfer-unsafeguarded", "critical"): 1},
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in build_registry(lambda: snapshot).collect()
        for s in family.samples
    }
    labels = (("rule", "transfer-unsafeguarded"), ("severity", "critical"))
    assert 1 == samples[("gdpr_auditor_findings_carried", labels)]


def test_a_version_2_database_gets_probes_from_the_evidence(state_url: str) -> None:
    """Upgrading from version 2 adds the columns and gives the open endpoint findings their
    probes, so that the first audit after the upgrade already carries them through an outage."""
    store = StateStore.open(state_url)
    with store.engine.begin() as conn:
        run = conn.execute(
            audit_runs.insert()
            .values(started_at=T0, outcome="success", tool_version="t", config_digest="c",
                    policy_digest="p", datasets=[])
            .returning(audit_runs.c.id)
        ).scalar_one()  # fmt: skip
        common = {"status": "open", "severity": "critical", "article": "Art. 44", "message": "m",
                  "first_seen": T0, "last_seen": T0, "reopened": 0, "first_run_id": run,
                  "last_run_id": run, "integration": "shop"}  # fmt: skip
        conn.execute(
            findings.insert(),
            [
                {**common, "rule": "transfer-unsafeguarded", "facet": "endpoint", "place": "US",
                 "evidence": {"via": "a.example, b.example"}},
                {**common, "rule": "location-drift", "facet": "endpoint", "place": "US",
                 "evidence": {"hostnames": ["a.example"]}},
                {**common, "rule": "location-unverified", "facet": "endpoint",
                 "place": "c.example", "evidence": {}},
                {**common, "rule": "contract-dpa-missing", "facet": "", "place": "",
                 "evidence": {}},
                {**common, "rule": "inventory-undeclared", "facet": "", "place": "zendesk",
                 "evidence": {}, "integration": "zendesk"},
            ],
        )  # fmt: skip
        for table, column in (
            ("findings", "probes"),
            ("findings", "carried_since"),
            ("findings", "carried_reason"),
            ("audit_runs", "carried"),
            ("audit_runs", "probes_failed"),
        ):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(update(schema_meta).values(version=2))
    store.close()

    steps = upgrade(state_url)
    upgraded = StateStore.open(state_url)
    with upgraded.engine.connect() as conn:
        probes = {row.rule: row.probes for row in conn.execute(select(findings))}
    run_record = upgraded.latest_run()
    upgraded.close()

    assert (2, SCHEMA_VERSION) == steps
    assert probes == {
        "transfer-unsafeguarded": ["endpoint:a.example", "endpoint:b.example"],
        "location-drift": ["endpoint:a.example"],
        "location-unverified": ["endpoint:c.example"],
        "contract-dpa-missing": [],
        "inventory-undeclared": ["discovery"],
    }
    assert run_record is not None and (0, ()) == (run_record.carried, run_record.probes_failed)


# -- the daemon as a process ------------------------------------------------------------------


def resolved_notifications(hook: Hook) -> list[dict[str, Any]]:
    return [body for body in hook.bodies if body["status"] == "resolved"]


@pytest.mark.slow
def test_the_daemon_keeps_the_critical_finding_open_and_silent_through_a_dns_outage(
    workdir: Workdir,
    dns: LoopbackDnsServer,
    spawn: Callable[..., DaemonProcess],
    hook: Hook,
) -> None:
    """The DNS server stops answering: the critical endpoint finding stays open in the metrics,
    no "Resolved" is posted, location-unverified appears; when DNS answers again with the
    endpoint really moved to Germany, the finding resolves and its resolution is posted."""
    workdir.write_inventory([DRIFTING])
    config = yaml.safe_load(workdir.config.read_text())
    config["notify"] = {"webhook_url_env": "AUDITOR_HOOK"}
    config["dns"]["timeout"] = 0.5
    workdir.config.write_text(yaml.safe_dump(config))
    daemon = spawn(workdir.config, {"AUDITOR_HOOK": hook.url})

    firing = hook.wait_for(1)
    assert ("transfer-unsafeguarded", "shop") in {(b["rule"], b["integration"]) for b in firing}
    dns.set_behaviour("api.shop.example", "timeout")
    runs = daemon.count("audit_finished")
    daemon.wait_for("audit_finished", nth=runs + 1)  # may have started before the outage
    silent = daemon.wait_for("audit_finished", nth=runs + 2, timeout=20)

    assert silent["carried"] >= 2 and silent["resolved"] == 0 and silent["probes_failed"] == 1
    daemon.wait_for("audit_finished", nth=runs + 3, timeout=20)  # the outage goes on
    assert 1 == daemon.open_findings("location-unverified", "shop")
    assert 1 == daemon.open_findings("transfer-unsafeguarded", "shop")
    assert 1 == daemon.value("gdpr_auditor_findings_carried", rule="transfer-unsafeguarded")
    assert resolved_notifications(hook) == []

    dns.serve(MOVED)
    dns.set_behaviour("api.shop.example", None)
    daemon.wait_until(
        lambda: not daemon.open_findings("transfer-unsafeguarded", "shop"),
        "the finding resolved once the endpoint is seen in Germany",
        timeout=20,
    )
    resolved = hook.wait_for(2 * len(firing))[len(firing) :]
    assert {b["status"] for b in resolved} == {"resolved"}
    assert sorted(b["finding_id"] for b in resolved) == sorted(b["finding_id"] for b in firing)
    store = workdir.store()
    try:
        (finding,) = store.list_findings(status="resolved", rule="transfer-unsafeguarded")
    finally:
        store.close()
    assert finding.status is Status.RESOLVED and not finding.carried
    daemon.send(signal.SIGTERM)
    assert 0 == daemon.exit_status(timeout=10)
