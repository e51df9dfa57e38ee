"""The metrics HTTP server on loopback: landing page, health check, scrape, 404, HEAD, promtool."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import logging
import os
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from auditor import __version__
from auditor.service.httpserver import Health, MetricsServer
from auditor.service.log import configure_logging
from auditor.service.metrics import Exposition
from auditor.service.snapshot import JobHealth, Snapshot

AUDITED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

SNAPSHOT = Snapshot(
    open_findings={("transfer-unsafeguarded", "critical", "crm"): 2},
    recently_resolved=frozenset({("backup-outside-eea", "warning", "helpdesk")}),
    waived_findings={("backup-outside-eea", "warning"): 1},
    integrations_by_category={"crm": 3},
    places={("eea", "DE"): 4, ("unsafeguarded", "US"): 2},
    jobs=(JobHealth("audit", 3600.0, runs=3, failures=1, last_run=AUDITED, last_success=AUDITED),),
    dns_queries=10,
    dns_failures=1,
    data_built={("geoip", "country"): AUDITED},
    last_audit=AUDITED,
    config_reload_at=AUDITED,
)

Response = tuple[int, http.client.HTTPMessage, bytes]
ServerFactory = Callable[..., MetricsServer]


def healthy() -> tuple[bool, str]:
    return True, ""


@pytest.fixture
def serve() -> Iterator[ServerFactory]:
    """Start metrics servers on a free loopback port; stop them at teardown."""
    servers: list[MetricsServer] = []

    def start(
        health: Health = healthy,
        source: Callable[[], Snapshot] = lambda: SNAPSHOT,
        host: str = "127.0.0.1",
    ) -> MetricsServer:
        server = MetricsServer(host, 0, Exposition(source).render, health).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def fetch(
    server: MetricsServer, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Response:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def test_landing_page_links_metrics_and_health_and_names_the_version(
    serve: ServerFactory,
) -> None:
    """`/` is a small HTML page linking /metrics and /healthz and naming the version."""
    status, headers, body = fetch(serve(), "/")

    assert 200 == status
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert 'href="/metrics"' in page
    assert 'href="/healthz"' in page
    assert __version__ in page


def test_healthz_is_ok_while_healthy(serve: ServerFactory) -> None:
    """`/healthz` answers 200 "ok" while the health callable says healthy."""
    status, _, body = fetch(serve(), "/healthz")

    assert (200, b"ok\n") == (status, body)


def test_healthz_is_503_with_the_reason_when_unhealthy(serve: ServerFactory) -> None:
    """`/healthz` answers 503 with the reason the health callable gives."""
    server = serve(health=lambda: (False, "scheduler stuck for 600 s"))

    status, _, body = fetch(server, "/healthz")

    assert (503, b"scheduler stuck for 600 s\n") == (status, body)


@pytest.mark.parametrize(
    ("callable_name", "path", "answer"),
    [
        ("health", "/healthz", (503, b"health check failed\n")),
        ("source", "/metrics", (500, b"metrics collection failed\n")),
    ],
    ids=["healthz", "metrics"],
)
def test_a_failing_health_check_or_snapshot_source_is_an_error_not_a_crash(
    serve: ServerFactory, callable_name: str, path: str, answer: tuple[int, bytes]
) -> None:
    """A health callable that raises makes `/healthz` report unhealthy (503); a snapshot source
    that raises fails the scrape (500, not an empty one), so Prometheus marks the target down."""

    def broken() -> Any:
        raise RuntimeError(f"{callable_name} gone")

    status, _, body = fetch(serve(**{callable_name: broken}), path)

    assert answer == (status, body)


def test_metrics_serves_the_text_exposition(serve: ServerFactory) -> None:
    """`/metrics` returns the Prometheus text format with the snapshot's values."""
    status, headers, body = fetch(serve(), "/metrics?debug=1")

    assert 200 == status
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    open_findings = {
        (s.labels["rule"], s.labels["integration"]): s.value
        for s in families["gdpr_auditor_findings_open"].samples
    }
    assert {("transfer-unsafeguarded", "crm"): 2, ("backup-outside-eea", "helpdesk"): 0} == (
        open_findings
    )
    assert "process_cpu_seconds" in families


def test_metrics_are_gzipped_when_the_client_asks(serve: ServerFactory) -> None:
    """With `Accept-Encoding: gzip` the body is gzip-compressed and says so."""
    server = serve()

    _, plain_headers, plain = fetch(server, "/metrics")
    status, headers, body = fetch(server, "/metrics", headers={"Accept-Encoding": "gzip"})

    assert 200 == status
    assert "gzip" == headers["Content-Encoding"]
    assert None is plain_headers["Content-Encoding"]
    assert b"gdpr_auditor_leader 1.0" in gzip.decompress(body)
    assert b"gdpr_auditor_leader 1.0" in plain


def test_metrics_speak_openmetrics_when_asked(serve: ServerFactory) -> None:
    """An OpenMetrics Accept header gets the OpenMetrics format, still without `_created`."""
    status, headers, body = fetch(
        serve(), "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )

    assert 200 == status
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")
    assert b"_created" not in body


def test_a_gzipped_openmetrics_scrape_is_one_valid_document(serve: ServerFactory) -> None:
    """Prometheus's own request, gzip and OpenMetrics: a strict parser reads every family, twice."""
    server = serve()
    headers = {
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        "Accept-Encoding": "gzip",
    }

    for _ in range(2):  # rendered, then served from what was kept
        status, response_headers, body = fetch(server, "/metrics", headers=headers)
        text = gzip.decompress(body).decode()
        names = {family.name for family in parse_openmetrics(text)}

        assert (200, "gzip") == (status, response_headers["Content-Encoding"])
        assert {"gdpr_auditor_findings_open", "gdpr_auditor_job_runs", "process_cpu_seconds"} <= (
            names
        )
        assert 1 == text.count("# EOF")


def test_unknown_paths_are_404(serve: ServerFactory) -> None:
    """Anything but /, /metrics and /healthz is not found."""
    status, _, _ = fetch(serve(), "/probe?target=crm.example")

    assert 404 == status


@pytest.mark.parametrize("path", ["/", "/metrics", "/healthz", "/nowhere"])
def test_head_gives_the_headers_of_get_without_a_body(serve: ServerFactory, path: str) -> None:
    """HEAD answers with GET's status, type and length, and no body."""
    server = serve()

    get_status, get_headers, get_body = fetch(server, path)
    status, headers, body = fetch(server, path, method="HEAD")

    assert get_status == status
    assert get_headers["Content-Type"] == headers["Content-Type"]
    if path == "/metrics":  # process metrics move between the two requests
        assert abs(len(get_body) - int(headers["Content-Length"])) < 100
    else:
        assert str(len(get_body)) == headers["Content-Length"]
    assert b"" == body


def test_requests_are_logged_through_structlog_at_debug_not_to_stderr(
    serve: ServerFactory, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each request is a debug `http_request` event with method, path and status; stderr stays quiet."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    server = serve()

    fetch(server, "/healthz?verbose")
    fetch(server, "/missing")
    server.stop()

    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [e for e in events if e["event"] == "http_request"]
    assert [("GET", "/healthz", 200), ("GET", "/missing", 404)] == [
        (e["method"], e["path"], e["status"]) for e in requests
    ]
    assert {"debug"} == {e["level"] for e in requests}
    assert "" == capsys.readouterr().err


def test_stop_closes_the_port(serve: ServerFactory) -> None:
    """After stop() nothing listens on the port any more."""
    server = serve()
    port = server.port

    server.stop()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_serves_on_ipv6_loopback(serve: ServerFactory) -> None:
    """An IPv6 listen address works like an IPv4 one."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python")
    try:
        server = serve(host="::1")
    except OSError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")

    status, _, body = fetch(server, "/healthz")

    assert (200, b"ok\n") == (status, body)


def test_promtool_check_metrics_passes_on_a_real_scrape(serve: ServerFactory) -> None:
    """`promtool check metrics` finds nothing to lint in what the server actually serves."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("GDPR_AUDITOR_REQUIRE_SERVICES") == "1":
            pytest.fail("promtool is required (Debian package prometheus) but not on PATH")
        pytest.skip("promtool not on PATH (install Debian's prometheus package)")
    _, _, body = fetch(serve(), "/metrics")

    lint = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    bad = subprocess.run(
        [promtool, "check", "metrics"],
        input=b"# HELP gdpr_auditor_runs Runs.\n# TYPE gdpr_auditor_runs counter\n"
        b"gdpr_auditor_runs 1\n",
        capture_output=True,
        timeout=30,
        check=False,
    )

    assert (0, b"", b"") == (lint.returncode, lint.stdout, lint.stderr)
    assert 0 != bad.returncode, "promtool should flag a counter without _total"


TLS_CLIENT_HELLO = bytes.fromhex("160301020001000001fc0303") + bytes(range(256))


def raw_exchange(port: int, payload: bytes, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(payload)
        if not read:
            # Close at once with a reset: the server's write fails (broken pipe / reset).
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
            return b""
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


@pytest.mark.parametrize(
    "payload",
    [TLS_CLIENT_HELLO, b"\xff\xfe\x00junk\x1b[31m\r\n\r\n", b"GET / HTTP/1.x\r\n\r\n", b"\r\n"],
    ids=["tls-client-hello", "junk-bytes", "bad-version", "empty-line"],
)
def test_a_bad_request_line_gets_400_and_one_structured_line_never_a_traceback(
    serve: ServerFactory,
    restore_logging: None,
    capfd: pytest.CaptureFixture[str],
    payload: bytes,
) -> None:
    """Junk, a TLS handshake or a bad version: a 400 status line, one JSON log line, nothing on
    stderr besides it (no traceback, no client address)."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    server = serve()

    reply = raw_exchange(server.port, payload)
    after = raw_exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    server.stop()

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    bad = [line for line in lines if line["event"] == "http_bad_request"]
    assert reply.startswith(b"HTTP/1.1 400 ") or reply == b"", reply[:80]
    assert after.startswith(b"HTTP/1.1 200 ")
    assert len(bad) == (1 if reply else 0), lines
    assert "\\u001b" not in stream.getvalue()  # escaped as text, not passed on
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "127.0.0.1'," not in captured.err + stream.getvalue()
    assert not [line for line in lines if line["level"] in ("error", "critical")]


def test_a_client_closing_early_is_at_most_one_quiet_line(
    serve: ServerFactory, restore_logging: None, capfd: pytest.CaptureFixture[str]
) -> None:
    """A scraper that resets the connection while a large body is written: a debug line at
    most, no traceback, and the server goes on serving."""
    stream = io.StringIO()
    configure_logging("debug", "json", stream=stream)
    big = Snapshot(open_findings={("rule", "critical", f"i{n}"): 1 for n in range(20000)})
    server = serve(source=lambda: big)

    for _ in range(5):
        raw_exchange(server.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", read=False)
    after = raw_exchange(server.port, b"GET /healthz HTTP/1.0\r\n\r\n")
    server.stop()

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert after.startswith(b"HTTP/1.1 200 ")
    assert all(line["level"] == "debug" for line in lines if line["event"] != "metrics_listening")
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert "Exception occurred" not in captured.err
