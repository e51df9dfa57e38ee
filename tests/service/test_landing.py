"""The landing page at `/`: status at a glance (last audit and its age, open findings by severity,
leader or standby, data ages, links), plain escaped HTML; from a real daemon, drawn by Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from auditor.service.landing import Status, age_text, render_landing
from auditor.service.snapshot import JobHealth, Snapshot
from auditor.store import RunRecord
from tests.evidence.test_report import png_colours
from tests.service.test_daemon import (  # noqa: F401 (fixtures: dns, spawn, workdir)
    DaemonProcess,
    Workdir,
    _dns,
    _spawn,
    _workdir,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
FINISHED = NOW - timedelta(minutes=5)
RUN = RunRecord(
    id=42, started_at=FINISHED - timedelta(seconds=3), finished_at=FINISHED, outcome="success",
    error=None, tool_version="0.1.0", config_digest="c", policy_digest="p",
    as_of=date(2026, 12, 3), integrations=13, hostnames=12, findings=18, new=2, resolved=1,
    reopened=0, geoip_built=None, datasets=(),
)  # fmt: skip
SNAPSHOT = Snapshot(
    open_findings={
        ("transfer-unsafeguarded", "critical", "crm"): 4,
        ("contract-dpa-missing", "critical", "<script>alert(1)</script>"): 1,
        ("location-drift", "warning", "shop"): 2,
    },
    waived_findings={("backup-not-offsite", "warning"): 1},
    carried_findings={("transfer-unsafeguarded", "critical"): 1},
    jobs=(
        JobHealth("audit", 3600.0, runs=3, failures=1, last_run=FINISHED, last_success=FINISHED),
    ),
    data_built={("geoip-country", "GeoLite2-Country"): NOW - timedelta(days=50)},
    last_audit=FINISHED,
    last_run=RUN,
    config_reload_at=NOW - timedelta(hours=2),
    version="0.1.0",
)
AGO = "2026-12-03 11:55:00 UTC (5 min ago)"
STATUS = Status(NOW, True, "ok", {"audit": "every PT1H"}, max_data_age_days=45)


class _Text(HTMLParser):
    """The page's text as a text browser would show it: tags dropped, one line per block."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag in {"h1", "h2", "dt", "tr", "p", "li"}:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data + " ")


def text_of(page: str) -> tuple[str, list[str]]:
    parser = _Text()
    parser.feed(page)
    lines = "".join(parser.parts).splitlines()
    return "\n".join(" ".join(line.split()) for line in lines if line.strip()), parser.tags


class TestRendering:
    def test_the_page_says_the_status_at_a_glance(self) -> None:
        """Health, role, the last audit with its age, findings by severity, jobs, data ages."""
        text, _ = text_of(render_landing(SNAPSHOT, STATUS))

        for line in (
            "gdpr-auditor 0.1.0",
            "Health healthy",
            "Role leader: this replica runs the jobs",
            "Finished 2026-12-03 11:55:00 UTC (5 min ago)",
            "Run #42, as of 2026-12-03",
            "Findings 18 open after it: 2 new, 0 re-opened, 1 resolved",
            "critical 5 0 1",
            "warning 2 1 0",
            "all 7 1 1",
            f"audit every PT1H {AGO} {AGO} 3 1",
            "geoip-country GeoLite2-Country 2026-10-14 50 days STALE",
            "/metrics : Prometheus metrics (the stored results; no scrape runs an audit)",
        ):
            assert line in text.splitlines(), f"{line!r} not in\n{text}"

    def test_a_standby_and_a_daemon_before_its_first_audit_say_so(self) -> None:
        """A standby says it serves the stored results; before any audit the page says so."""
        fresh = Snapshot(leader=False, version="0.1.0")
        text, _ = text_of(render_landing(fresh, Status(NOW, False, "heartbeat stale", {})))

        assert "Health UNHEALTHY: heartbeat stale" in text
        assert "standby: another replica holds the leader lock" in text
        assert "No audit has finished yet" in text
        assert "No job is scheduled here." in text

    def test_everything_is_escaped_and_nothing_is_scripted_or_fetched(self) -> None:
        """Values are escaped; the page has no script, no external reference, no form."""
        hostile = Snapshot(version="<b>x</b>", jobs=(JobHealth("<img src=x>", 60.0),))
        page = render_landing(hostile, Status(NOW, False, "<script>bad()</script>", {}))

        _, tags = text_of(page)
        assert "<script>" not in page and "<img" not in page and "<b>x" not in page
        assert "&lt;script&gt;bad()&lt;/script&gt;" in page
        assert {"script", "img", "iframe", "form", "link", "object"}.isdisjoint(tags)
        assert not re.search(r"(src|href)=\"(https?:)?//", page)

    @pytest.mark.parametrize(
        ("seconds", "text"),
        [(5, "5 s"), (89, "89 s"), (300, "5 min"), (3 * 3600 + 240, "3 h 4 min"),
         (7200, "2 h"), (3 * 86400, "3 days"), (-4, "0 s")],
    )  # fmt: skip
    def test_ages_are_said_in_words(self, seconds: float, text: str) -> None:
        assert text == age_text(seconds)


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "chromium is not installed (apt-get install chromium)"
        if os.environ.get("GDPR_AUDITOR_REQUIRE_SERVICES") == "1":
            pytest.fail(f"GDPR_AUDITOR_REQUIRE_SERVICES=1 but {reason}")
        pytest.skip(reason)
    return path


@pytest.mark.slow
def test_a_running_daemon_serves_its_status_and_chromium_draws_it(
    workdir: Workdir, spawn: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    """After the daemon's first audit, `/` names that audit (run, time, age) and its open
    findings by severity; headless Chromium draws the page (a screenshot that is not blank)
    and reads the same text from it."""
    chromium = _chromium()
    workdir.write_config(interval="PT1H")  # one audit: the page names that one
    daemon = spawn(workdir.config)
    finished = daemon.wait_for("audit_finished")
    url = f"http://127.0.0.1:{daemon.port}/"

    with urllib.request.urlopen(url, timeout=5) as response:
        content_type = response.headers["Content-Type"]
        page = response.read().decode()
    text, _ = text_of(page)

    assert content_type == "text/html; charset=utf-8"
    assert f"Run #{finished['run_id']}, as of {datetime.now(UTC).date().isoformat()}" in text
    assert re.search(
        r"^Finished \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)$", text, re.MULTILINE
    )
    assert re.search(r"^critical [1-9]\d* 0 0$", text, re.MULTILINE), text
    assert "Role leader: this replica runs the jobs" in text
    assert "audit every PT1H" in text

    shot = tmp_path / "landing.png"
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-component-update"]  # fmt: skip
    subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'shot'}", f"--screenshot={shot}",
         "--window-size=1000,900", url],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    dom = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'dom'}", "--dump-dom", url],
        check=True, capture_output=True, timeout=120, text=True,
    ).stdout  # fmt: skip
    colours = png_colours(shot)
    pixels = sum(colours.values())
    inked = pixels - colours[b"\xff\xff\xff"]

    assert 1000 * 900 == pixels
    assert len(colours) > 16  # anti-aliased text: many shades, not one flat fill
    assert inked > pixels // 100, f"{inked} of {pixels} pixels are not white"
    drawn, _ = text_of(dom)
    assert f"Run #{finished['run_id']}" in drawn and "Open findings" in drawn


def test_a_failing_page_falls_back_to_the_links() -> None:
    """When the status cannot be rendered, `/` still answers with the links (and logs why)."""
    from auditor.service.httpserver import MetricsServer

    def broken() -> str:
        raise RuntimeError("no snapshot")

    def healthy() -> tuple[bool, str]:
        return True, ""

    server = MetricsServer("127.0.0.1", 0, lambda a, c: ("text/plain", b""), healthy, broken)
    with server, urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5) as response:
        page = response.read().decode()

    assert 'href="/metrics"' in page and 'href="/healthz"' in page
