"""The retention job, its metrics and its `retention-overdue` findings, on SQLite."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest
from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, Table, create_engine, insert

from auditor.core.jobs import JobCancelled, JobContext
from auditor.core.model import Severity
from auditor.core.yamlsource import parse_yaml
from auditor.retention import RetentionPolicy, parse_retention
from auditor.retention.job import RetentionJob, RetentionJobError, RetentionState
from auditor.retention.plan import retention_findings
from auditor.service.daemon import NEEDED, WORK, Daemon
from auditor.service.generation import load_generation
from auditor.service.leader import SingleReplica
from auditor.service.metrics import build_registry
from auditor.service.sdnotify import Notifier
from auditor.service.snapshot import Snapshot
from auditor.sources.config import ConfigRef, DataSourceSettings
from auditor.store import StateStore
from auditor.store.evidence import records
from tests.helpers import shipped_policies, write_config

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)


def orders(metadata: MetaData) -> Table:
    return Table(
        "orders",
        metadata,
        Column("order_id", Integer, primary_key=True, autoincrement=False),
        Column("placed_at", DateTime, nullable=False),
        Column("hold", Boolean, nullable=False),
    )


@pytest.fixture(name="crm_url")
def _crm_url(tmp_path: Path) -> str:
    """An organisation database of 20 orders: 1-6 older than a year (2 on hold), the rest new."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = create_engine(url)
    metadata = MetaData()
    table = orders(metadata)
    metadata.create_all(engine)
    rows = [
        {
            "order_id": n,
            "placed_at": (NOW - timedelta(days=400 if n <= 6 else 30)).replace(tzinfo=None),
            "hold": n == 2,
        }
        for n in range(1, 21)
    ]
    with engine.begin() as connection:
        connection.execute(insert(table), rows)
    engine.dispose()
    return url


def policies(*entries: dict[str, Any]) -> list[RetentionPolicy]:
    base = {
        "source": "crm",
        "table": "orders",
        "key": "order_id",
        "timestamp": "placed_at",
        "keep_for": "P1Y",
        "legal_hold": {"column": "hold"},
        "batch_size": 2,
        "max_share": 0.5,
    }
    text = yaml.safe_dump({"policies": [{**base, **entry} for entry in entries]})
    found, issues = parse_retention(parse_yaml(text, "retention.yaml"))
    assert [] == issues
    return found


def job_for(
    url: str, store: StateStore, found: list[RetentionPolicy], sources: dict[str, str] | None = None
) -> RetentionJob:
    settings = {
        name: DataSourceSettings(name, target, None, False, ConfigRef("auditor.yaml", name))
        for name, target in (sources or {"crm": url}).items()
    }
    return RetentionJob(
        policies=lambda: found,
        data_sources=lambda: settings,
        ledger=store,
        clock=lambda: NOW,
        environ={},
    )


def never() -> None:
    """A JobContext.check that never stops the job."""


def test_the_job_enforces_enforce_policies_and_only_plans_the_others(
    crm_url: str, store: StateStore
) -> None:
    """`mode: enforce` deletes; `mode: plan` only counts; the state keeps the counts after."""
    found = policies(
        {"id": "orders-delete", "action": "delete", "mode": "enforce"},
        {"id": "orders-report", "action": "report", "mode": "enforce"},
        {"id": "orders-planned", "action": "delete"},
    )
    job = job_for(crm_url, store, found)

    plans = job(never)
    fields = job.state.snapshot_fields()

    assert [0, 0, 0] == [plan.eligible for plan in plans]
    assert {"orders-delete": 0, "orders-report": 0, "orders-planned": 0} == fields[
        "retention_overdue"
    ]
    assert {"orders-delete": 1, "orders-report": 1, "orders-planned": 1} == fields["retention_held"]
    assert {("orders-delete", "delete"): 5, ("orders-planned", "delete"): 0} == fields[
        "retention_processed"
    ]
    assert {"orders-delete": NOW} == fields["retention_last_enforcement"]
    with store.engine.connect() as connection:
        kinds = [record.kind for record in records(connection)]
    assert ["retention-batch"] * 3 + ["retention-run"] == kinds


def test_one_failing_policy_does_not_stop_the_others(crm_url: str, store: StateStore) -> None:
    """A policy whose source is down (or whose share is refused) fails; the rest still run, and
    the job then raises naming every failed policy."""
    found = policies(
        {"id": "down", "source": "ledger", "action": "delete", "mode": "enforce"},
        {"id": "refused", "action": "delete", "mode": "enforce", "max_share": 0.1},
        {"id": "fine", "action": "delete", "mode": "enforce"},
    )
    job = job_for(crm_url, store, found, {"crm": crm_url, "ledger": "sqlite:///missing/x.db"})

    with pytest.raises(RetentionJobError) as raised:
        job(never)

    assert {"down", "refused"} == set(raised.value.failures)
    assert "max_share" in raised.value.failures["refused"]
    assert {"fine": 0} == job.state.snapshot_fields()["retention_overdue"]


def test_a_stopping_daemon_stops_the_job_between_batches(crm_url: str, store: StateStore) -> None:
    """JobCancelled from the check ends the run after a whole batch; it is counted, and the
    evidence says the run stopped."""
    found = policies({"id": "orders", "action": "delete", "mode": "enforce"})
    job = job_for(crm_url, store, found)
    calls = []

    def stop_on_third() -> None:
        calls.append(1)
        if len(calls) == 3:  # once per policy, then before each batch
            raise JobCancelled("stopping")

    with pytest.raises(JobCancelled):
        job(stop_on_third)

    assert {("orders", "delete"): 2} == job.state.snapshot_fields()["retention_processed"]
    with store.engine.connect() as connection:
        chain = list(records(connection))
    assert "stopped" == chain[-1].data()["outcome"]


def test_removed_policies_leave_the_state(crm_url: str, store: StateStore) -> None:
    """After a reload drops a policy, its series go away instead of freezing."""
    state = RetentionState()
    first = policies({"id": "a", "action": "delete"}, {"id": "b", "action": "delete"})
    job = replace(job_for(crm_url, store, first), state=state)
    job(never)
    replace(job_for(crm_url, store, first[1:]), state=state)(never)

    assert ["b"] == list(state.snapshot_fields()["retention_overdue"])
    assert ["b"] == [plan.policy for plan in state.plans()]


def test_metrics_show_overdue_held_processed_and_last_enforcement(
    crm_url: str, store: StateStore
) -> None:
    """The snapshot's retention fields become gauges by policy and a counter by policy and action."""
    found = policies(
        {"id": "orders-planned", "action": "delete"},
        {"id": "orders-delete", "action": "delete", "mode": "enforce"},
    )
    job = job_for(crm_url, store, found)
    job(never)
    snapshot = replace(Snapshot(), **job.state.snapshot_fields())
    registry = build_registry(lambda: snapshot)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert 0 == value("gdpr_auditor_retention_overdue_records", policy="orders-delete")
    assert 1 == value("gdpr_auditor_retention_held_records", policy="orders-delete")
    assert 5 == value(
        "gdpr_auditor_retention_processed_records_total", policy="orders-delete", action="delete"
    )
    assert 0 == value(
        "gdpr_auditor_retention_processed_records_total", policy="orders-planned", action="delete"
    )
    assert 0 == value("gdpr_auditor_retention_undetermined_batches_total", policy="orders-delete")
    assert NOW.timestamp() == value(
        "gdpr_auditor_retention_last_enforcement_timestamp_seconds", policy="orders-delete"
    )
    assert 5 == value("gdpr_auditor_retention_overdue_records", policy="orders-planned")
    body = generate_latest(registry).decode()
    assert "example" not in body


def test_findings_name_the_policy_and_count_without_personal_data(
    crm_url: str, store: StateStore
) -> None:
    """One critical Art. 5(1)(e) finding per policy with overdue records not on hold, placed at
    the policy id; none for a policy whose overdue records are all held or gone."""
    found = policies(
        {"id": "orders-planned", "action": "delete", "integration": "webshop"},
        {"id": "orders-delete", "action": "delete", "mode": "enforce"},
    )
    plans = job_for(crm_url, store, found)(never)

    findings = retention_findings(plans, shipped_policies())

    assert 1 == len(findings)
    finding = findings[0]
    assert ("retention-overdue", "webshop", None, "orders-planned") == (
        finding.rule,
        finding.integration,
        finding.facet,
        finding.place,
    )
    assert (Severity.CRITICAL, "Art. 5(1)(e)") == (finding.severity, finding.article)
    assert finding.message.startswith(
        "5 records are past the retention period of P1Y in crm:orders"
    )
    assert {"overdue": 6, "held": 1, "eligible": 5, "keep_for": "P1Y"}.items() <= (
        finding.evidence.items()
    )


def daemon_with_policy(crm_url: str, tmp_path: Path, **policy: object) -> tuple[Daemon, StateStore]:
    """A daemon whose configuration names one retention policy over the CRM's orders."""
    entry = {"id": "orders", "source": "crm", "table": "orders", "key": "order_id",
             "timestamp": "placed_at", "keep_for": "P1Y", "legal_hold": {"column": "hold"},
             **policy}  # fmt: skip
    (tmp_path / "retention.yaml").write_text(yaml.safe_dump({"policies": [entry]}))
    write_config(
        tmp_path,
        [],
        database={"url": "sqlite:///state.db"},
        data_sources={"crm": {"url": crm_url, "read_only": False}},
        retention="retention.yaml",
        jobs={"retention": {"interval": "P1D"}},
    )
    generation = load_generation(tmp_path / "auditor.yaml")
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    daemon = Daemon(tmp_path / "auditor.yaml", generation, store, SingleReplica(), Notifier({}))
    return daemon, store


def test_the_daemon_runs_the_retention_work_and_shows_it_in_its_snapshot(
    crm_url: str, tmp_path: Path
) -> None:
    """The daemon's `retention` work loads the policies its configuration names, enforces, and
    its metrics snapshot carries the counts; the batches are in the store's evidence chain."""
    daemon, store = daemon_with_policy(
        crm_url, tmp_path, action="delete", mode="enforce", max_share=0.5
    )
    try:
        assert NEEDED["retention"](daemon.generation)
        assert "retention" in daemon.generation.config.jobs
        WORK["retention"](daemon)(JobContext("retention", lambda: None))
        snapshot = daemon.snapshot()
        kinds = [record.kind for record in store.evidence_records()]
        overdue = store.list_findings(rule="retention-overdue", status="all")
    finally:
        store.close()

    assert {"orders": 0} == dict(snapshot.retention_overdue)
    assert {("orders", "delete"): 5} == dict(snapshot.retention_processed)
    assert {"orders"} == set(snapshot.retention_last_enforcement)
    assert ["retention-batch", "retention-run"] == [k for k in kinds if k.startswith("retention")]
    assert [] == [f for f in overdue if f.status == "open"]


def test_a_reported_backlog_opens_a_finding_that_audits_leave_alone(
    crm_url: str, tmp_path: Path
) -> None:
    """A report-only policy with overdue records opens `retention-overdue` on the policy; the
    audit job's runs neither resolve nor touch it."""
    daemon, store = daemon_with_policy(crm_url, tmp_path)
    try:
        WORK["retention"](daemon)(JobContext("retention", lambda: None))
        daemon.audit(JobContext("audit", lambda: None))
        found = store.list_findings(rule="retention-overdue")
    finally:
        store.close()

    assert [("orders", "open")] == [(f.place, f.status) for f in found]
    assert (5, "report") == (found[0].evidence["eligible"], found[0].evidence["action"])
