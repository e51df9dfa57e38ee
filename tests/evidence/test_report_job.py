"""The daemon's `report` job: the last period's evidence report written to files, and its metric."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest

from auditor.config import load_config
from auditor.core.durations import parse_duration
from auditor.core.errors import InvalidInputError
from auditor.core.jobs import JobCancelled
from auditor.evidence.config import ReportSettings
from auditor.evidence.scheduled import report_days
from auditor.service.daemon import NEEDED, Daemon
from auditor.service.generation import load_generation
from auditor.service.leader import SingleReplica
from auditor.service.metrics import build_registry
from auditor.service.sdnotify import Notifier
from auditor.store import StateStore
from tests.cli.test_evidence_cli import KEY, ZONE, Scenario, build_scenario, run
from tests.conftest import DnsServerFactory
from tests.jobs import run_job_once

WRITTEN_AT = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(name="scenario")
def _scenario(tmp_path: Path, dns_server_factory: DnsServerFactory) -> Scenario:
    """The audited quarter of tests/test_report.py on SQLite."""
    server = dns_server_factory(ZONE)
    return build_scenario(tmp_path, server.address, f"sqlite:///{tmp_path / 'state.db'}")


def configure(scenario: Scenario, **reports: object) -> None:
    """Add the report job, and a `reports:` section when given, to the scenario's configuration."""
    document = yaml.safe_load(scenario.config_path.read_text())
    document["jobs"] = {"report": {"interval": "P1D"}}
    if reports:
        document["reports"] = reports
    scenario.config_path.write_text(yaml.safe_dump(document))


def metric(exposition: str) -> float:
    """The value of the report metric in a Prometheus text exposition."""
    (line,) = [
        line
        for line in exposition.splitlines()
        if line.startswith("gdpr_auditor_report_last_written_timestamp_seconds ")
    ]
    return float(line.split()[1])


def run_report_job(
    scenario: Scenario, check: Callable[[], None] = lambda: None
) -> tuple[Daemon, StateStore]:
    """Build a daemon over the scenario at WRITTEN_AT and run its `report` work once."""
    return run_job_once(
        "report",
        scenario.config_path,
        lambda _: StateStore.open(scenario.state_url, evidence_key=KEY.encode()),
        WRITTEN_AT,
        check,
    )


def test_the_job_writes_the_last_month_in_each_format_as_the_cli_would(
    scenario: Scenario, tmp_path: Path
) -> None:
    """With the defaults (P1M, html and json, reports/ beside the configuration) the job writes
    the report of March, the last whole month before 1 April, byte for byte as `report` does,
    leaves no temporary file, and its metric carries the time it wrote them."""
    configure(scenario)
    daemon, store = run_report_job(scenario)
    try:
        snapshot = daemon.snapshot()
        exposition = generate_latest(build_registry(daemon.snapshot)).decode()
    finally:
        store.close()
    cli = run(
        "report", "--config", str(scenario.config_path), "--from", "2026-03-01",
        "--to", "2026-03-31", "--format", "json", env=scenario.env(),
    )  # fmt: skip

    directory = tmp_path / "reports"
    assert ["report-2026-03-01-2026-03-31.html", "report-2026-03-01-2026-03-31.json"] == sorted(
        p.name for p in directory.iterdir()
    )
    assert cli.stdout_bytes == (directory / "report-2026-03-01-2026-03-31.json").read_bytes()
    assert WRITTEN_AT == snapshot.report_last_written
    assert WRITTEN_AT.timestamp() == metric(exposition)


def test_a_configured_directory_period_and_format_are_used_and_rewritten_whole(
    scenario: Scenario, tmp_path: Path
) -> None:
    """A relative directory is taken from the configuration file's folder; a quarter period
    and csv only give one file, which a second run replaces with the same bytes."""
    configure(scenario, directory="out/evidence", formats=["csv"], period="P3M")

    for _ in range(2):
        _, store = run_report_job(scenario)
        store.close()

    (written,) = (tmp_path / "out" / "evidence").iterdir()
    assert "report-2026-01-01-2026-03-31.csv" == written.name
    assert 7 == len(written.read_text().splitlines())  # the header and the quarter's 6 findings


def test_a_stopping_daemon_writes_nothing(scenario: Scenario, tmp_path: Path) -> None:
    """Cancelled after reading the period, the job writes no file and no time."""

    def stop() -> None:
        raise JobCancelled("stopping")

    configure(scenario)
    with pytest.raises(JobCancelled):
        run_report_job(scenario, stop)

    assert not (tmp_path / "reports").exists()


def test_the_metric_is_zero_before_the_first_report(scenario: Scenario) -> None:
    """Before the job has written anything since start, the metric is 0."""
    configure(scenario)
    generation = load_generation(scenario.config_path)
    store = StateStore.open(scenario.state_url)
    try:
        daemon = Daemon(scenario.config_path, generation, store, SingleReplica(), Notifier({}))
        exposition = generate_latest(build_registry(daemon.snapshot)).decode()
    finally:
        store.close()

    assert 0.0 == metric(exposition)


def test_reports_settings_are_validated_and_the_job_needs_a_database(tmp_path: Path) -> None:
    """An unknown format or a period that is not a duration is a configuration error; without a
    database the report job is not scheduled."""
    (tmp_path / "inventory.yaml").write_text("integrations: []\n")
    path = tmp_path / "auditor.yaml"
    for bad in ({"formats": ["pdf"]}, {"period": "a month"}):
        path.write_text(yaml.safe_dump({"inventory": ["inventory.yaml"], "reports": bad}))
        with pytest.raises(InvalidInputError):
            load_config(path)
    path.write_text(
        yaml.safe_dump({"inventory": ["inventory.yaml"], "jobs": {"report": {"interval": "P1D"}}})
    )

    assert not NEEDED["report"](load_generation(path))
    assert tmp_path / "reports" == load_config(path).reports.directory


@pytest.mark.parametrize(
    ("period", "today", "expected"),
    [
        ("P1M", date(2026, 4, 1), (date(2026, 3, 1), date(2026, 3, 31))),
        ("P1M", date(2026, 3, 31), (date(2026, 2, 28), date(2026, 3, 30))),
        ("P7D", date(2026, 1, 8), (date(2026, 1, 1), date(2026, 1, 7))),
        ("P1D", date(2026, 1, 1), (date(2025, 12, 31), date(2025, 12, 31))),
    ],
)
def test_a_report_covers_the_last_period_of_whole_days(
    period: str, today: date, expected: tuple[date, date]
) -> None:
    """The period ends yesterday and spans `period` of whole UTC days."""
    settings = ReportSettings(Path("reports"), period=parse_duration(period))

    assert expected == report_days(settings, today)
