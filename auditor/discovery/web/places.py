"""Where a third party's data goes, and whether that is lawful: the recipient is the vendor.

A declared integration is judged by its declared hosting places and transfer record; an
undeclared one by its catalogue headquarters with nothing recorded (the catalogue's DPF flag is a
hint, never a certification); both by the places their hosts were observed at, resolved by the
auditor and located like endpoints. A CDN edge or a point of presence in the EEA says nothing of
where the vendor keeps the data: it never makes a transfer lawful by itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from auditor.core.adequacy import Assessment, Recipient, assess
from auditor.core.model import Observation, Transfer, Verdict
from auditor.core.policies import PolicyData
from auditor.core.ports import GeoLocator, Resolver
from auditor.core.results import observe, probe_endpoints
from auditor.discovery.web.parties import Party

WORST_FIRST = (
    Verdict.UNSAFEGUARDED,
    Verdict.SCOPE_UNCONFIRMED,
    Verdict.UNKNOWN,
    Verdict.EDGE,
    Verdict.CONSENT,
    Verdict.SAFEGUARDED,
    Verdict.ADEQUATE,
    Verdict.EEA,
)
"""Verdicts from the worst to the best: a party's verdict is the worst of its places'."""


@dataclass(frozen=True, slots=True)
class WebPlace:
    """One place a third party receives visitors' data at, with the verdict on the audit day."""

    place: str  # the place spec (a country code or a cloud region)
    country: str | None
    assessment: Assessment
    via: tuple[str, ...]  # "declared hosting", "headquarters (catalogue)", "address of HOST"
    hosts: tuple[str, ...] = ()  # the observed hosts located there

    @property
    def verdict(self) -> Verdict:
        return self.assessment.verdict


def locate_hosts(
    hosts: Iterable[str], resolver: Resolver, locator: GeoLocator, policies: PolicyData
) -> dict[str, Observation]:
    """Resolve and locate each host with the auditor's own resolver and geolocator (not the
    browser's): host -> observation, edges recognised as for endpoints."""
    names = sorted(set(hosts))
    return observe(names, probe_endpoints(resolver, locator)(names, None), policies)


def recipient(party: Party) -> Recipient:
    """The recipient's transfer record: the declared integration's, or nothing recorded."""
    if party.integration is not None:
        return Recipient.of(party.integration)
    return Recipient(Transfer())


def party_places(
    party: Party,
    hosts: Sequence[str],
    observed: Mapping[str, Observation],
    policies: PolicyData,
    on: date,
) -> list[WebPlace]:
    """Every place the party receives visitors' data at, by place spec."""
    who = recipient(party)
    places: dict[str, WebPlace] = {}

    def add(spec: str, country: str | None, via: str, host: str | None = None,
            organisation: str | None = None) -> None:  # fmt: skip
        known = places.get(spec)
        if known is None:
            judged = assess(country, who, policies, on, organisation=organisation)
            known = WebPlace(spec, country, judged, ())
        places[spec] = WebPlace(
            spec,
            country,
            known.assessment,
            tuple(dict.fromkeys((*known.via, via))),
            tuple(dict.fromkeys((*known.hosts, *([host] if host else [])))),
        )

    if party.integration is not None:
        for place in party.integration.hosting:
            add(place.spec, place.country, "declared hosting", organisation=place.organisation)
    elif party.vendor is not None and party.vendor.headquarters is not None:
        add(party.vendor.headquarters, party.vendor.headquarters, "headquarters (catalogue)")
    for host in sorted(hosts):
        observation = observed.get(host)
        if observation is None or observation.edge:
            continue
        for country in sorted({loc.country for loc in observation.locations if loc.country}):
            add(country, country, f"address of {host}", host)
    return sorted(places.values(), key=lambda place: place.place)


def party_verdict(
    places: Sequence[WebPlace], hosts: Sequence[str], observed: Mapping[str, Observation]
) -> Verdict:
    """The worst verdict of the party's places; without any, `edge` when every host is an edge,
    else `unknown`."""
    if places:
        return min((place.verdict for place in places), key=WORST_FIRST.index)
    if hosts and all((o := observed.get(host)) is not None and o.edge for host in hosts):
        return Verdict.EDGE
    return Verdict.UNKNOWN
