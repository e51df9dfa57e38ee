"""Web-page signals: every third-party host a page loads or sends to, matched to the catalogue."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import requests

from auditor.core.sites import first_party
from auditor.discovery.catalogue import Catalogue
from auditor.discovery.evidence import Evidence, Signal, page_probe

_URL_ATTRIBUTES = {
    "script": ("src",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "link": ("href",),
    "form": ("action",),
    "source": ("src", "srcset"),
    "embed": ("src",),
}
_URL_IN_TEXT = re.compile(r"""(?:https?:)?//([a-z0-9-]+(?:\.[a-z0-9-]+)+)""", re.IGNORECASE)
_CHUNK = 65536


class PageError(Exception):
    """A page could not be used: unreachable, too slow, too big, or not HTML."""


@dataclass
class PageFindings:
    """What the configured pages showed, and the pages that could not be read."""

    signals: list[Signal] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)  # one per configured page
    failed: dict[str, str] = field(default_factory=dict)  # probe -> why the page was not read


class _Extractor(HTMLParser):
    """Collects (element, URL) for URL attributes, and hosts named in inline scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[tuple[str, str]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        wanted = _URL_ATTRIBUTES.get(tag, ())
        for name, value in attrs:
            if name in wanted and value:
                for url in _split_srcset(value) if name == "srcset" else [value.strip()]:
                    self.urls.append((f"{tag} {name}", url))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.urls.extend(("inline script", f"//{m}") for m in _URL_IN_TEXT.findall(data))


def _split_srcset(value: str) -> list[str]:
    return [part.strip().split()[0] for part in value.split(",") if part.strip()]


def extract_urls(html: str, base_url: str) -> list[tuple[str, str]]:
    """(where, absolute URL) for every URL a page loads or submits to, in document order."""
    parser = _Extractor()
    parser.feed(html)
    parser.close()
    return [(where, urljoin(base_url, url)) for where, url in parser.urls]


def fetch_page(url: str, timeout: float, max_bytes: int) -> tuple[str, str]:
    """Fetch a page: (final URL, text). Streams and stops reading past `max_bytes`.

    Raises:
        PageError: unreachable, slower than `timeout`, an HTTP error, not text/html, too big.
    """
    try:
        with requests.get(url, timeout=timeout, stream=True, allow_redirects=True) as response:
            if response.status_code >= 400:
                raise PageError(f"HTTP {response.status_code}")
            kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind not in ("text/html", "application/xhtml+xml"):
                raise PageError(f"not HTML ({kind or 'no content type'})")
            body = bytearray()
            # requests' timeout is per read: a page that trickles in needs an overall deadline.
            deadline = time.monotonic() + timeout
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if time.monotonic() > deadline:
                    raise PageError(f"not complete within {timeout:g} s")
                if len(body) > max_bytes:
                    raise PageError(f"larger than the limit of {max_bytes} bytes")
            encoding = response.encoding or "utf-8"
            return response.url, body.decode(encoding, "replace")
    except requests.Timeout:
        raise PageError(f"no answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise PageError(f"unreachable: {exc.__class__.__name__}") from None


def page_signals(
    page_url: str, html: str, own_domains: Sequence[str], catalogue: Catalogue
) -> list[Signal]:
    """One signal per third-party host of a page (the first element naming it is the evidence);
    hosts sharing a registrable domain (Public Suffix List) with the page or with a configured
    domain are first-party."""
    own = (urlsplit(page_url).hostname or "", *own_domains)
    signals: dict[str, Signal] = {}
    for where, url in extract_urls(html, page_url):
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in ("http", "https") or not host or host in signals:
            continue
        if first_party(host, own):
            continue
        vendor = catalogue.by_host(host)
        evidence = Evidence("page", page_url, url, where)
        signals[host] = Signal(vendor.id if vendor else None, host, evidence)
    return list(signals.values())


def scan_pages(
    pages: Iterable[str],
    own_domains: Sequence[str],
    catalogue: Catalogue,
    *,
    timeout: float,
    max_bytes: int,
) -> PageFindings:
    """Fetch each page and collect its third-party hosts; a page that fails is a problem."""
    found = PageFindings()
    for url in pages:
        probe = page_probe(url)
        found.probes.append(probe)
        try:
            final_url, html = fetch_page(url, timeout, max_bytes)
        except PageError as exc:
            found.problems.append(f"{url}: {exc}")
            found.failed[probe] = str(exc)
            continue
        found.signals.extend(
            replace(signal, probe=probe)
            for signal in page_signals(final_url, html, own_domains, catalogue)
        )
    return found
