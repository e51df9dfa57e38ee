"""The browser adapter: one headless Chromium driven by Playwright, a fresh context per page and
consent state, recording requests (initiator, address connected to), cookies, storage keys, a
screenshot and a HAR.

Playwright drives the Chromium installed on the machine (Debian's `chromium`); nothing is
downloaded. Playwright's own events give every request of every frame and worker; a DevTools
connection on the page adds what Playwright does not expose: who initiated each request (the parser
of a document, or the script that injected it) and the address the browser connected to.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from auditor.core.errors import BrowserUnavailableError
from auditor.core.ports import Clock
from auditor.probes.pagecapture import CapturedCookie, PageCapture, StorageKey
from auditor.probes.pagerecorder import Recorder

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, Playwright

EXECUTABLES = (
    "/usr/lib/chromium/chromium",  # Debian's binary, without the wrapper script's extra switches
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
"""Where Chromium is looked for when the configuration names no executable (absolute, or on PATH)."""

INSTALL_HINT = "install Chromium (Debian: apt-get install chromium) or set websites.browser"
PLAYWRIGHT_HINT = "the web audit needs Playwright: pip install 'gdpr-auditor[web]'"

SWITCHES = (
    # Cross-site iframes in the page's renderer, so that the page's DevTools connection sees the
    # requests of every frame with their initiators (site isolation puts them in other ones).
    "--disable-site-isolation-trials",
    "--disable-features=IsolateOrigins,site-per-process",
    # The browser's own traffic (component updates, field trials) is not the site's.
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--no-default-browser-check",
)
"""The Chromium switches of every run, before the configured ones."""

PREFERENCES = {"profile": {"cookie_controls_mode": 0}}
"""The throwaway profile's preferences: third-party cookies allowed, as a desktop browser's
defaults allow them. Chromium builds that block them by default would hide what a site's third
parties set in most visitors' browsers."""

CLICK_SECONDS = 10.0
"""How long the consent banner's button is waited for (at most the page timeout)."""
UNLOAD_WAIT_MS = 250
"""How long the beacons a page sends when the visitor leaves (pagehide) are waited for."""


@dataclass(frozen=True, slots=True)
class BrowserSettings:
    """How the browser runs: its executable (None: found), extra switches, time and size limits."""

    executable: Path | None = None
    args: tuple[str, ...] = ()
    timeout: float = 30.0  # seconds for a page to load
    settle: float = 3.0  # seconds to wait after the load and after the click, for late requests
    max_bytes: int = 20_000_000  # bytes received per page and state before it is cut off
    viewport: tuple[int, int] = (1280, 800)


def find_executable(
    configured: Path | None, which: Callable[[str], str | None] = shutil.which
) -> Path:
    """The Chromium executable: the configured one, else the first of EXECUTABLES found.

    Raises:
        BrowserUnavailableError: the configured file does not exist, or none is found.
    """
    if configured is not None:
        if not configured.is_file():
            raise BrowserUnavailableError(f"websites.browser: {configured} does not exist")
        return configured
    for name in EXECUTABLES:
        found = name if name.startswith("/") and Path(name).is_file() else which(name)
        if found:
            return Path(found)
    raise BrowserUnavailableError(f"no Chromium found: {INSTALL_HINT}")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Chromium:
    """One headless Chromium for one run; `capture` loads a page in a fresh context.

    The browser's profile is a temporary directory removed on close; every page and consent state
    gets a new in-memory context (no cookie, storage or cache carries over). Not thread-safe: one
    thread uses one instance.
    """

    def __init__(self, settings: BrowserSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock  # when each capture starts (cookie lifetimes count from it)
        self._playwright: Playwright | None = None
        self._persistent: BrowserContext | None = None
        self._browser: Browser | None = None
        self._profile: Path | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        """Launch the browser.

        Raises:
            BrowserUnavailableError: Playwright is not installed, no Chromium is found, or it
                does not start.
        """
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError:
            raise BrowserUnavailableError(PLAYWRIGHT_HINT) from None
        executable = find_executable(self.settings.executable)
        self._profile = Path(tempfile.mkdtemp(prefix="gdpr-auditor-browser-"))
        (self._profile / "Default").mkdir()
        (self._profile / "Default" / "Preferences").write_text(json.dumps(PREFERENCES))
        try:
            self._playwright = sync_playwright().start()
            self._persistent = self._playwright.chromium.launch_persistent_context(
                str(self._profile),
                executable_path=str(executable),
                headless=True,
                args=[*SWITCHES, *self.settings.args],
                timeout=max(self.settings.timeout, 30.0) * 1000,
            )
        except Error as exc:
            self.close()
            raise BrowserUnavailableError(
                f"{executable} could not be started: {_first_line(exc)} ({INSTALL_HINT})"
            ) from None
        self._browser = self._persistent.browser

    def close(self) -> None:
        """Stop the browser and remove its profile; safe to call twice."""
        try:
            # A browser that crashed cannot be closed cleanly: its process is gone already.
            with contextlib.suppress(Exception):
                if self._persistent is not None:
                    self._persistent.close()
        finally:
            self._persistent = self._browser = None
            if self._playwright is not None:
                self._playwright.stop()
                self._playwright = None
            if self._profile is not None:
                shutil.rmtree(self._profile, ignore_errors=True)
                self._profile = None

    def capture(
        self,
        url: str,
        state: str,
        selector: str | None,
        *,
        har: Path,
        screenshot: Path,
        links: bool = False,
    ) -> PageCapture:
        """Load `url` in a fresh context, click `selector` (the banner's reject or accept button)
        when given, and record everything; the HAR and the screenshot are written to the paths.

        A page that does not load, a button not found or the size cap reached is the capture's
        `failure`; what was seen until then is kept.

        Raises:
            BrowserUnavailableError: the browser is not running (it was never started, or it
                stopped).
        """
        from playwright.sync_api import Error

        if self._browser is None or not self._browser.is_connected():
            raise BrowserUnavailableError("the browser is not running (it stopped or crashed)")
        started = self.clock()
        width, height = self.settings.viewport
        try:
            context = self._browser.new_context(
                record_har_path=str(har),
                record_har_content="omit",
                viewport={"width": width, "height": height},
            )
        except Error as exc:
            raise BrowserUnavailableError(f"no browser context: {_first_line(exc)}") from None
        try:
            return self._visit(context, url, state, selector, started, screenshot, links)
        except Error as exc:
            if not self._browser.is_connected():
                raise BrowserUnavailableError(f"the browser stopped: {_first_line(exc)}") from None
            # The page broke the driver's step (its context went away, say): not observed.
            failure = f"the browser could not record the page: {_first_line(exc)}"
            return PageCapture(url=url, state=state, started_at=started, failure=failure)
        finally:
            with contextlib.suppress(Error):
                context.close()  # writes the HAR

    def _visit(
        self,
        context: BrowserContext,
        url: str,
        state: str,
        selector: str | None,
        started: datetime,
        screenshot: Path,
        links: bool,
    ) -> PageCapture:
        settings = self.settings
        context.set_default_timeout(settings.timeout * 1000)
        recorder = Recorder(settings.max_bytes)
        context.on("request", recorder.on_request)
        context.on("response", recorder.on_response)
        context.on("requestfailed", recorder.on_failed)
        page = context.new_page()
        page.on("websocket", recorder.on_websocket)
        recorder.attach(context.new_cdp_session(page))
        failure, status, final = _load(page, url, settings.timeout)
        loaded = failure is None
        if loaded:
            recorder.settle(page, settings.settle)
        clicked = False
        if selector is not None and failure is None:
            failure = _choose(page, recorder, selector, min(CLICK_SECONDS, settings.timeout))
            clicked = failure is None
            recorder.settle(page, settings.settle)
        # Scripts are run in the page only once it loaded: a page stuck in a script of its own
        # would hold them (and the run) forever; a screenshot has a timeout of its own.
        found = _links(page) if links and loaded else ()
        _screenshot(page, screenshot)
        if loaded:
            _hide(page)
        storage = recorder.storage(page)
        if failure is None and recorder.over_cap:
            failure = f"cut off after {recorder.received} bytes (limit {settings.max_bytes})"
        return PageCapture(
            url=url,
            state=state,
            started_at=started,
            final_url=final,
            status=status,
            failure=failure,
            clicked=clicked,
            requests=recorder.records(),
            cookies=_cookies(context),
            storage=storage,
            links=found,
            bytes_received=recorder.received,
        )


def _load(page: Page, url: str, timeout: float) -> tuple[str | None, int | None, str | None]:
    """Go to the page: (failure, HTTP status of the document, final URL)."""
    from playwright.sync_api import Error
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        response = page.goto(url, wait_until="load", timeout=timeout * 1000)
    except PlaywrightTimeout:
        return f"did not finish loading within {timeout:g} s", None, page.url or None
    except Error as exc:
        return f"did not load: {_first_line(exc)}", None, None
    status = response.status if response is not None else None
    if status is not None and status >= 400:
        return f"HTTP {status}", status, page.url
    return None, status, page.url


def _choose(page: Page, recorder: Recorder, selector: str, seconds: float) -> str | None:
    """Click the consent banner's button; None when clicked, else why not."""
    from playwright.sync_api import Error

    recorder.choice_made = True  # what the click sets off is after the choice
    try:
        page.click(selector, timeout=seconds * 1000)
    except Error as exc:
        recorder.choice_made = False
        return f"the consent button {selector!r} could not be clicked: {_first_line(exc)}"
    return None


def _links(page: Page) -> tuple[str, ...]:
    from playwright.sync_api import Error

    try:
        hrefs: Any = page.eval_on_selector_all(
            "a[href]", "els => els.slice(0, 2000).map(e => e.href)"
        )
    except Error:
        return ()
    return tuple(h for h in hrefs if isinstance(h, str))


def _screenshot(page: Page, path: Path) -> None:
    from playwright.sync_api import Error

    try:
        page.screenshot(path=str(path), timeout=10_000)
    except Error:
        path.unlink(missing_ok=True)  # the caller records that there is none


_HIDE = """() => {
  for (const [name, value] of [["visibilityState", "hidden"], ["hidden", true]]) {
    try { Object.defineProperty(document, name, {configurable: true, get: () => value}); }
    catch (e) {}
  }
  document.dispatchEvent(new Event("visibilitychange"));
  window.dispatchEvent(new PageTransitionEvent("pagehide", {persisted: false}));
}"""


def _hide(page: Page) -> None:
    """Tell the page the visitor leaves (visibilitychange to hidden, pagehide), so that what it
    sends then (analytics beacons) is recorded: a real navigation away would detach those
    requests from the page, and neither Playwright nor the page's DevTools connection sees them."""
    from playwright.sync_api import Error

    try:
        page.evaluate(_HIDE)
        page.wait_for_timeout(UNLOAD_WAIT_MS)
    except Error:
        pass


def _cookies(context: BrowserContext) -> tuple[CapturedCookie, ...]:
    from playwright.sync_api import Error

    try:
        cookies = context.cookies()
    except Error:
        return ()
    return tuple(
        CapturedCookie(
            name=cookie.get("name", ""),
            domain=cookie.get("domain", "").lstrip("."),
            path=cookie.get("path", "/"),
            expires=None if cookie.get("expires", -1) < 0 else float(cookie.get("expires", 0)),
            secure=bool(cookie.get("secure")),
            http_only=bool(cookie.get("httpOnly")),
            same_site=cookie.get("sameSite"),
        )
        for cookie in cookies
    )


__all__ = ["BrowserSettings", "Chromium", "PageCapture", "StorageKey", "find_executable"]
