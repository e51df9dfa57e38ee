"""The daemon as a real process under faults: files replaced under it, its database lost, bad rows."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.dnsserver import LoopbackDnsServer
from tests.mmdb import EXAMPLE_BUILD_EPOCH, build_country_db
from tests.service.test_daemon import (  # noqa: F401  (fixtures)
    ZONE,
    DaemonProcess,
    Workdir,
    _dns,
    _spawn,
    _workdir,
)

MOVED_ZONE = ZONE.replace("198.51.100.10", "198.51.100.77")
NEW_EPOCH = EXAMPLE_BUILD_EPOCH + 86400


def health(daemon: DaemonProcess) -> tuple[int, str]:
    url = f"http://127.0.0.1:{daemon.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.slow
def test_a_geoip_file_overwritten_in_place_neither_kills_the_daemon_nor_keeps_old_data(
    workdir: Workdir, dns: LoopbackDnsServer, spawn: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """`cp new.mmdb country.mmdb` truncates the file in use: the daemon keeps auditing and serving,
    reads the new file at the next run, and after SIGHUP still uses it."""
    # A large file in use, replaced by a small one: a memory-mapped reader would touch pages
    # past the new end of the file (SIGBUS) at the first address not in its cache.
    many = {f"10.{i // 256}.{i % 256}.0/24": "FR" for i in range(20000)}
    build_country_db(workdir.path / "country.mmdb", {**many, "198.51.100.0/24": "US"})
    replacement = build_country_db(
        tmp_path / "new" / "country.mmdb", {"198.51.100.0/24": "DE"}, build_epoch=NEW_EPOCH
    )
    daemon = spawn(workdir.config)
    daemon.wait_for("audit_finished")
    runs = daemon.count("audit_finished")

    shutil.copyfile(replacement, workdir.path / "country.mmdb")  # truncates, then writes
    dns.serve(MOVED_ZONE)  # a new address, so the next run must look it up
    daemon.wait_for("geoip_file_changed")
    daemon.wait_for("audit_finished", nth=runs + 1)

    assert daemon.process.poll() is None
    built = daemon.value("gdpr_auditor_data_build_timestamp_seconds", kind="geoip-country")
    assert built == NEW_EPOCH
    endpoint = [p for p in workdir.store().latest_places() if p.facet.value == "endpoint"]
    assert {p.country for p in endpoint} == {"DE"}

    daemon.send(signal.SIGHUP)
    daemon.wait_for("reload_succeeded")
    runs = daemon.count("audit_finished")
    daemon.wait_for("audit_finished", nth=runs + 1)
    assert NEW_EPOCH == daemon.value(
        "gdpr_auditor_data_build_timestamp_seconds", kind="geoip-country"
    )
    assert 0 == daemon.value("gdpr_auditor_job_failures_total", job_id="audit")
    daemon.send(signal.SIGTERM)
    assert 0 == daemon.exit_status(timeout=10)


@pytest.mark.slow
def test_a_half_written_geoip_file_keeps_the_data_read_before_and_says_so(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """A replacement that is not (yet) a valid mmdb: the audit goes on with the data in memory,
    and an error line says the new file could not be read."""
    daemon = spawn(workdir.config)
    daemon.wait_for("audit_finished")
    runs = daemon.count("audit_finished")

    (workdir.path / "country.mmdb").write_bytes(b"\x00" * 100)
    failed = daemon.wait_for("geoip_reload_failed")
    daemon.wait_for("audit_finished", nth=runs + 1)

    assert "country.mmdb" in failed["error"]
    assert failed["level"] == "error"
    assert 0 == daemon.value("gdpr_auditor_job_failures_total", job_id="audit")
    daemon.send(signal.SIGTERM)
    assert 0 == daemon.exit_status(timeout=10)


@pytest.mark.slow
def test_a_state_database_deleted_while_running_fails_jobs_loudly_and_makes_healthz_unhealthy(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """The SQLite file unlinked under the daemon: no audit is written into the deleted file, each
    job fails with an error line and is counted, /healthz answers 503 with the reason, /metrics
    is still served, and no empty database appears in its place."""
    database = workdir.path / "state.db"
    daemon = spawn(workdir.config)
    daemon.wait_for("audit_finished")
    assert health(daemon) == (200, "ok\n")

    database.unlink()
    failed = daemon.wait_for("job_failed", job_id="audit")
    daemon.wait_for("job_failed", job_id="audit", nth=2)

    assert failed["level"] == "error"
    assert "deleted while in use" in failed["error"]
    status, reason = health(daemon)
    assert status == 503
    assert "deleted while in use" in reason
    assert (daemon.value("gdpr_auditor_job_failures_total", job_id="audit") or 0) >= 2
    assert daemon.value("gdpr_auditor_leader") == 1  # metrics are still served
    assert not database.exists()
    daemon.send(signal.SIGTERM)
    assert 0 == daemon.exit_status(timeout=10)
    assert not database.exists()


@pytest.mark.slow
def test_a_state_database_replaced_while_running_is_not_written_into(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """A restore that moves another file into place: the daemon stops writing into the file it
    opened (which nobody reads any more) and says so, until restarted."""
    database = workdir.path / "state.db"
    daemon = spawn(workdir.config)
    daemon.wait_for("audit_finished")

    copy = workdir.path / "restored.db"
    with sqlite3.connect(database) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    copy.replace(database)
    failed = daemon.wait_for("job_failed", job_id="audit")

    assert "replaced by another file" in failed["error"]
    assert health(daemon)[0] == 503
    daemon.send(signal.SIGTERM)
    assert 0 == daemon.exit_status(timeout=10)


@pytest.mark.slow
def test_a_waiver_row_expiring_9999_12_31_keeps_metrics_scrapes_answering(
    workdir: Workdir, spawn: Callable[..., DaemonProcess]
) -> None:
    """A waiver written straight into the database with the calendar's last day as expiry: every
    scrape still answers 200 with every series, the expiry the end of that day."""
    daemon = spawn(workdir.config)
    daemon.wait_for("audit_finished")
    store = workdir.store()
    finding = next(f for f in store.list_findings() if f.rule == "transfer-unsafeguarded")
    store.waive(
        finding.id, reason="r", approver="a", expires=date(2030, 1, 1), now=datetime.now(UTC)
    )
    store.close()
    with sqlite3.connect(workdir.path / "state.db") as conn:
        conn.execute("UPDATE waivers SET expires = '9999-12-31'")
    runs = daemon.count("audit_finished")
    daemon.wait_for("audit_finished", nth=runs + 1)

    expiry = daemon.value("gdpr_auditor_waiver_expiry_timestamp_seconds")
    assert expiry == datetime(9999, 12, 31, tzinfo=UTC).timestamp() + 86400
    assert daemon.value("gdpr_auditor_leader") == 1
    assert daemon.count("snapshot_refresh_failed") == 0
    daemon.send(signal.SIGTERM)
    assert 0 == daemon.exit_status(timeout=10)


@pytest.mark.slow
def test_bad_http_clients_get_400_from_a_running_daemon_never_a_traceback(
    spawn: Callable[..., DaemonProcess], workdir: Workdir
) -> None:
    """Junk bytes, a TLS ClientHello and a client hanging up early against the daemon's metrics
    port: each bad request is answered 400 with one structured log line; nothing reaches the
    log that is not a JSON line (a traceback would), and the daemon keeps serving /metrics."""
    from tests.service.test_httpserver import TLS_CLIENT_HELLO, raw_exchange

    daemon = spawn(workdir.config)
    daemon.wait_for("audit_finished")

    answers = [
        raw_exchange(daemon.port, payload)
        for payload in (TLS_CLIENT_HELLO, b"\xff\xfe\x00junk\x1b[31m\r\n\r\n")
    ]
    raw_exchange(daemon.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", read=False)
    daemon.wait_for("http_bad_request", nth=2)
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/metrics", timeout=5) as page:
        still_serving = page.status
    daemon.send(signal.SIGTERM)

    assert daemon.exit_status(timeout=20) == 0
    assert all(answer.startswith(b"HTTP/1.1 400 ") for answer in answers), answers
    assert 200 == still_serving
    assert [] == daemon.other_lines  # every line the daemon wrote was a JSON log event
    assert "Traceback" not in daemon.log_text()
    assert "127.0.0.1" not in " ".join(
        str(event) for event in daemon.events if event.get("event") == "http_bad_request"
    )
