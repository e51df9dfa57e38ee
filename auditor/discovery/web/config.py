"""The `websites:` configuration section: the organisation's sites and how the browser loads them.

```yaml
websites:
  browser: /usr/lib/chromium/chromium   # optional: found automatically
  timeout: 30                           # seconds for a page to load
  settle: 3                             # seconds to wait after the load and after a click
  max_page_bytes: 20000000              # per page and consent state
  essential: [consent.example-cmp.com]  # essential on every site (added to each site's own)
  sites:
    - id: shop                          # the label in metrics: never a URL or host name
      start: ["https://shop.example.com/"]
      max_pages: 10                     # pages visited, following the site's own links
      reject: "#cookie-reject"          # CSS selectors of the consent banner's buttons
      accept: "#cookie-accept"
      essential: [payments.example-psp.com, stripe]   # hosts, or integration or vendor ids
      first_party: [example-static.com] # other domains the organisation itself runs
```

The section is validated with the rest of the configuration when it is loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from auditor.core.sites import registrable_domain
from auditor.core.validation import Strict
from auditor.discovery.catalogue import suffixes, under
from auditor.probes.browser import BrowserSettings

_SITE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class SiteModel(Strict):
    """One site under `websites.sites` as written."""

    id: str
    start: list[str] = Field(min_length=1)
    max_pages: int = Field(default=10, ge=1, le=1000)
    reject: str | None = Field(default=None, min_length=1)
    accept: str | None = Field(default=None, min_length=1)
    essential: list[str] = []
    first_party: list[str] = []

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SITE_ID.match(value):
            raise ValueError(
                f"a site id is a lower-case label (a-z, 0-9, - and _), not a URL: {value!r}"
            )
        return value

    @field_validator("start")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"a start page must be an http(s) URL: {url!r}")
        return value

    @field_validator("essential")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        return suffixes(value)

    @field_validator("first_party")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return suffixes(value)


class WebsitesModel(Strict):
    """The `websites:` configuration section as written."""

    browser: str | None = None
    browser_args: list[str] = []  # extra Chromium switches
    timeout: float = Field(default=30.0, gt=0, le=300)
    settle: float = Field(default=3.0, ge=0, le=60)
    max_page_bytes: int = Field(default=20_000_000, ge=100_000)
    essential: list[str] = []  # essential on every site
    sites: list[SiteModel] = []

    @field_validator("essential")
    @classmethod
    def _entries(cls, value: list[str]) -> list[str]:
        return suffixes(value)

    @model_validator(mode="after")
    def _unique(self) -> WebsitesModel:
        ids = [site.id for site in self.sites]
        twice = sorted({ident for ident in ids if ids.count(ident) > 1})
        if twice:
            raise ValueError(f"site ids must be unique: {', '.join(twice)}")
        return self


@dataclass(frozen=True, slots=True)
class SiteSettings:
    """One of the organisation's sites: where to start, how far to go, the banner's buttons,
    what the DPO deems essential and which other domains are the organisation's own."""

    id: str
    start: tuple[str, ...]
    max_pages: int = 10
    reject: str | None = None
    accept: str | None = None
    essential: tuple[str, ...] = ()
    first_party: tuple[str, ...] = ()

    @property
    def states(self) -> tuple[str, ...]:
        """The consent states each page is loaded in: before any choice, and after each
        choice whose button the configuration names."""
        chosen = (("reject", self.reject), ("accept", self.accept))
        return ("before", *(state for state, selector in chosen if selector is not None))

    def selector(self, state: str) -> str | None:
        """The button clicked in a consent state (None before any choice)."""
        return {"reject": self.reject, "accept": self.accept}.get(state)

    @property
    def own_domains(self) -> frozenset[str]:
        """The registrable domains of the start pages and the configured first-party domains."""
        starts = {registrable_domain(urlsplit(url).hostname or "") for url in self.start}
        return frozenset({*starts, *self.first_party})

    def first_party_host(self, host: str) -> bool:
        """Whether a host is the organisation's own on this site (its registrable domain, per
        the Public Suffix List, is a start page's, or it is under a configured domain)."""
        if not host:
            return True  # data: and blob: URLs, and the like, go nowhere
        own = self.own_domains
        return registrable_domain(host) in own or any(under(host, domain) for domain in own)


@dataclass(frozen=True, slots=True)
class WebsiteSettings:
    """The `websites:` section: the browser's settings and the sites."""

    browser: BrowserSettings = field(default_factory=BrowserSettings)
    sites: tuple[SiteSettings, ...] = ()


def website_settings(model: WebsitesModel | None, base: Path) -> WebsiteSettings:
    """The validated section as settings; the browser's path is relative to `base`. Every
    site's own domains are first party on the others: they are all the organisation's."""
    parsed = model or WebsitesModel()
    executable = None if parsed.browser is None else base / Path(parsed.browser).expanduser()
    own = [
        registrable_domain(urlsplit(url).hostname or "") for s in parsed.sites for url in s.start
    ]
    return WebsiteSettings(
        browser=BrowserSettings(
            executable=executable,
            args=tuple(parsed.browser_args),
            timeout=parsed.timeout,
            settle=parsed.settle,
            max_bytes=parsed.max_page_bytes,
        ),
        sites=tuple(
            SiteSettings(
                id=site.id,
                start=tuple(site.start),
                max_pages=site.max_pages,
                reject=site.reject,
                accept=site.accept,
                essential=tuple(dict.fromkeys((*parsed.essential, *site.essential))),
                first_party=tuple(dict.fromkeys((*site.first_party, *own))),
            )
            for site in parsed.sites
        ),
    )
