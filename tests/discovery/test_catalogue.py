"""The shipped vendor catalogue: size, unique claims, sources, countries, and how it is matched."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from auditor.core.errors import InvalidInputError
from auditor.core.inventory import CATEGORIES
from auditor.core.iso3166 import COUNTRY_CODES
from auditor.core.policies import shipped_policies
from auditor.discovery.catalogue import (
    CLAIMS,
    VENDOR_CATEGORIES,
    WEB_CATEGORIES,
    Catalogue,
    Vendor,
    load_catalogue,
)

SHIPPED = shipped_policies() / "vendors.yaml"
SOURCE = re.compile(
    r"^(memory|NetSPI|nuclei-templates|v2fly data/[a-z0-9-]+|vendor-docs(?: \(as quoted\))?: "
    r"https://|docs: https://|https://|sendgrid docs|SuperOfficeDocs)"
)
"""How a source must begin: one of the labels the file's header explains, or a URL."""
FORBIDDEN = ("disconnect", "tracker radar", "trackerradar", "duckduckgo", "webxray", "easylist")
"""Datasets whose licences forbid reusing them here; no claim may cite them."""


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@pytest.fixture(scope="module")
def raw() -> list[dict[str, object]]:
    entries: list[dict[str, object]] = yaml.safe_load(SHIPPED.read_text("utf-8"))["vendors"]
    return entries


def test_the_catalogue_covers_at_least_150_vendors_with_unique_ids(
    catalogue: Catalogue, raw: list[dict[str, object]]
) -> None:
    """The shipped file loads and validates, holds at least 150 vendors, each id once (the
    loader keeps one per id, so the raw file is counted too)."""
    ids = [entry["id"] for entry in raw]
    assert len(ids) == len(set(ids)) == len(catalogue.vendors) >= 150


def test_categories_cover_web_and_saas_and_map_to_the_inventory(catalogue: Catalogue) -> None:
    """Every category is known; web categories map to an inventory category, inventory
    categories to themselves; the groups the catalogue is for are all present."""
    used = {vendor.category for vendor in catalogue.vendors.values()}
    assert used <= set(VENDOR_CATEGORIES)
    assert set(WEB_CATEGORIES.values()) <= set(CATEGORIES)
    assert not set(WEB_CATEGORIES) & set(CATEGORIES)
    wanted = {
        "crm", "cdp", "email-marketing", "analytics", "support", "cms", "webshop", "backup",
        "payment", "advertising", "tag-manager", "fonts", "chat", "ab-testing", "video",
        "consent-management",
    }  # fmt: skip
    assert wanted <= used
    for vendor in catalogue.vendors.values():
        assert vendor.inventory_category in CATEGORIES
        if vendor.category in CATEGORIES:
            assert vendor.inventory_category == vendor.category


def test_no_pattern_is_claimed_by_two_vendors(catalogue: Catalogue) -> None:
    """A host pattern (domain or CNAME suffix), an SPF include, an MX pattern or a TXT prefix
    belongs to one vendor: the only tie-break is a longer pattern inside another vendor's."""
    kinds: dict[str, Callable[[Vendor], set[str]]] = {
        "host": lambda v: {*v.domains, *v.cname},
        "spf": lambda v: set(v.spf),
        "mx": lambda v: set(v.mx),
        "txt": lambda v: {prefix.lower() for prefix in v.txt},
    }
    for kind, claims in kinds.items():
        owners: dict[str, set[str]] = defaultdict(set)
        for vendor in catalogue.vendors.values():
            for claim in claims(vendor):
                owners[claim].add(vendor.id)
        shared = {claim: ids for claim, ids in owners.items() if len(ids) > 1}
        assert shared == {}, f"{kind} patterns claimed twice: {shared}"


def test_the_longest_pattern_wins(catalogue: Catalogue) -> None:
    """Nested claims are deliberate: Google's products inside Google, Turnstile inside
    Cloudflare; TXT prefixes likewise, the longest first."""
    expected = {
        "www.google.com": "google",
        "analytics.google.com": "google-analytics",
        "region1.google-analytics.com": "google-analytics",
        "www.googletagmanager.com": "google-tag-manager",
        "fonts.gstatic.com": "google-fonts",
        "www.gstatic.com": "google",
        "maps.googleapis.com": "google-maps",
        "challenges.cloudflare.com": "cloudflare-turnstile",
        "cdnjs.cloudflare.com": "cloudflare",
        "d1234.cloudfront.net": "aws",
        "www.youtube-nocookie.com": "youtube",
        "cdn.cookielaw.org": "onetrust",
        "consent.cookiebot.com": "cookiebot",
        "connect.facebook.net": "meta",
        "static.hotjar.com": "hotjar",
        "js.stripe.com": "stripe",
        "player.vimeo.com": "vimeo",
        "widget.intercom.io": "intercom",
        "js.hs-scripts.com": "hubspot",
        "Static.Hotjar.COM.": "hotjar",
        "hotjar.com.evil.example": None,
        "nothotjar.com": None,
    }
    assert {host: _id(catalogue.by_host(host)) for host in expected} == expected
    acme = Vendor("acme", "Acme", "other", None, None, (), (), txt=("acme",))
    acme_mail = Vendor("acme-mail", "Acme Mail", "other", None, None, (), (), txt=("ACME-mail=",))
    both = Catalogue({"acme-mail": acme_mail, "acme": acme})
    assert both.txt_prefix("acme-mail=123") == ("ACME-mail=", acme_mail)
    assert both.txt_prefix("acme-site=123") == ("acme", acme)
    assert both.by_txt("v=spf1 -all") is None


def _id(vendor: Vendor | None) -> str | None:
    return None if vendor is None else vendor.id


def test_every_claim_names_an_allowed_source(raw: list[dict[str, object]]) -> None:
    """Each claim's source is `memory` (unchecked, for the DPO to verify), a dataset the header
    explains, or a URL; no source is a dataset whose licence forbids reuse."""
    for entry in raw:
        sources = entry.get("sources", {})
        assert isinstance(sources, dict)
        assert set(sources) <= set(CLAIMS), entry["id"]
        for claim, source in sources.items():
            assert isinstance(source, str) and SOURCE.match(source), (entry["id"], claim, source)
            assert not any(name in source.lower() for name in FORBIDDEN), (entry["id"], source)


def test_headquarters_are_iso_codes(raw: list[dict[str, object]]) -> None:
    """Every headquarters is an ISO 3166-1 alpha-2 code (GB, not UK); the loader refuses
    others, and the raw file is checked too so that YAML's `NO` cannot slip through as false."""
    for entry in raw:
        if "headquarters" in entry:
            assert entry["headquarters"] in COUNTRY_CODES, entry["id"]


def test_a_file_listing_an_id_twice_is_refused(tmp_path: Path) -> None:
    """The same id twice in one file is an error naming the file and the second entry's line
    (the later entry would silently replace the earlier)."""
    local = tmp_path / "vendors.yaml"
    local.write_text(
        "vendors:\n"
        "  - id: acme\n    name: Acme\n    category: crm\n"
        "  - id: acme\n    name: Acme again\n    category: chat\n",
        encoding="utf-8",
    )
    with pytest.raises(InvalidInputError) as caught:
        load_catalogue(local)
    issue = caught.value.issues[0]
    assert issue.source == str(local) and issue.line == 5
    assert "listed twice" in issue.message


def test_a_local_entry_wins_a_tie_and_a_changed_file_is_read_again(tmp_path: Path) -> None:
    """A local vendor claiming a shipped pattern wins it; editing the local file takes effect
    on the next load (files are parsed once per version, not once per process)."""
    local = tmp_path / "vendors.yaml"
    local.write_text(
        "vendors:\n  - id: our-heatmaps\n    name: Our heatmaps\n    category: analytics\n"
        "    domains: [hotjar.com]\n    sources: {domains: https://intranet.example/contract}\n",
        encoding="utf-8",
    )
    assert _id(load_catalogue(local).by_host("static.hotjar.com")) == "our-heatmaps"
    assert _id(load_catalogue().by_host("static.hotjar.com")) == "hotjar"
    local.write_text(
        "vendors:\n  - id: our-chat\n    name: Our chat\n    category: chat\n"
        "    domains: [chat.example]\n    sources: {domains: memory}\n",
        encoding="utf-8",
    )
    os.utime(local, ns=(1, 1))  # a different modification time, whatever the clock's resolution
    reloaded = load_catalogue(local)
    assert _id(reloaded.by_host("static.hotjar.com")) == "hotjar"
    assert reloaded.vendors["our-chat"].inventory_category == "support"
