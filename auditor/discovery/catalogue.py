"""The vendor catalogue: policies/vendors.yaml plus a local file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from auditor.core.errors import InvalidInputError, Issue
from auditor.core.inventory import CATEGORIES
from auditor.core.iso3166 import COUNTRY_CODES
from auditor.core.policies import PROVIDERS, shipped_policies
from auditor.core.validation import Strict, entries_by_id, issues_from_validation
from auditor.core.yamlsource import YamlDocument, load_yaml

CLAIMS = (
    "headquarters",
    "dpf",
    "adequacy_scope",
    "hosting",
    "domains",
    "txt",
    "spf",
    "mx",
    "cname",
)
WEB_CATEGORIES = {
    "advertising": "other",
    "tag-manager": "analytics",
    "ab-testing": "analytics",
    "fonts": "infrastructure",
    "chat": "support",
    "video": "other",
    "maps": "other",
    "captcha": "other",
    "social": "other",
    "consent-management": "other",
}
"""Categories of the traces web pages show, which the inventory's vocabulary has no word for,
each with the nearest inventory category (what a `discover` stub is given)."""
VENDOR_CATEGORIES = (*CATEGORIES, *WEB_CATEGORIES)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SUFFIX = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(\.[a-z0-9_-]{1,63})*$")


def suffixes(values: list[str]) -> list[str]:
    cleaned = [value.strip().lower().strip(".") for value in values]
    for value in cleaned:
        if not _SUFFIX.match(value):
            raise ValueError(f"not a DNS name or suffix: {value!r}")
    return cleaned


class _Signals(Strict):
    txt: list[str] = []  # record prefixes, matched case-insensitively
    spf: list[str] = []
    mx: list[str] = []
    cname: list[str] = []

    @field_validator("spf", "mx", "cname")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return suffixes(value)

    @field_validator("txt")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        if any(not item.strip() for item in value):
            raise ValueError("a TXT prefix must not be empty")
        return value


class _Vendor(Strict):
    id: str
    name: str = Field(min_length=1)
    category: Literal[VENDOR_CATEGORIES]  # type: ignore[valid-type]
    headquarters: str | None = None
    dpf: bool | None = None
    adequacy_scope: list[str] = []  # limited decisions the vendor usually falls under: a hint
    hosting: list[str] = []
    domains: list[str] = []
    signals: _Signals = _Signals()
    sources: dict[Literal[CLAIMS], str] = {}  # type: ignore[valid-type]

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError(f"id must be a lower-case slug (a-z, 0-9, -): {value!r}")
        return value

    @field_validator("headquarters")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and value not in COUNTRY_CODES:
            raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {value!r}")
        return value

    @field_validator("hosting")
    @classmethod
    def _places(cls, value: list[str]) -> list[str]:
        for spec in value:
            prefix, sep, _ = spec.partition(":")
            if (sep and prefix not in PROVIDERS) or (not sep and spec not in COUNTRY_CODES):
                raise ValueError(f"not a country code or provider:region place: {spec!r}")
        return value

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return suffixes(value)

    @model_validator(mode="after")
    def _sourced(self) -> _Vendor:
        # Every claim made needs a source (a URL, a dataset, or "memory" to say it is unchecked).
        made = {
            "headquarters": self.headquarters is not None,
            "dpf": self.dpf is not None,
            "adequacy_scope": bool(self.adequacy_scope),
            "hosting": bool(self.hosting),
            "domains": bool(self.domains),
            "txt": bool(self.signals.txt),
            "spf": bool(self.signals.spf),
            "mx": bool(self.signals.mx),
            "cname": bool(self.signals.cname),
        }
        missing = [
            claim for claim, present in made.items() if present and claim not in self.sources
        ]
        if missing:
            raise ValueError(f"no source for: {', '.join(missing)}")
        return self


class _Catalogue(Strict):
    title: str
    updated: date
    sources: list[str]
    vendors: list[_Vendor]


class _LocalCatalogue(Strict):
    vendors: list[_Vendor]


@dataclass(frozen=True, slots=True)
class Vendor:
    """One SaaS vendor and the traces it leaves in DNS and on web pages."""

    id: str
    name: str
    category: str  # the catalogue's category: an inventory category or a web one
    headquarters: str | None
    dpf: bool | None  # a hint for the DPO, never a certification
    hosting: tuple[str, ...]
    domains: tuple[str, ...]
    txt: tuple[str, ...] = ()
    spf: tuple[str, ...] = ()
    mx: tuple[str, ...] = ()
    cname: tuple[str, ...] = ()
    adequacy_scope: tuple[str, ...] = ()  # a hint for the DPO, never a confirmation
    sources: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def inventory_category(self) -> str:
        """The inventory category nearest to the vendor's (itself, when it is one)."""
        return WEB_CATEGORIES.get(self.category, self.category)

    def owns(self, host: str) -> bool:
        """Whether a hostname is one of the vendor's domains (or below one)."""
        return any(under(host, suffix) for suffix in (*self.domains, *self.cname))


_Kind = Literal["host", "spf", "mx", "cname"]


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The known vendors, by id, in catalogue order (local entries replace shipped ones).

    A name is matched to the vendor with the longest pattern covering it; two vendors claiming
    the same pattern is a tie that the later vendor wins (so a local file's entry beats the
    shipped catalogue's), and the shipped catalogue has no such tie (its tests check)."""

    vendors: dict[str, Vendor]
    _index: dict[_Kind, dict[str, Vendor]] = field(init=False, repr=False, compare=False)
    _txt: tuple[tuple[str, Vendor], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[_Kind, dict[str, Vendor]] = {"host": {}, "spf": {}, "mx": {}, "cname": {}}
        prefixes: dict[str, Vendor] = {}
        for vendor in self.vendors.values():
            for suffix in (*vendor.domains, *vendor.cname):
                index["host"][suffix] = vendor
            for kind in ("spf", "mx", "cname"):
                for suffix in getattr(vendor, kind):
                    index[kind][suffix] = vendor
            for prefix in vendor.txt:
                prefixes[prefix.lower()] = vendor
        # Longest prefix first: the first that starts a record is the most specific one.
        ordered = tuple(sorted(prefixes.items(), key=lambda item: -len(item[0])))
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_txt", ordered)

    def by_host(self, host: str) -> Vendor | None:
        """The vendor whose domain patterns cover a hostname (the longest pattern wins)."""
        return self._lookup(host, "host")

    def matching(self, host: str, kind: Literal["spf", "mx", "cname"]) -> Vendor | None:
        """The vendor whose SPF include, MX or CNAME pattern covers a hostname."""
        return self._lookup(host, kind)

    def by_txt(self, text: str) -> Vendor | None:
        """The vendor whose verification-token prefix starts a TXT record's text (the longest
        prefix wins)."""
        match = self.txt_prefix(text)
        return None if match is None else match[1]

    def txt_prefix(self, text: str) -> tuple[str, Vendor] | None:
        """The longest catalogue prefix starting a TXT record's text, as the vendor wrote it,
        with its vendor."""
        folded = text.strip().lower()
        for prefix, vendor in self._txt:
            if folded.startswith(prefix):
                written = next(p for p in vendor.txt if p.lower() == prefix)
                return written, vendor
        return None

    def _lookup(self, host: str, kind: _Kind) -> Vendor | None:
        table = self._index[kind]
        name = host.lower().rstrip(".")
        while name:
            vendor = table.get(name)
            if vendor is not None:
                return vendor
            name = name.partition(".")[2]
        return None


def under(host: str, suffix: str) -> bool:
    """Whether `host` is `suffix` or a name below it (case and a trailing dot ignored)."""
    name = host.lower().rstrip(".")
    return name == suffix or name.endswith("." + suffix)


def _vendor(entry: _Vendor) -> Vendor:
    return Vendor(
        id=entry.id,
        name=entry.name,
        category=entry.category,
        headquarters=entry.headquarters,
        dpf=entry.dpf,
        hosting=tuple(entry.hosting),
        domains=tuple(entry.domains),
        txt=tuple(entry.signals.txt),
        spf=tuple(entry.signals.spf),
        mx=tuple(entry.signals.mx),
        cname=tuple(entry.signals.cname),
        adequacy_scope=tuple(entry.adequacy_scope),
        sources=dict(entry.sources),
    )


def _parse(doc: YamlDocument, local: bool, issues: list[Issue]) -> list[Vendor]:
    model = _LocalCatalogue if local else _Catalogue
    try:
        parsed = model.model_validate(doc.data)
    except ValidationError as exc:
        namer = entries_by_id(doc, "vendors", "vendor")
        issues.extend(issues_from_validation(exc, doc, namer, model=model))
        return []
    seen: set[str] = set()
    for number, entry in enumerate(parsed.vendors):
        if entry.id in seen:
            message = f"vendor {entry.id!r} is listed twice: each id may appear once in a file"
            issues.append(Issue(doc.source, message, line=doc.line_of(("vendors", number, "id"))))
        seen.add(entry.id)
    return [_vendor(entry) for entry in parsed.vendors]


@lru_cache(maxsize=8)
def _parsed(path: Path, local: bool, stamp: tuple[int, int]) -> tuple[tuple[Vendor, ...], ...]:
    """A file's vendors, parsed once per version of the file (`stamp`: its mtime and size).

    Raises:
        InvalidInputError: the file is missing or invalid (every problem is listed).
    """
    issues: list[Issue] = []
    vendors = _parse(load_yaml(path, source=str(path)), local, issues)
    if issues:
        raise InvalidInputError(issues)
    return (tuple(vendors),)


def _read(path: Path, local: bool) -> tuple[Vendor, ...]:
    try:
        status = path.stat()
    except OSError:
        stamp = (-1, -1)  # missing: load_yaml says so, naming the file
    else:
        stamp = (status.st_mtime_ns, status.st_size)
    return _parsed(path.resolve() if stamp[0] >= 0 else path, local, stamp)[0]


def load_catalogue(local: Path | None = None, shipped: Path | None = None) -> Catalogue:
    """Load the shipped vendor catalogue and, if given, a local file whose entries add to it
    (an entry with a shipped id replaces the shipped one; local entries come last, so a local
    entry also wins a tie on a pattern). A file is parsed again only when it changed.

    Raises:
        InvalidInputError: a file is missing or invalid (every problem is listed).
    """
    issues: list[Issue] = []
    path = shipped or shipped_policies() / "vendors.yaml"
    files = [(path, False)] + ([(local, True)] if local is not None else [])
    parsed: list[tuple[Vendor, ...]] = []
    for file, is_local in files:
        try:
            parsed.append(_read(file, is_local))
        except InvalidInputError as exc:
            issues.extend(exc.issues)
    if issues:
        raise InvalidInputError(issues)
    own = parsed[1] if len(parsed) > 1 else ()
    replaced = {vendor.id for vendor in own}
    ordered = [vendor for vendor in parsed[0] if vendor.id not in replaced] + list(own)
    return Catalogue({vendor.id: vendor for vendor in ordered})
