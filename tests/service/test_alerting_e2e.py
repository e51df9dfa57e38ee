"""Alerts and dashboards end to end: a real daemon, Prometheus, Alertmanager and a webhook receiver.

Everything listens on 127.0.0.1. The daemon audits an inventory holding an unlawful transfer;
Prometheus scrapes it every second and evaluates a copy of the alert rules with their `for:`
removed; Alertmanager delivers GdprAuditorCriticalFinding to the receiver, then its resolution
once the inventory is fixed and the daemon reloaded. Every dashboard query runs against that
Prometheus too.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DnsServerFactory
from tests.helpers import free_port
from tests.service.test_alert_rules import RULES, tool
from tests.service.test_daemon import FIXED, ZONE, DaemonProcess, Workdir

GRAFANA = RULES.parent / "grafana"
SUBSTITUTIONS = {"$__rate_interval": "1m", "$job": "gdpr-auditor", "$instance": ".*"}
# Panels the scenario fills: a daemon with one unlawful finding, one audit job, a GeoIP
# database, DNS lookups and no consent, retention or waivers configured.
GUARANTEED = {
    "Critical findings open",
    "Warnings open",
    "Unsafeguarded places",
    "Last audit",
    "Posture over time",
    "Open findings by rule, severity and integration",
    "Places by country and verdict",
    "Integrations by category",
    "Up",
    "Leader",
    "Config reload",
    "Version",
    "Job last success age",
    "Job age relative to interval",
    "Job runs and failures",
    "Job durations",
    "DNS queries and failures",
    "Geolocation data age",
    "Resident memory",
    "Scrape duration",
}


class Receiver:
    """A webhook receiver on loopback keeping every Alertmanager notification it gets."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server calls
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._changed:
                    receiver.notifications.append(json.loads(body))
                    receiver._changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep the test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, match: Callable[[dict[str, Any]], bool], what: str, timeout: float) -> Any:
        """The first alert in any notification that `match` accepts; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for notification in self.notifications:
                    for alert in notification["alerts"]:
                        if match(alert):
                            return alert
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {what} within {timeout} s; got {self.notifications}")
                self._changed.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Service:
    """A Prometheus or Alertmanager process on loopback, its output kept in a file."""

    def __init__(self, command: list[str], port: int, log: Path) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
            )

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{self.base} not ready\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def query(prometheus: Service, expr: str) -> dict[str, Any]:
    """The JSON answer of Prometheus's instant query API; errors come back as JSON too."""
    url = f"{prometheus.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as error:
        answer = json.load(error)
    return answer


def fast_rules(path: Path) -> None:
    """Write a copy of the alert rules with every `for:` removed, so alerts fire in seconds."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule.pop("for", None)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def substituted(expr: str) -> str:
    for variable, value in SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    return expr


@pytest.fixture(name="stack")
def _stack(
    tmp_path: Path, dns_server_factory: DnsServerFactory
) -> Iterator[tuple[Workdir, DaemonProcess, Service, Receiver]]:
    prometheus_binary = tool("prometheus", "prometheus")
    alertmanager_binary = tool("prometheus-alertmanager", "prometheus-alertmanager")
    work = tmp_path / "work"
    work.mkdir()
    workdir = Workdir(work, dns_server_factory(ZONE).address)
    metrics_port = free_port()
    workdir.write_config(port=metrics_port, interval="PT2S")
    receiver = Receiver()
    started: list[Service] = []
    daemon: DaemonProcess | None = None
    try:
        am_port = free_port()
        (tmp_path / "alertmanager.yml").write_text(
            yaml.safe_dump(
                {
                    "route": {
                        "receiver": "webhook",
                        "group_by": ["alertname", "rule", "integration"],
                        "group_wait": "1s",
                        "group_interval": "1s",
                        "repeat_interval": "1h",
                    },
                    "receivers": [
                        {
                            "name": "webhook",
                            "webhook_configs": [{"url": receiver.url, "send_resolved": True}],
                        }
                    ],
                }
            )
        )
        alertmanager = Service(
            [
                alertmanager_binary,
                f"--config.file={tmp_path / 'alertmanager.yml'}",
                f"--storage.path={tmp_path / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            am_port,
            tmp_path / "alertmanager.log",
        )
        started.append(alertmanager)

        fast_rules(tmp_path / "rules.yml")
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(tmp_path / "rules.yml")],
                    "alerting": {
                        "alertmanagers": [
                            {"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}
                        ]
                    },
                    "scrape_configs": [
                        {
                            "job_name": "gdpr-auditor",
                            "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                        }
                    ],
                }
            )
        )
        prometheus = Service(
            [
                prometheus_binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--rules.alert.resend-delay=1s",
            ],
            prom_port,
            tmp_path / "prometheus.log",
        )
        started.append(prometheus)
        daemon = DaemonProcess(workdir.config)
        alertmanager.wait_ready()
        prometheus.wait_ready()
        yield workdir, daemon, prometheus, receiver
    finally:
        if daemon is not None:
            daemon.kill()
        for service in reversed(started):
            service.stop()
        receiver.close()


def critical_shop(status: str) -> Callable[[dict[str, Any]], bool]:
    def match(alert: dict[str, Any]) -> bool:
        labels = alert["labels"]
        return bool(
            alert["status"] == status
            and labels.get("alertname") == "GdprAuditorCriticalFinding"
            and labels.get("rule") == "transfer-unsafeguarded"
            and labels.get("integration") == "shop"
        )

    return match


@pytest.mark.slow
def test_an_unlawful_transfer_alerts_the_receiver_and_resolves_after_the_fix(
    stack: tuple[Workdir, DaemonProcess, Service, Receiver],
) -> None:
    """The critical finding reaches the webhook with rule and integration; fixed, it resolves.

    While it is open, every dashboard query runs without error, with data where the scenario
    guarantees some.
    """
    workdir, daemon, prometheus, receiver = stack

    firing = receiver.wait_for(critical_shop("firing"), "firing alert", timeout=30)
    assert firing["labels"]["severity"] == "ticket"
    assert firing["labels"]["team"] == "dpo"
    assert firing["annotations"]["runbook_url"].endswith("#gdprauditorcriticalfinding")

    time.sleep(2)  # two more scrapes, so that rates over the window have two points
    problems = []
    for path in sorted(GRAFANA.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                answer = query(prometheus, substituted(target["expr"]))
                if answer["status"] != "success":
                    problems.append(f"{panel['title']}: {answer.get('error')}")
                elif panel["title"] in GUARANTEED and not answer["data"]["result"]:
                    problems.append(f"{panel['title']}: no data for {target['expr']}")
    assert not problems, "\n".join(problems)

    workdir.write_inventory([FIXED])
    daemon.send(signal.SIGHUP)
    daemon.wait_for("reload_succeeded")
    receiver.wait_for(critical_shop("resolved"), "resolved notification", timeout=30)
