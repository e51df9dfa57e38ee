"""The `discovery:` configuration section: what to look at, and the local vendor file.

```yaml
discovery:
  vendors: local-vendors.yaml        # optional; relative to the configuration file
  domains: [example.com]
  subdomains: [careers]              # labels, or full names under a domain
  pages: ["https://www.example.com/"]
  timeout: 10                        # seconds per page
  max_page_bytes: 5000000
```

The section is validated with the rest of the configuration when it is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from auditor.core.validation import Strict
from auditor.discovery.catalogue import suffixes, under

COMMON_SUBDOMAINS = (
    "www", "mail", "shop", "blog", "help", "support", "status",
    "go", "info", "news", "email", "track", "links",
)  # fmt: skip
"""Subdomains whose CNAMEs are checked on every configured domain, besides the configured ones."""


class DiscoveryModel(Strict):
    """The `discovery:` configuration section as written."""

    vendors: str | None = None
    domains: list[str] = []
    subdomains: list[str] = []
    pages: list[str] = []
    timeout: float = Field(default=10.0, gt=0, le=120)
    max_page_bytes: int = Field(default=5_000_000, ge=1024)

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, value: list[str]) -> list[str]:
        return suffixes(value)

    @field_validator("subdomains")
    @classmethod
    def _labels(cls, value: list[str]) -> list[str]:
        return suffixes(value)

    @field_validator("pages")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"a page must be an http(s) URL: {url!r}")
        return value


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    """The `discovery:` configuration section: what to look at, and the local vendor file."""

    vendors: Path | None = None
    domains: tuple[str, ...] = ()
    subdomains: tuple[str, ...] = ()
    pages: tuple[str, ...] = ()
    timeout: float = 10.0
    max_page_bytes: int = 5_000_000

    def subdomain_names(self) -> list[str]:
        """Every subdomain whose CNAME is checked: configured and common, on every domain."""
        # A configured name under one of the domains is taken as it is; a label goes on each.
        full = [name for name in self.subdomains if any(under(name, d) for d in self.domains)]
        labels = dict.fromkeys(n for n in (*self.subdomains, *COMMON_SUBDOMAINS) if n not in full)
        names = [*full, *(f"{label}.{domain}" for domain in self.domains for label in labels)]
        return list(dict.fromkeys(names))


def discovery_settings(model: DiscoveryModel | None, base: Path) -> DiscoverySettings:
    """The validated section as settings; the local vendor file is relative to `base`."""
    parsed = model or DiscoveryModel()
    return DiscoverySettings(
        vendors=None if parsed.vendors is None else base / Path(parsed.vendors).expanduser(),
        domains=tuple(parsed.domains),
        subdomains=tuple(parsed.subdomains),
        pages=tuple(parsed.pages),
        timeout=parsed.timeout,
        max_page_bytes=parsed.max_page_bytes,
    )


def with_targets(
    settings: DiscoverySettings, domains: Sequence[str], pages: Iterable[str]
) -> DiscoverySettings:
    """The settings with extra domains and pages (from the command line) added."""
    return DiscoverySettings(
        vendors=settings.vendors,
        domains=tuple(dict.fromkeys((*settings.domains, *suffixes(list(domains))))),
        subdomains=settings.subdomains,
        pages=tuple(dict.fromkeys((*settings.pages, *pages))),
        timeout=settings.timeout,
        max_page_bytes=settings.max_page_bytes,
    )
