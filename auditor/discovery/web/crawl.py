"""Visiting the sites: each page in each consent state in a fresh browser context, following the
site's own links up to its page limit, with the JSON record, screenshot and HAR of each written."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urldefrag, urlsplit

from auditor.core.errors import BrowserUnavailableError
from auditor.discovery.web.config import SiteSettings, WebsiteSettings
from auditor.discovery.web.files import FileRecord, hashed, write_json
from auditor.probes.pagecapture import PageCapture

NOT_PAGES = frozenset(
    [
        "pdf",
        "zip",
        "gz",
        "tgz",
        "tar",
        "7z",
        "rar",
        "jpg",
        "jpeg",
        "png",
        "gif",
        "svg",
        "webp",
        "ico",
        "mp3",
        "mp4",
        "webm",
        "mov",
        "avi",
        "doc",
        "docx",
        "xls",
        "xlsx",
        "ppt",
        "pptx",
        "odt",
        "ods",
        "csv",
        "xml",
        "json",
        "txt",
        "ics",
        "exe",
        "dmg",
        "apk",
    ]
)
"""Link targets that are files, not pages: a browser downloads them instead of showing them."""


class Browser(Protocol):
    """What the visit needs of the browser (auditor.probes.browser.Chromium)."""

    def capture(
        self,
        url: str,
        state: str,
        selector: str | None,
        *,
        har: Path,
        screenshot: Path,
        links: bool = False,
    ) -> PageCapture: ...


@dataclass(frozen=True, slots=True)
class StateVisit:
    """One page in one consent state, and its evidence files (None where one was not written)."""

    capture: PageCapture
    files: dict[str, FileRecord | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PageVisit:
    """One page of a site, in each consent state."""

    site: str
    page_id: str
    url: str
    states: tuple[StateVisit, ...]

    @property
    def failure(self) -> str | None:
        """Why some state of the page could not be observed completely, or None."""
        failures = [
            f"{v.capture.state}: {v.capture.failure}" for v in self.states if v.capture.failure
        ]
        return "; ".join(failures) or None


@dataclass(frozen=True, slots=True)
class SiteVisit:
    """The pages visited on one site; `stopped` says why the visit ended early, if it did."""

    site: SiteSettings
    pages: tuple[PageVisit, ...]
    stopped: str | None = None

    @property
    def failure(self) -> str | None:
        """Why the site was not observed completely: pages that failed, or the visit stopped."""
        failed = [page for page in self.pages if page.failure is not None]
        reasons = (
            [f"{len(failed)} of {len(self.pages)} pages not observed completely"] if failed else []
        )
        if self.stopped is not None:
            reasons.append(self.stopped)
        return "; ".join(reasons) or None


def page_id(url: str) -> str:
    """A short, stable name for a page's files: the start of its URL's SHA-256."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


def same_site_links(site: SiteSettings, links: Iterable[str]) -> list[str]:
    """The page links worth following: http(s), the organisation's own, not a file download;
    without their fragment, each once."""
    found: dict[str, None] = {}
    for link in links:
        url = urldefrag(link).url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            continue
        if not site.first_party_host(parts.hostname):
            continue
        if parts.path.rsplit(".", 1)[-1].lower() in NOT_PAGES and "." in parts.path.rsplit("/")[-1]:
            continue
        found.setdefault(url)
    return list(found)


def visit_sites(
    settings: WebsiteSettings,
    browser: Browser,
    directory: Path,
    root: Path,
    record: Callable[[SiteSettings, str, PageCapture], dict[str, Any]],
    check: Callable[[], None] = lambda: None,
) -> list[SiteVisit]:
    """Visit every site's pages in every consent state; files go under `directory` (inside the
    evidence `root`), the JSON record of each capture as `record` makes it.

    A browser that stops ends the visit of every site left: their pages are not observed.
    `check` is called between pages (it raises when the run must stop).
    """
    visits: list[SiteVisit] = []
    stopped: str | None = None
    for site in settings.sites:
        if stopped is not None:
            visits.append(SiteVisit(site, (), stopped))
            continue
        pages, stopped = _visit_site(site, browser, directory, root, record, check)
        visits.append(SiteVisit(site, tuple(pages), stopped))
    return visits


def _visit_site(
    site: SiteSettings,
    browser: Browser,
    directory: Path,
    root: Path,
    record: Callable[[SiteSettings, str, PageCapture], dict[str, Any]],
    check: Callable[[], None],
) -> tuple[list[PageVisit], str | None]:
    queue = deque(dict.fromkeys(urldefrag(url).url for url in site.start))
    seen = set(queue)
    pages: list[PageVisit] = []
    folder = directory / site.id
    folder.mkdir(parents=True, exist_ok=True)
    while queue and len(pages) < site.max_pages:
        check()
        url = queue.popleft()
        ident = page_id(url)
        states: list[StateVisit] = []
        for state in site.states:
            stem = folder / f"{ident}-{state}"
            har, shot = stem.with_suffix(".har"), stem.with_suffix(".png")
            try:
                capture = browser.capture(url, state, site.selector(state), har=har,
                                          screenshot=shot, links=state == "before")  # fmt: skip
            except BrowserUnavailableError as exc:
                return pages, f"the browser stopped: {exc}"
            files = {
                "record": write_json(stem.with_suffix(".json"), record(site, ident, capture), root),
                "screenshot": hashed(shot, root),
                "har": hashed(har, root),
            }
            states.append(StateVisit(capture, files))
            if state == "before":
                for link in same_site_links(site, capture.links):
                    if link not in seen:
                        seen.add(link)
                        queue.append(link)
        pages.append(PageVisit(site.id, ident, url, tuple(states)))
    return pages, None
