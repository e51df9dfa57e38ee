"""Who the third parties of a site are: each host attributed to the integration declaring it, or
to a catalogue vendor, or else to its registrable domain; and what each did in each consent state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from auditor.core.model import Integration
from auditor.core.sites import registrable_domain, same_site
from auditor.discovery.catalogue import Catalogue, Vendor, under
from auditor.discovery.results import declared_by
from auditor.discovery.web.config import SiteSettings
from auditor.discovery.web.crawl import SiteVisit
from auditor.probes.pagecapture import PageCapture

EXAMPLES = 5
"""Requests, cookies and storage keys kept as examples per party, site and state."""


@dataclass(frozen=True, slots=True)
class Party:
    """A third party: an integration of the inventory, a catalogue vendor, or an unknown domain.

    `key` names it in findings: the integration id when declared, else the vendor id, else the
    registrable domain of its hosts.
    """

    key: str
    name: str
    integration: Integration | None = None
    vendor: Vendor | None = None

    @property
    def declared(self) -> bool:
        return self.integration is not None


class Attribution:
    """Attributes hosts to parties, each host once."""

    def __init__(self, catalogue: Catalogue, integrations: Sequence[Integration]) -> None:
        self.catalogue = catalogue
        self.integrations = tuple(integrations)
        self._by_id = {integration.id: integration for integration in integrations}
        self._cache: dict[str, Party] = {}

    def party(self, host: str) -> Party:
        """The party a third-party host belongs to: the integration with an endpoint at or
        above the host; else the catalogue's vendor (the most specific domain pattern wins),
        declared by an integration or not; else an integration with an endpoint on the host's
        registrable domain; else that registrable domain, undeclared."""
        if host not in self._cache:
            self._cache[host] = self._attribute(host)
        return self._cache[host]

    def _attribute(self, host: str) -> Party:
        for integration in self.integrations:
            if any(under(host, endpoint) for endpoint in integration.endpoints):
                return Party(integration.id, integration.name, integration)
        vendor = self.catalogue.by_host(host)
        if vendor is not None:
            ident = declared_by(vendor, self.integrations)
            if ident is not None:
                return Party(ident, self._by_id[ident].name, self._by_id[ident], vendor)
            return Party(vendor.id, vendor.name, None, vendor)
        for integration in self.integrations:
            if any(same_site(host, endpoint) for endpoint in integration.endpoints):
                return Party(integration.id, integration.name, integration)
        domain = registrable_domain(host)
        return Party(domain, domain)

    def essential(self, site: SiteSettings, party: Party, host: str) -> bool:
        """Whether the DPO lists the host (or a domain above it) or the party's integration or
        vendor id as essential for the site."""
        ids = {party.key, party.vendor.id if party.vendor else ""}
        return any(entry in ids or under(host, entry) for entry in site.essential)


@dataclass
class Activity:
    """What one party did in one consent state of one site: requests, cookies, storage keys."""

    pages: set[str] = field(default_factory=set)
    requests: list[dict[str, object]] = field(default_factory=list)
    cookies: list[dict[str, object]] = field(default_factory=list)
    storage: list[str] = field(default_factory=list)
    before_choice: bool = False  # contacted, or set something, before the visitor chose
    contacted: int = 0


@dataclass
class Sighting:
    """One party on one site: its hosts, whether it is essential, and its activity by state."""

    party: Party
    site: str
    hosts: set[str] = field(default_factory=set)
    essential: set[str] = field(default_factory=set)  # its hosts the DPO deems essential
    states: dict[str, Activity] = field(default_factory=dict)
    pages: set[str] = field(default_factory=set)
    connected: dict[str, set[str]] = field(default_factory=dict)  # host -> addresses

    def activity(self, state: str) -> Activity:
        return self.states.setdefault(state, Activity())

    @property
    def before_choice_states(self) -> list[str]:
        """The states in which a host of it not deemed essential was contacted, or set a cookie
        or storage key, before the visitor chose or after they rejected."""
        return [state for state, activity in self.states.items() if activity.before_choice]


def host_of(url: str) -> str:
    """The lower-case host of a URL ("" when it has none)."""
    return (urlsplit(url).hostname or "").lower().rstrip(".")


def sightings(visit: SiteVisit, attribution: Attribution) -> dict[str, Sighting]:
    """Every third party of one site's visit, by party key."""
    found: dict[str, Sighting] = {}
    site = visit.site
    for page in visit.pages:
        for state in page.states:
            _capture(site, page.url, state.capture, attribution, found)
    return found


def _seen(
    site: SiteSettings,
    host: str,
    attribution: Attribution,
    found: dict[str, Sighting],
    page: str,
    state: str,
) -> tuple[Sighting, Activity, bool]:
    """The party's sighting and its activity in the state; and whether the host is essential."""
    party = attribution.party(host)
    sighting = found.setdefault(party.key, Sighting(party, site.id))
    sighting.hosts.add(host)
    sighting.pages.add(page)
    essential = attribution.essential(site, party, host)
    if essential:
        sighting.essential.add(host)
    activity = sighting.activity(state)
    activity.pages.add(page)
    return sighting, activity, essential


def _capture(
    site: SiteSettings,
    page: str,
    capture: PageCapture,
    attribution: Attribution,
    found: dict[str, Sighting],
) -> None:
    state = capture.state
    for request in capture.requests:
        host = host_of(request.url)
        if site.first_party_host(host):
            continue
        sighting, activity, essential = _seen(site, host, attribution, found, page, state)
        activity.contacted += 1
        # In the accept state, what came before the click was before the choice too.
        chosen = state == "accept" and request.after_choice
        activity.before_choice |= not essential and not chosen
        if request.remote_address:
            sighting.connected.setdefault(host, set()).add(request.remote_address)
        if len(activity.requests) < EXAMPLES:
            activity.requests.append(
                {"url": request.url, "type": request.resource_type, "page": page,
                 "initiator": request.initiator_url, "after_choice": request.after_choice}
            )  # fmt: skip
    for cookie in capture.cookies:
        if site.first_party_host(cookie.domain):
            continue
        _, activity, essential = _seen(site, cookie.domain, attribution, found, page, state)
        # After accept, when the cookie was set (before or after the click) is not known.
        activity.before_choice |= not essential and state != "accept"
        if len(activity.cookies) < EXAMPLES:
            activity.cookies.append(capture.cookie_json(cookie))
    for key in capture.storage:
        host = host_of(key.origin)
        if site.first_party_host(host):
            continue
        _, activity, essential = _seen(site, host, attribution, found, page, state)
        activity.before_choice |= not essential and state != "accept"
        if len(activity.storage) < EXAMPLES:
            activity.storage.append(f"{key.origin} {key.area}Storage {key.key}")


def third_party_flags(site: SiteSettings, hosts: Iterable[str]) -> dict[str, bool]:
    """Host -> whether it is a third party on the site (for the JSON records)."""
    return {host: not site.first_party_host(host) for host in hosts}
