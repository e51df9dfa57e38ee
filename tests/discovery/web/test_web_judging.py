"""The web audit's pure parts: first and third party, following links, attribution, where a
party's data goes and its verdict, and what counts as acting before consent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from auditor.core.model import Location, Observation, Resolution, Verdict
from auditor.discovery.catalogue import Catalogue, Vendor
from auditor.discovery.web.config import SiteSettings
from auditor.discovery.web.crawl import PageVisit, SiteVisit, StateVisit, same_site_links
from auditor.discovery.web.parties import Attribution, sightings
from auditor.discovery.web.places import party_places, party_verdict
from auditor.probes.pagecapture import CapturedCookie, CapturedRequest, PageCapture, StorageKey
from tests.helpers import integrations_from, shipped_policies

ON = date(2026, 11, 22)
AT = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SITE = SiteSettings(
    "shop", ("https://www.shop.co.uk/",), reject="#r", accept="#a",
    essential=("fonts.cdn-provider.com", "psp"), first_party=("shop-static.net",),
)  # fmt: skip
TRACKER = Vendor("tracker", "Tracker Inc.", "analytics", "US", True, (), ("tracker.com",))
FONTS = Vendor("fonts", "Fonts Ltd", "other", "US", None, (), ("fonts.cdn-provider.com",))
CATALOGUE = Catalogue({"tracker": TRACKER, "fonts": FONTS})
INVENTORY = """
integrations:
  - id: psp
    name: Payments
    category: webshop
    role: processor
    data_categories: [payment]
    endpoints: [api.psp.example]
    hosting: [DE]
  - id: analytics
    name: Analytics
    vendor: Tracker Inc.
    category: analytics
    role: processor
    data_categories: [behavioural]
    hosting: [US]
    transfer:
      certifications: [{framework: dpf, since: 2023-09-01}]
"""


def observed(host: str, country: str | None, edge: bool = False) -> Observation:
    resolution = Resolution(host, "ok", ("192.0.2.1",))
    location = Location("192.0.2.1", country, "geoip", edge=edge)
    return Observation("", host, resolution, (location,), "edge network" if edge else None)


class TestFirstParty:
    def test_the_public_suffix_list_decides_what_is_the_same_site(self) -> None:
        assert SITE.first_party_host("www.shop.co.uk")
        assert SITE.first_party_host("img.shop.co.uk")
        assert SITE.first_party_host("cdn.shop-static.net")
        assert not SITE.first_party_host("other.co.uk")
        assert not SITE.first_party_host("shop.co.uk.tracker.com")

    def test_only_the_sites_own_pages_are_followed(self) -> None:
        links = [
            "https://www.shop.co.uk/about#team", "https://www.shop.co.uk/about",
            "https://img.shop.co.uk/catalogue.pdf", "mailto:dpo@shop.co.uk",
            "https://elsewhere.example/", "https://www.shop.co.uk/v1.2/page",
        ]  # fmt: skip
        assert same_site_links(SITE, links) == [
            "https://www.shop.co.uk/about", "https://www.shop.co.uk/v1.2/page",
        ]  # fmt: skip

    def test_states_follow_the_configured_buttons(self) -> None:
        assert SITE.states == ("before", "reject", "accept")
        assert SiteSettings("b", ("https://b.example/",)).states == ("before",)


class TestAttribution:
    def test_inventory_then_catalogue_then_the_registrable_domain(self) -> None:
        attribution = Attribution(CATALOGUE, integrations_from(INVENTORY))
        assert attribution.party("api.psp.example").key == "psp"
        assert attribution.party("cdn.psp.example").key == "psp"  # same site as an endpoint
        declared = attribution.party("collect.tracker.com")
        assert (declared.key, declared.declared, declared.vendor) == ("analytics", True, TRACKER)
        fonts = attribution.party("fonts.cdn-provider.com")
        assert (fonts.key, fonts.declared) == ("fonts", False)
        unknown = attribution.party("px.ads.unknown.co.uk")
        assert (unknown.key, unknown.declared, unknown.vendor) == ("unknown.co.uk", False, None)

    def test_essential_by_host_or_by_id(self) -> None:
        attribution = Attribution(CATALOGUE, integrations_from(INVENTORY))
        psp = attribution.party("api.psp.example")
        assert attribution.essential(SITE, psp, "api.psp.example")
        fonts = attribution.party("fonts.cdn-provider.com")
        assert attribution.essential(SITE, fonts, "fonts.cdn-provider.com")
        tracker = attribution.party("collect.tracker.com")
        assert not attribution.essential(SITE, tracker, "collect.tracker.com")


class TestPlaces:
    def test_an_undeclared_vendor_is_judged_at_its_headquarters_and_dpf_is_no_certification(
        self,
    ) -> None:
        attribution = Attribution(CATALOGUE, [])
        party = attribution.party("collect.tracker.com")
        hosts = ["collect.tracker.com"]
        places = party_places(
            party, hosts, {hosts[0]: observed(hosts[0], "DE")}, shipped_policies(), ON
        )
        verdicts = {place.place: (place.verdict, place.via) for place in places}
        assert verdicts["US"] == (Verdict.UNSAFEGUARDED, ("headquarters (catalogue)",))
        assert verdicts["DE"] == (Verdict.EEA, ("address of collect.tracker.com",))
        assert party_verdict(places, hosts, {}) is Verdict.UNSAFEGUARDED

    def test_a_declared_certified_integration_is_adequate_and_an_edge_is_no_place(self) -> None:
        attribution = Attribution(CATALOGUE, integrations_from(INVENTORY))
        party = attribution.party("collect.tracker.com")
        hosts = ["collect.tracker.com"]
        seen = {hosts[0]: observed(hosts[0], "FR", edge=True)}
        places = party_places(party, hosts, seen, shipped_policies(), ON)
        assert [(p.place, p.verdict) for p in places] == [("US", Verdict.ADEQUATE)]

    def test_an_unknown_party_behind_an_edge_is_edge_and_unlocated_is_unknown(self) -> None:
        party = Attribution(Catalogue({}), []).party("x.unknown.example")
        edge = {"x.unknown.example": observed("x.unknown.example", "FR", edge=True)}
        assert party_places(party, ["x.unknown.example"], edge, shipped_policies(), ON) == []
        assert party_verdict([], ["x.unknown.example"], edge) is Verdict.EDGE
        assert party_verdict([], ["x.unknown.example"], {}) is Verdict.UNKNOWN


def capture(state: str, requests: list[CapturedRequest], **more: object) -> PageCapture:
    return PageCapture("https://www.shop.co.uk/", state, AT, requests=tuple(requests), **more)  # type: ignore[arg-type]


class TestBeforeConsent:
    def test_before_after_reject_and_before_the_accept_click_count_after_accept_does_not(
        self,
    ) -> None:
        ads = "https://px.ads.example/p.gif"
        visit = SiteVisit(SITE, (PageVisit("shop", "p", "https://www.shop.co.uk/", (
            StateVisit(capture("before", [CapturedRequest("https://fonts.cdn-provider.com/f", "GET", "font")])),
            StateVisit(capture("reject", [CapturedRequest(ads, "GET", "image", after_choice=True)])),
            StateVisit(capture("accept", [
                CapturedRequest("https://early.example/x", "GET", "script"),
                CapturedRequest("https://late.example/x", "GET", "script", after_choice=True),
            ], cookies=(CapturedCookie("uid", "late.example", "/", AT.timestamp() + 3600),),
               storage=(StorageKey("https://late.example", "local", "k"),))),
        )),))  # fmt: skip
        found = sightings(visit, Attribution(CATALOGUE, integrations_from(INVENTORY)))
        assert found["fonts"].before_choice_states == []  # essential
        assert found["ads.example"].before_choice_states == ["reject"]
        assert found["early.example"].before_choice_states == ["accept"]
        assert found["late.example"].before_choice_states == []
        assert found["late.example"].states["accept"].cookies[0]["lifetime_days"] == 0.04


def test_the_first_party_site_makes_no_party_at_all(tmp_path: Path) -> None:
    own = [CapturedRequest("https://img.shop.co.uk/a.png", "GET", "image"),
           CapturedRequest("data:image/png;base64,AAAA", "GET", "image")]  # fmt: skip
    visit = SiteVisit(SITE, (PageVisit("shop", "p", "u", (StateVisit(capture("before", own)),)),))
    assert sightings(visit, Attribution(CATALOGUE, [])) == {}


def test_essential_entries_of_the_section_apply_to_every_site() -> None:
    from auditor.discovery.web.config import WebsitesModel, website_settings

    model = WebsitesModel.model_validate(
        {"essential": ["cmp.example"], "sites": [
            {"id": "a", "start": ["https://a.example/"], "essential": ["psp"]},
            {"id": "b", "start": ["https://b.example/"]},
        ]}
    )  # fmt: skip
    sites = website_settings(model, Path(".")).sites
    assert [site.essential for site in sites] == [("cmp.example", "psp"), ("cmp.example",)]


def test_every_configured_sites_domain_is_first_party_on_the_others() -> None:
    from auditor.discovery.web.config import WebsitesModel, website_settings

    model = WebsitesModel.model_validate(
        {"sites": [{"id": "shop", "start": ["https://www.shop.example/"]},
                   {"id": "blog", "start": ["https://blog.example.org/"]}]}
    )  # fmt: skip
    shop, blog = website_settings(model, Path(".")).sites
    assert shop.first_party_host("static.example.org") and blog.first_party_host("www.shop.example")
    assert not shop.first_party_host("tracker.example.net")
