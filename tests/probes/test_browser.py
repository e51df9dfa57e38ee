"""The browser probe against loopback HTTPS sites in real Chromium: requests with their initiator
and the address connected to, beacons, fetches, frames, WebSockets, redirects, cookies, storage,
the consent click, and pages that never finish loading or are too big."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditor.core.errors import BrowserUnavailableError
from auditor.probes.browser import BrowserSettings, Chromium, find_executable
from auditor.probes.pagecapture import PageCapture
from tests.webserver import LoopbackSites, Reply, browser_settings, require_browser

PAGE = """<html><head>
<script src="https://tags.tagmgr.test:PORT/tm.js"></script>
</head><body>
<img src="https://r.redirect.test:PORT/r">
<iframe src="https://widget.embed.test:PORT/frame.html"></iframe>
<button id="accept">Accept</button>
<script>
  localStorage.setItem("first-party-key", "1");
  navigator.sendBeacon("https://beacon.tracker-us.test:PORT/b", "hello");
  fetch("https://api.analytics-eu.test:PORT/collect", {mode: "no-cors"});
  new WebSocket("wss://live.sockets.test:PORT/ws");
  document.getElementById("accept").onclick = () =>
    fetch("https://ads.adnet.test:PORT/after", {mode: "no-cors"});
  addEventListener("pagehide", () => navigator.sendBeacon("https://leave.tracker-us.test:PORT/u"));
</script>
<a href="/next">next</a>
</body></html>"""

TAG_MANAGER = """setTimeout(() => {
  const s = document.createElement("script");
  s.src = "https://collect.tracker-us.test:PORT/t.js";
  document.head.appendChild(s);
}, 50);"""

FRAME = """<html><body><script>
  localStorage.setItem("widget-id", "x");
  fetch("https://widget.embed.test:PORT/ping", {mode: "no-cors"});
</script></body></html>"""

ROUTES = {
    "www.shop.test": {
        "/": Reply(PAGE),
        "/slow": Reply('<html><body><img src="https://collect.tracker-us.test:PORT/x.gif">'
                       '<img src="/hang"></body></html>'),
        "/hang": Reply("", "image/gif", hang=True),
        "/missing": Reply("gone", "text/plain", status=404),
        "/big": Reply('<html><body><script src="/big.js"></script>'
                      '<img src="https://collect.tracker-us.test:PORT/late.gif"></body></html>'),
        "/big.js": Reply("//" + "x" * 400_000, "application/javascript"),
    },
    "tags.tagmgr.test": {"/tm.js": Reply(TAG_MANAGER, "application/javascript")},
    "r.redirect.test": {"/r": Reply("", status=302,
                                    headers={"Location": "https://img.tracker-us.test:PORT/i.gif"})},
    "widget.embed.test": {
        "/frame.html": Reply(FRAME, headers={
            "Set-Cookie": "wid=abc; Max-Age=31536000; SameSite=None; Secure; Path=/"}),
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackSites]:
    with LoopbackSites(ROUTES, tmp_path_factory.mktemp("cert")) as served:
        yield served


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    require_browser()
    with Chromium(browser_settings(timeout=4.0, settle=0.4), utcnow) as browser:
        yield browser


@pytest.fixture(scope="module")
def shop_page(
    chromium: Chromium, sites: LoopbackSites, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PageCapture, Path]:
    """The shop's front page before any choice, captured once for the tests that read it."""
    directory = tmp_path_factory.mktemp("shop")
    return capture(chromium, sites.url("www.shop.test"), directory), directory


def utcnow() -> datetime:
    return datetime.now(UTC)


def capture(
    browser: Chromium, url: str, tmp_path: Path, state: str = "before", selector: str | None = None
) -> PageCapture:
    return browser.capture(
        url, state, selector, har=tmp_path / "page.har", screenshot=tmp_path / "page.png",
        links=True,
    )  # fmt: skip


class TestCapture:
    def test_every_request_is_recorded_with_its_initiator_and_the_address_connected_to(
        self, shop_page: tuple[PageCapture, Path], sites: LoopbackSites
    ) -> None:
        """The tag manager's script is parsed from the page; the tracker it injects after load
        names the tag manager as initiator; beacons, fetches, frames, WebSockets and each hop of
        a redirect chain are there, each with the address the browser connected to."""
        page, _ = shop_page
        assert page.ok and page.status == 200
        found = {r.url.replace(f":{sites.port}", ""): r for r in page.requests}
        tag = found["https://tags.tagmgr.test/tm.js"]
        assert (tag.initiator, tag.resource_type) == ("parser", "script")
        injected = found["https://collect.tracker-us.test/t.js"]
        assert injected.initiator == "script"
        assert injected.initiator_url == sites.url("tags.tagmgr.test", "/tm.js")
        assert found["https://beacon.tracker-us.test/b"].resource_type == "ping"
        assert found["https://api.analytics-eu.test/collect"].resource_type == "fetch"
        frame_fetch = found["https://widget.embed.test/ping"]
        assert frame_fetch.frame_url == sites.url("widget.embed.test", "/frame.html")
        assert found["wss://live.sockets.test/ws"].resource_type == "websocket"
        hop = found["https://r.redirect.test/r"]
        final = found["https://img.tracker-us.test/i.gif"]
        assert hop.status == 302 and final.initiator == "redirect"
        assert final.initiator_url == sites.url("r.redirect.test", "/r")
        assert {r.remote_address for r in (tag, injected, hop, final)} == {"127.0.0.1"}
        assert not any(r.after_choice for r in page.requests)

    def test_a_beacon_sent_when_the_visitor_leaves_is_recorded(
        self, shop_page: tuple[PageCapture, Path], sites: LoopbackSites
    ) -> None:
        page, _ = shop_page
        leave = [r for r in page.requests if r.url.startswith("https://leave.tracker-us.test")]
        assert leave and leave[0].resource_type == "ping"

    def test_third_party_cookies_and_storage_keys_are_recorded_without_their_values(
        self, shop_page: tuple[PageCapture, Path], sites: LoopbackSites
    ) -> None:
        page, _ = shop_page
        cookie = next(c for c in page.cookies if c.domain == "widget.embed.test")
        assert cookie.name == "wid" and cookie.secure and cookie.same_site == "None"
        lifetime = cookie.lifetime_seconds(page.started_at)
        assert lifetime is not None and 364 * 86400 < lifetime <= 365 * 86400 + 60
        keys = {(key.origin.rsplit(":", 1)[0], key.area, key.key) for key in page.storage}
        assert ("https://www.shop.test", "local", "first-party-key") in keys
        assert ("https://widget.embed.test", "local", "widget-id") in keys
        assert "abc" not in json.dumps([page.cookie_json(c) for c in page.cookies])

    def test_the_har_screenshot_and_links_are_written(
        self, shop_page: tuple[PageCapture, Path], sites: LoopbackSites
    ) -> None:
        page, directory = shop_page
        har = json.loads((directory / "page.har").read_text())
        urls = {entry["request"]["url"] for entry in har["log"]["entries"]}
        assert sites.url("tags.tagmgr.test", "/tm.js") in urls
        assert (directory / "page.png").read_bytes().startswith(b"\x89PNG")
        assert sites.url("www.shop.test", "/next") in page.links

    def test_what_the_click_sets_off_is_after_the_choice(
        self, chromium: Chromium, sites: LoopbackSites, tmp_path: Path
    ) -> None:
        page = capture(chromium, sites.url("www.shop.test"), tmp_path, "accept", "#accept")
        assert page.ok and page.clicked
        after = {r.url.split("/")[2].split(":")[0] for r in page.requests if r.after_choice}
        assert "ads.adnet.test" in after
        assert "tags.tagmgr.test" not in after

    def test_a_button_that_is_not_there_is_a_failure(
        self, chromium: Chromium, sites: LoopbackSites, tmp_path: Path
    ) -> None:
        page = capture(chromium, sites.url("www.shop.test"), tmp_path, "reject", "#no-such")
        assert not page.clicked
        assert page.failure is not None and "#no-such" in page.failure
        assert page.requests  # what the page did before is kept


class TestFailures:
    def test_a_page_that_never_finishes_loading_fails_but_keeps_what_was_seen(
        self, chromium: Chromium, sites: LoopbackSites, tmp_path: Path
    ) -> None:
        page = capture(chromium, sites.url("www.shop.test", "/slow"), tmp_path)
        assert page.failure == "did not finish loading within 4 s"
        assert any("collect.tracker-us.test" in r.url for r in page.requests)
        assert (tmp_path / "page.har").is_file()

    def test_an_http_error_is_a_failure(
        self, chromium: Chromium, sites: LoopbackSites, tmp_path: Path
    ) -> None:
        page = capture(chromium, sites.url("www.shop.test", "/missing"), tmp_path)
        assert (page.failure, page.status) == ("HTTP 404", 404)

    def test_an_unreachable_page_is_a_failure(self, chromium: Chromium, tmp_path: Path) -> None:
        page = capture(chromium, "https://localhost:1/", tmp_path)
        assert page.failure is not None and page.failure.startswith("did not load: ")

    def test_a_page_past_the_size_cap_is_cut_off(
        self, chromium: Chromium, sites: LoopbackSites, tmp_path: Path
    ) -> None:
        saved = chromium.settings
        chromium.settings = replace(saved, max_bytes=100_000)
        try:
            page = capture(chromium, sites.url("www.shop.test", "/big"), tmp_path)
        finally:
            chromium.settings = saved
        assert page.failure is not None and page.failure.startswith("cut off after ")
        assert page.bytes_received > 100_000


class TestSetUp:
    def test_a_configured_browser_that_does_not_exist_names_the_setting(
        self, tmp_path: Path
    ) -> None:
        with pytest.raises(BrowserUnavailableError, match=r"websites\.browser: .* does not exist"):
            find_executable(tmp_path / "chromium")

    def test_no_browser_found_says_how_to_install_one(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from auditor.probes import browser

        monkeypatch.setattr(browser, "EXECUTABLES", ("/nonexistent/chromium", "no-such-chromium"))
        with pytest.raises(BrowserUnavailableError, match="apt-get install chromium"):
            find_executable(None, which=lambda name: None)

    def test_capture_without_a_started_browser_is_an_error(self, tmp_path: Path) -> None:
        with pytest.raises(BrowserUnavailableError, match="not running"):
            Chromium(BrowserSettings(), utcnow).capture(
                "https://x.test/", "before", None, har=tmp_path / "h", screenshot=tmp_path / "s"
            )
