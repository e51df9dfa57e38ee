"""The daemon as a real process: scheduled audits, metrics, SIGHUP, SIGTERM, SIGKILL, two replicas.

Also the job runner and schedule translation on their own, and the systemd unit's CI checks.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from auditor.config import JobSchedule
from auditor.core.durations import parse_duration
from auditor.core.jobs import JobCancelled, JobContext
from auditor.core.results import AuditResult
from auditor.service.daemon import STOP_WAIT_SECONDS, Daemon
from auditor.service.generation import load_generation
from auditor.service.jobs import Heartbeat, JobRunner, crontab_weekdays, trigger_for
from auditor.service.leader import SingleReplica
from auditor.service.sdnotify import Notifier
from auditor.store import SnapshotCounts, StateStore
from tests.conftest import DnsServerFactory
from tests.dnsserver import LoopbackDnsServer
from tests.helpers import free_port
from tests.mmdb import build_country_db

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "gdpr-auditor.service"

ZONE = """
$ORIGIN .
$TTL 60
api.shop.example.   A   198.51.100.10
api.eu.example.     A   192.0.2.10
"""

UNLAWFUL = {  # hosted in the US, not DPF-certified, no SCCs: transfer-unsafeguarded
    "id": "shop",
    "name": "Shop",
    "category": "webshop",
    "role": "processor",
    "data_categories": ["contact"],
    "endpoints": ["api.shop.example"],
    "hosting": ["US"],
    "backups": {"regions": ["IE"], "retention": "P30D"},
    "retention": "P1Y",
    "contract": {"dpa_signed": "2024-01-01"},
}
FIXED = {**UNLAWFUL, "endpoints": ["api.eu.example"], "hosting": ["DE"]}


class Workdir:
    """A configuration, an inventory and a GeoIP database in a directory, as an operator keeps them."""

    def __init__(self, path: Path, nameserver: str, database: str | None = None) -> None:
        self.path = path
        self.nameserver = nameserver
        self.database = database or "sqlite:///state.db"
        self.config = path / "auditor.yaml"
        build_country_db(path / "country.mmdb", {"192.0.2.0/24": "DE", "198.51.100.0/24": "US"})
        self.write_inventory([UNLAWFUL])
        self.write_config()

    def write_inventory(self, integrations: list[dict[str, Any]]) -> None:
        (self.path / "inventory.yaml").write_text(yaml.safe_dump({"integrations": integrations}))

    def write_config(self, port: int | None = None, interval: str = "PT2S") -> None:
        config = {
            "inventory": ["inventory.yaml"],
            "dns": {"nameservers": [self.nameserver], "timeout": 5, "concurrency": 4},
            "geoip": {"country_db": "country.mmdb"},
            "database": {"url": self.database},
            "metrics": {"listen": f"127.0.0.1:{port or free_port()}"},
            "jobs": {"audit": {"interval": interval}},  # jitter: a tenth of the interval
        }
        self.config.write_text(yaml.safe_dump(config))

    def store(self) -> StateStore:
        return StateStore.open(f"sqlite:///{self.path / 'state.db'}")


class DaemonProcess:
    """`gdpr-auditor run` as a child process, its JSON log lines collected as they come."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.other_lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "auditor", "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        with self.process.stderr:
            for line in self.process.stderr:
                with self._changed:
                    try:
                        self.events.append(json.loads(line))
                    except json.JSONDecodeError:
                        self.other_lines.append(line.rstrip())
                    self._changed.notify_all()

    def wait_for(
        self, event: str, timeout: float = 10.0, nth: int = 1, **fields: object
    ) -> dict[str, Any]:
        """Wait for the nth log event of that name (with those fields); fail with the log if not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [
                    e
                    for e in self.events
                    if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
                ]
                if len(found) >= nth:
                    return found[nth - 1]
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    pytest.fail(f"no {event} {fields or ''} within {timeout} s\n{self.log_text()}")
                self._changed.wait(min(left, 0.2))

    def count(self, event: str) -> int:
        with self._changed:
            return sum(1 for e in self.events if e.get("event") == event)

    def log_text(self) -> str:
        with self._changed:
            lines = [json.dumps(e) for e in self.events[-40:]] + self.other_lines[-20:]
        return "\n".join(lines)

    @property
    def port(self) -> int:
        return int(self.wait_for("metrics_listening")["port"])

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics, by name and labels."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def value(self, name: str, **labels: str) -> float | None:
        """The sum of the samples of `name` whose labels include `labels`; None when there is none."""
        matching = [
            value
            for (sample, sample_labels), value in self.scrape().items()
            if sample == name and set(labels.items()) <= sample_labels
        ]
        return sum(matching) if matching else None

    def open_findings(self, rule: str, integration: str) -> float:
        """The open findings of `rule` for `integration` in /metrics; 0 without a sample."""
        return self.value("gdpr_auditor_findings_open", rule=rule, integration=integration) or 0.0

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(f"not {what} within {timeout} s\n{self.log_text()}")
            if self.process.poll() is not None:
                pytest.fail(f"the daemon exited ({self.process.returncode})\n{self.log_text()}")
            time.sleep(0.1)

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def exit_status(self, timeout: float) -> int:
        """Wait for the process to exit; fail if it does not within `timeout` seconds."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running after {timeout} s\n{self.log_text()}")
        self._reader.join(5)
        return status

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(5)


def assert_refused_at_start(daemon: DaemonProcess, status: int, named: str) -> None:
    """The daemon exits with `status` without ever being ready, its log naming `named`."""
    assert status == daemon.exit_status(timeout=10)
    assert named in daemon.log_text()
    assert 0 == daemon.count("daemon_ready")


@pytest.fixture(name="spawn")
def _spawn() -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons; every one still running at the end is killed."""
    started: list[DaemonProcess] = []

    def spawn(config: Path, env: dict[str, str] | None = None) -> DaemonProcess:
        daemon = DaemonProcess(config, env)
        started.append(daemon)
        return daemon

    yield spawn
    for daemon in started:
        daemon.kill()


@pytest.fixture(name="dns")
def _dns(dns_server_factory: DnsServerFactory) -> LoopbackDnsServer:
    return dns_server_factory(ZONE)


@pytest.fixture(name="workdir")
def _workdir(tmp_path: Path, dns: LoopbackDnsServer) -> Workdir:
    return Workdir(tmp_path, dns.address)


def unsafeguarded(daemon: DaemonProcess) -> float:
    return daemon.open_findings("transfer-unsafeguarded", "shop")


# -- the daemon as a process ------------------------------------------------------------------


@pytest.mark.slow
def test_a_finding_appears_then_resolves_when_the_inventory_is_fixed_and_reloaded(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """An unlawful US hosting shows in findings_open; after the fix and SIGHUP it drops to 0."""
    daemon = spawn(workdir.config)

    daemon.wait_until(lambda: unsafeguarded(daemon) > 0, "a transfer-unsafeguarded finding")
    assert 1 == daemon.value("gdpr_auditor_leader")
    assert 1 == daemon.value("gdpr_auditor_config_last_reload_successful")
    assert (daemon.value("gdpr_auditor_job_runs_total", job_id="audit") or 0) >= 1
    assert 2 == daemon.value("gdpr_auditor_job_interval_seconds", job_id="audit")
    finished = daemon.wait_for("audit_finished")
    assert isinstance(finished["run_id"], int) and finished["findings"] >= 1

    workdir.write_inventory([FIXED])
    daemon.send(signal.SIGHUP)
    daemon.wait_for("reload_succeeded")
    daemon.wait_until(lambda: unsafeguarded(daemon) == 0, "the finding resolved")

    assert 1 == daemon.value("gdpr_auditor_config_last_reload_successful")
    resolved = workdir.store().list_findings(status="resolved", integration="shop")
    assert {"transfer-unsafeguarded"} <= {finding.rule for finding in resolved}
    daemon.send(signal.SIGTERM)
    assert 0 == daemon.exit_status(timeout=10)


@pytest.mark.slow
def test_a_broken_config_on_reload_is_rejected_and_the_daemon_keeps_serving(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """SIGHUP with invalid YAML: reload metric 0, audits go on with the last good config."""
    daemon = spawn(workdir.config)
    daemon.wait_for("audit_finished")
    good = workdir.config.read_text()

    workdir.config.write_text(good + "unknown_key: true\n")
    daemon.send(signal.SIGHUP)
    rejected = daemon.wait_for("reload_rejected")

    assert any("unknown_key" in issue for issue in rejected["issues"])
    assert 0 == daemon.value("gdpr_auditor_config_last_reload_successful")
    runs = daemon.count("audit_finished")
    daemon.wait_for("audit_finished", nth=runs + 1)  # still auditing, on the last good config
    assert unsafeguarded(daemon) > 0
    assert 0 == daemon.value("gdpr_auditor_job_failures_total", job_id="audit")

    workdir.config.write_text(good)
    daemon.send(signal.SIGHUP)
    daemon.wait_for("reload_succeeded")
    assert 1 == daemon.value("gdpr_auditor_config_last_reload_successful")


@pytest.mark.slow
def test_an_alias_bomb_on_reload_is_rejected_and_the_first_sigterm_still_stops_the_daemon(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """A 500-byte "billion laughs" inventory on SIGHUP once took minutes and gigabytes and left
    SIGTERM unanswered: now the reload is rejected, metrics keep being served, and one SIGTERM
    stops the daemon within its usual bound."""
    daemon = spawn(workdir.config)
    daemon.wait_for("audit_finished")
    levels = ["l0: &l0 [" + ",".join(["lol"] * 9) + "]"]
    levels += [f"l{n}: &l{n} [" + ",".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 9)]
    bomb = "\n".join(levels) + "\nintegrations: [*l8]\n"
    assert len(bomb) < 500
    (workdir.path / "inventory.yaml").write_text(bomb)

    daemon.send(signal.SIGHUP)
    rejected = daemon.wait_for("reload_rejected", timeout=30)

    assert any("aliases expand this document" in issue for issue in rejected["issues"])
    assert 0 == daemon.value("gdpr_auditor_config_last_reload_successful")
    assert unsafeguarded(daemon) > 0  # the last good inventory's findings are still served
    peak_kib = _peak_memory_kib(daemon.process.pid)
    assert peak_kib is None or peak_kib < 1024 * 1024  # a guard against the expansion: < 1 GiB
    daemon.send(signal.SIGTERM)
    assert 0 == daemon.exit_status(timeout=STOP_WAIT_SECONDS + 10)


def _peak_memory_kib(pid: int) -> int | None:
    """The process's peak resident memory (VmHWM) in KiB, where /proc tells it."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


@pytest.mark.slow
def test_sigkill_in_the_middle_of_a_run_then_restart_loses_nothing(
    workdir: Workdir, dns: LoopbackDnsServer, spawn: Callable[..., DaemonProcess]
) -> None:
    """A run killed mid-way is marked interrupted at restart; the findings and their history stay."""
    first = spawn(workdir.config)
    first.wait_for("audit_finished")
    before = {f.key: f for f in workdir.store().list_findings(integration="shop")}
    assert before

    dns.delay = 3.0  # from the next run on, every DNS answer comes late
    while True:
        started = first.wait_for("audit_started", nth=first.count("audit_started") + 1)
        time.sleep(0.3)
        if not any(e.get("run_id") == started["run_id"] for e in finished_events(first)):
            break  # it began before the delay took effect: wait for the next one
    first.process.kill()
    first.exit_status(timeout=5)
    dns.delay = 0.0

    second = spawn(workdir.config)
    second.wait_for("runs_interrupted", runs=1)
    second.wait_for("audit_finished")
    second.send(signal.SIGTERM)
    assert 0 == second.exit_status(timeout=10)

    store = workdir.store()
    killed = [r for r in _runs(workdir) if r[0] == started["run_id"]]
    assert [(started["run_id"], "interrupted")] == killed
    assert 0 == store.status(datetime.now(UTC).date()).runs["running"]
    after = {f.key: f for f in store.list_findings(integration="shop")}
    assert before.keys() == after.keys()
    for key, finding in before.items():
        assert finding.id == after[key].id
        assert finding.first_seen == after[key].first_seen
        assert "open" == after[key].state
    with sqlite3.connect(workdir.path / "state.db") as connection:
        assert [("ok",)] == connection.execute("PRAGMA integrity_check").fetchall()


def finished_events(daemon: DaemonProcess) -> list[dict[str, Any]]:
    return [e for e in list(daemon.events) if e.get("event") == "audit_finished"]


def _runs(workdir: Workdir) -> list[tuple[int, str]]:
    with sqlite3.connect(workdir.path / "state.db") as connection:
        return connection.execute("SELECT id, outcome FROM audit_runs ORDER BY id").fetchall()


@pytest.mark.slow
def test_sigterm_during_a_run_stops_within_bounded_time_and_records_the_run(
    workdir: Workdir, dns: LoopbackDnsServer, spawn: Callable[..., DaemonProcess]
) -> None:
    """SIGTERM while an audit waits on DNS: the run stops at its next check, exit 0, run interrupted."""
    dns.delay = 2.0
    daemon = spawn(workdir.config)
    started = daemon.wait_for("audit_started")

    began = time.monotonic()
    daemon.send(signal.SIGTERM)
    status = daemon.exit_status(timeout=25)

    assert 0 == status
    assert time.monotonic() - began < 10
    daemon.wait_for("daemon_stopped", clean=True)
    assert [(started["run_id"], "interrupted")] == _runs(workdir)
    with sqlite3.connect(workdir.path / "state.db") as connection:
        (error,) = connection.execute("SELECT error FROM audit_runs").fetchone()
    assert "stopped before the run finished: the daemon is stopping" == error


@pytest.mark.slow
def test_a_second_sigterm_exits_at_once(
    workdir: Workdir, dns: LoopbackDnsServer, spawn: Callable[..., DaemonProcess]
) -> None:
    """While the first SIGTERM waits for a run, a second one ends the process immediately."""
    dns.delay = 4.0
    daemon = spawn(workdir.config)
    daemon.wait_for("audit_started")
    daemon.send(signal.SIGTERM)
    daemon.wait_for("waiting_for_jobs")

    began = time.monotonic()
    daemon.send(signal.SIGTERM)
    status = daemon.exit_status(timeout=5)

    assert 128 + signal.SIGTERM == status
    assert time.monotonic() - began < 2
    assert "second stop signal" in daemon.log_text()


@pytest.mark.slow
def test_sd_notify_ready_watchdog_reloading_and_stopping(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """Through NOTIFY_SOCKET: READY=1 once up, WATCHDOG=1 pings, RELOADING=1 then READY=1, STOPPING=1."""
    with tempfile.TemporaryDirectory() as directory:  # tmp_path may be too long for AF_UNIX
        path = str(Path(directory) / "notify.sock")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
            listener.bind(path)
            listener.settimeout(10)
            received: list[str] = []

            def until(line: str) -> int:
                """Receive until `line` arrives; return its position among everything received."""
                start = len(received)
                while line not in received[start:]:
                    received.extend(listener.recv(4096).decode().split("\n"))
                return received.index(line, start)

            daemon = spawn(workdir.config, {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
            ready = until("READY=1")
            watchdog = until("WATCHDOG=1")
            daemon.send(signal.SIGHUP)
            reloading = until("RELOADING=1")
            ready_again = until("READY=1")
            daemon.send(signal.SIGTERM)
            stopping = until("STOPPING=1")
            assert 0 == daemon.exit_status(timeout=10)

    assert ready < watchdog < reloading < ready_again < stopping
    assert any(line.startswith("STATUS=active") for line in received)


def _invalid_inventory(workdir: Workdir) -> None:
    workdir.write_inventory([{**UNLAWFUL, "hosting": ["XX"]}])


def _newer_schema(workdir: Workdir) -> None:
    workdir.store().close()
    with sqlite3.connect(workdir.path / "state.db") as connection:
        connection.execute("UPDATE schema_meta SET version = version + 1")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spoil", "named"),
    [
        pytest.param(
            _invalid_inventory,
            "inventory.yaml",
            id="an inventory error names the file and key",
        ),
        pytest.param(
            _newer_schema,
            "schema version",
            id="a newer schema version is a clear refusal naming the versions, not a crash",
        ),
    ],
)
def test_invalid_input_at_start_exits_2_before_starting(
    workdir: Workdir,
    spawn: Callable[..., DaemonProcess],
    spoil: Callable[[Workdir], None],
    named: str,
) -> None:
    """The daemon never starts (exit 2) and says why."""
    spoil(workdir)

    daemon = spawn(workdir.config)

    assert_refused_at_start(daemon, 2, named)


@pytest.mark.slow
def test_a_metrics_address_in_use_exits_3(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """When the metrics port is taken the daemon cannot start: exit 3 with one line naming the
    address and what to do, never "the audit could not run"."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workdir.write_config(port=port)

        daemon = spawn(workdir.config)

        assert 3 == daemon.exit_status(timeout=10)
    expected = (
        f"gdpr-auditor: cannot start: cannot serve metrics on 127.0.0.1:{port}: address already "
        "in use (another gdpr-auditor running? set metrics.listen)"
    )
    assert [expected] == daemon.other_lines
    assert 0 == daemon.count("daemon_ready")


@pytest.mark.slow
@pytest.mark.postgres
def test_two_replicas_one_active_and_the_standby_takes_over(
    tmp_path: Path,
    dns: LoopbackDnsServer,
    postgres_schema_url: str,
    spawn: Callable[..., DaemonProcess],
) -> None:
    """Two daemons on one PostgreSQL schema: one leads; SIGKILL it, the other leads and audits."""
    replicas = []
    for name in ("a", "b"):
        directory = tmp_path / name
        directory.mkdir()
        replicas.append(spawn(Workdir(directory, dns.address, postgres_schema_url).config))
    for replica in replicas:
        replica.wait_for("daemon_ready", timeout=30)  # two daemons start at once on a busy machine

    def leaders() -> list[float | None]:
        return [replica.value("gdpr_auditor_leader") for replica in replicas]

    replicas[0].wait_until(lambda: sorted(leaders()) == [0, 1], "one leader, one standby")
    active, standby = replicas if leaders()[0] == 1 else replicas[::-1]
    active.wait_for("audit_finished")
    assert 0 == standby.count("audit_started")
    assert 0 == standby.value("gdpr_auditor_job_runs_total", job_id="audit")

    active.process.kill()
    killed_at = time.monotonic()
    standby.wait_until(lambda: standby.value("gdpr_auditor_leader") == 1, "leader", timeout=10)
    took_over = time.monotonic() - killed_at
    standby.wait_for("audit_finished")

    assert took_over < 5
    assert unsafeguarded(standby) > 0
    standby.send(signal.SIGTERM)
    assert 0 == standby.exit_status(timeout=10)


# -- the daemon's parts, in-process ----------------------------------------------------------


class StaleHeartbeat(Heartbeat):
    """A scheduler that stopped beating two minutes ago."""

    def age(self) -> float:
        return 120.0


def in_process_daemon(workdir: Workdir) -> Daemon:
    store = StateStore.open(f"sqlite:///{workdir.path / 'state.db'}")
    generation = load_generation(workdir.config)
    return Daemon(workdir.config, generation, store, SingleReplica(), Notifier({}))


def test_a_restarted_daemon_serves_the_stored_results_before_auditing(workdir: Workdir) -> None:
    """The snapshot comes from the store: a new daemon shows the last run's findings at once."""
    first = in_process_daemon(workdir)
    first.audit(JobContext("audit", lambda: None))
    first.store.close()

    second = in_process_daemon(workdir)
    assert {} == dict(second.snapshot().open_findings)  # nothing read yet
    second.refresh_snapshot()
    snapshot = second.snapshot()
    second.store.close()

    assert snapshot.open_findings[("transfer-unsafeguarded", "critical", "shop")] >= 1
    assert snapshot.last_audit is not None
    assert {"webshop": 1} == {k: v for k, v in snapshot.integrations_by_category.items() if v}
    assert snapshot.leader and snapshot.config_reload_ok


def live_results() -> int:
    """AuditResult objects held now, cyclic garbage included (the collector is paused in a job)."""
    return sum(1 for held in gc.get_objects() if isinstance(held, AuditResult))


class WatchedStore(StateStore):
    """The state store, counting the audit results alive whenever the metrics read it."""

    results_at_read: list[int]

    def snapshot_counts(self, on: date) -> SnapshotCounts:
        self.results_at_read.append(live_results())
        return super().snapshot_counts(on)


def test_an_audits_result_is_freed_before_the_metrics_reread_the_store(workdir: Workdir) -> None:
    """The daemon keeps only the metrics' summary of an audit: its result is gone before the
    store is read for the metrics, and none is left once the job is over, so that the next
    audit never runs beside the last one's objects."""
    store = WatchedStore.open(f"sqlite:///{workdir.path / 'state.db'}")
    store.results_at_read = []
    daemon = Daemon(
        workdir.config, load_generation(workdir.config), store, SingleReplica(), Notifier({})
    )
    gc.collect()
    before = live_results()
    try:
        for _ in range(2):
            daemon.audit(JobContext("audit", lambda: None))
        after = live_results()
        open_findings = dict(daemon.snapshot().open_findings)
    finally:
        store.close()

    assert [before, before] == store.results_at_read
    assert before == after
    assert open_findings[("transfer-unsafeguarded", "critical", "shop")] >= 1


def test_after_an_audit_the_locator_holds_no_cached_locations(workdir: Workdir) -> None:
    """The locations an audit looked up go with its result: on a large inventory a cache kept
    across audits would only hold the last of each audit's addresses, of no use to the next."""
    daemon = in_process_daemon(workdir)
    try:
        daemon.audit(JobContext("audit", lambda: None))
        cached = daemon.generation.locator._cached.cache_info()  # type: ignore[attr-defined]
        located = daemon.snapshot().places
    finally:
        daemon.store.close()

    assert located[("unsafeguarded", "US")] >= 1  # the endpoint's address was located
    assert 0 == cached.currsize


def test_a_refresh_reading_unchanged_results_keeps_the_previous_snapshots_mappings(
    workdir: Workdir,
) -> None:
    """Equal results read again are the previous snapshot's very mappings: the metrics' rendering
    of them is kept without a comparison, and no second copy of their labels is held."""
    daemon = in_process_daemon(workdir)
    try:
        daemon.audit(JobContext("audit", lambda: None))
        first = daemon.snapshot()
        daemon.refresh_snapshot()
        daemon.audit(JobContext("audit", lambda: None))
        second = daemon.snapshot()
    finally:
        daemon.store.close()

    assert second.open_findings is first.open_findings
    assert second.integrations_by_category is first.integrations_by_category
    assert second.last_audit is not None and first.last_audit is not None
    assert second.last_audit > first.last_audit


def test_an_audit_cancelled_by_lost_leadership_is_an_interrupted_run(workdir: Workdir) -> None:
    """Cancelled at a check (standby now), the run is recorded as interrupted with why, not failed."""
    daemon = in_process_daemon(workdir)
    try:
        with pytest.raises(JobCancelled):
            daemon.audit(JobContext("audit", lambda: "this replica is on standby"))
        latest = daemon.store.latest_run(successful=False)
        runs = daemon.store.status(datetime.now(UTC).date()).runs
    finally:
        daemon.store.close()

    assert latest is not None
    assert ("interrupted", "stopped before the run finished: this replica is on standby") == (
        latest.outcome,
        latest.error,
    )
    assert latest.finished_at is not None
    assert (1, 0, 0) == (runs["interrupted"], runs["error"], runs["running"])


def test_healthz_fails_when_the_scheduler_heartbeat_is_stale(workdir: Workdir) -> None:
    """Healthy while the heartbeat is fresh; a stale one names its age."""
    daemon = in_process_daemon(workdir)
    try:
        assert (True, "ok") == daemon.health()
        daemon.heartbeat = StaleHeartbeat()
        healthy, reason = daemon.health()
    finally:
        daemon.store.close()

    assert not healthy
    assert "heartbeat is 120 s old" in reason


# -- the job runner and schedules, in-process -------------------------------------------------


def clock() -> datetime:
    return datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def test_a_failing_job_is_counted_and_the_next_run_goes_ahead() -> None:
    """A job that raises is logged and counted as a failure; the runner carries on."""
    outcomes = iter([RuntimeError("boom"), None])

    def work(_context: JobContext) -> None:
        problem = next(outcomes)
        if problem is not None:
            raise problem

    runner = JobRunner(clock, lambda: None)
    runner.add("audit", work, 3600)

    runner.run("audit")
    runner.run("audit")

    (health,) = runner.health()
    assert (2, 1) == (health.runs, health.failures)
    assert clock() == health.last_success == health.last_run
    assert 3600 == health.interval_seconds


def test_a_standby_runs_nothing() -> None:
    """While `blocked` gives a reason, runs are skipped and not counted."""
    calls: list[str] = []
    runner = JobRunner(clock, lambda: "this replica is on standby")
    runner.add("audit", lambda _context: calls.append("ran"), 60)

    runner.run("audit")

    assert [] == calls
    assert 0 == runner.health()[0].runs


def test_stopping_cancels_a_running_job_at_its_next_check() -> None:
    """stop_accepting makes the job's next check raise; wait_idle returns once it has ended."""
    entered, release = threading.Event(), threading.Event()

    def work(context: JobContext) -> None:
        entered.set()
        release.wait(5)
        context.check()
        raise AssertionError("not cancelled")

    runner = JobRunner(clock, lambda: None)
    runner.add("audit", work, 60)
    thread = threading.Thread(target=runner.run, args=("audit",))
    thread.start()
    entered.wait(5)

    runner.stop_accepting()
    assert not runner.wait_idle(0.05)  # still inside the job
    release.set()

    assert runner.wait_idle(5)
    thread.join(5)
    (health,) = runner.health()
    assert (1, 0, None) == (health.runs, health.failures, health.last_success)
    runner.run("audit")  # no new run starts once stopping
    assert 1 == runner.health()[0].runs


def test_reload_keeps_a_jobs_counters_with_its_new_interval() -> None:
    """Registering a job again (a reload) keeps its record and takes the new interval."""
    runner = JobRunner(clock, lambda: None)
    runner.add("audit", lambda _context: None, 60)
    runner.run("audit")

    runner.add("audit", lambda _context: None, 120)

    (health,) = runner.health()
    assert (1, 120) == (health.runs, health.interval_seconds)


@pytest.mark.parametrize(
    ("crontab", "names"),
    [
        ("*", "*"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0-6/2", "sun,tue,thu,sat"),
        ("sat,sun", "sun,sat"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
    ],
)
def test_crontab_weekdays_mean_what_crontab_means(crontab: str, names: str) -> None:
    """0 and 7 are Sunday as in crontab, not Monday as APScheduler 3.x would read them."""
    assert names == crontab_weekdays(crontab)


def test_cron_schedule_fires_on_sunday() -> None:
    """`0 3 * * 0` fires on Sunday 03:00 UTC."""
    trigger = trigger_for(JobSchedule(None, "0 3 * * 0", 0.0))

    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # a Monday

    assert datetime(2026, 11, 29, 3, 0, tzinfo=UTC) == fire
    assert 6 == fire.weekday()


def test_interval_schedule_with_jitter() -> None:
    """An interval schedule becomes an interval trigger in UTC with the configured jitter."""
    trigger = trigger_for(JobSchedule(parse_duration("PT1H"), None, 30.0))

    assert 3600 == trigger.interval_length
    assert 30.0 == trigger.jitter


# -- the systemd unit -------------------------------------------------------------------------


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("GDPR_AUDITOR_REQUIRE_SERVICES") == "1":
            pytest.fail("GDPR_AUDITOR_REQUIRE_SERVICES=1 but systemd-analyze is not installed")
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    return found


def test_unit_verifies_with_execstart_pointing_at_the_installed_script(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit once ExecStart names an existing gdpr-auditor."""
    analyze = systemd_analyze()
    script = Path(sys.executable).parent / "gdpr-auditor"
    if not script.exists():
        pytest.skip(f"the console script is not installed next to {sys.executable}")
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/gdpr-auditor run " in text
    unit = tmp_path / "gdpr-auditor.service"
    unit.write_text(text.replace("ExecStart=/usr/local/bin/gdpr-auditor ", f"ExecStart={script} "))

    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )

    assert 0 == result.returncode, result.stderr
    assert "" == result.stderr.strip()


def test_unit_exposure_is_at_most_1_5() -> None:
    """`systemd-analyze security --offline=true` rates the unit 1.5 or better."""
    analyze = systemd_analyze()

    result = subprocess.run(
        [analyze, "security", "--offline=true", "--threshold=15", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
        cwd=UNIT.parent,
    )

    assert 0 == result.returncode, result.stdout[-2000:] + result.stderr
    last = [line for line in result.stdout.splitlines() if "Overall exposure level" in line]
    assert last, result.stdout[-2000:]
    score = float(last[0].split(":")[1].split()[0])
    assert score <= 1.5


def test_unit_has_the_settings_ops_rely_on() -> None:
    """Type=notify with a watchdog, reload by SIGHUP, a dynamic user and its state directory."""
    lines = {line.strip() for line in UNIT.read_text().splitlines()}

    for setting in (
        "Type=notify",
        "NotifyAccess=main",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=60s",
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=gdpr-auditor",
        "ConfigurationDirectory=gdpr-auditor",
        "ProtectSystem=strict",
    ):
        assert setting in lines
