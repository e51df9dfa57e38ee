"""The web rules: pure functions of what the browser saw, the inventory and the policy data.

- `web-transfer-unsafeguarded` (Art. 44): visitors' browsers send at least their IP address to a
  party at a place with no adequacy in scope and no safeguard.
- `web-tracking-before-consent` (Art. 5(3) ePrivacy Directive, Art. 6(1)(a) GDPR): a third party
  the DPO does not deem essential is contacted, or sets a cookie or storage key, before the
  visitor chose or after they rejected.
- `web-third-party-undeclared` (Art. 30): a third party the inventory does not declare.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from auditor.core.model import Facet, Finding, Observation, Verdict
from auditor.core.policies import PolicyData
from auditor.discovery.web.parties import Party, Sighting
from auditor.discovery.web.places import WebPlace

PAGES_SHOWN = 10
"""Pages named in a finding's evidence, at most (the JSON records have every one)."""


def site_probe(site: str) -> str:
    """The probe scope of one site's visit: it fails when any page of it was not observed."""
    return f"web-site:{site}"


def page_probe(site: str, url: str) -> str:
    """The probe scope of one page of a site, in every consent state."""
    return f"web-page:{site}:{url}"


def host_probe(host: str) -> str:
    """The probe scope of resolving and locating one third-party host."""
    return f"web-host:{host}"


@dataclass(frozen=True, slots=True)
class JudgedParty:
    """A third party across every site, with its places and the worst verdict among them."""

    party: Party
    sightings: tuple[Sighting, ...]  # one per site it was seen on
    places: tuple[WebPlace, ...]
    verdict: Verdict

    @property
    def hosts(self) -> list[str]:
        return sorted({host for sighting in self.sightings for host in sighting.hosts})

    @property
    def sites(self) -> list[str]:
        return [sighting.site for sighting in self.sightings]

    def probes(self, hosts: Sequence[str] = ()) -> tuple[str, ...]:
        """The sites and pages it was seen on, and the given hosts' lookups."""
        pages = sorted({page_probe(s.site, page) for s in self.sightings for page in s.pages})
        sites = [site_probe(site) for site in self.sites]
        return (*sites, *pages, *(host_probe(host) for host in sorted(hosts)))


def web_findings(
    parties: Sequence[JudgedParty],
    observed: Mapping[str, Observation],
    policies: PolicyData,
    on: date,
) -> list[Finding]:
    """Every web finding of the run."""
    found: list[Finding] = []
    for judged in parties:
        found += _transfers(judged, observed, policies, on)
        found += _before_consent(judged, policies)
        if not judged.party.declared:
            found.append(_undeclared(judged, policies))
    return found


def _pages(sightings: Sequence[Sighting]) -> list[str]:
    return sorted({page for sighting in sightings for page in sighting.pages})[:PAGES_SHOWN]


def _transfers(
    judged: JudgedParty, observed: Mapping[str, Observation], policies: PolicyData, on: date
) -> Iterator[Finding]:
    party = judged.party
    for place in judged.places:
        if place.verdict is not Verdict.UNSAFEGUARDED:
            continue
        where = (
            place.place
            if place.country in (None, place.place)
            else f"{place.place} ({place.country})"
        )
        message = (
            f"pages of {_sites(judged.sites)} make visitors' browsers send at least their IP "
            f"address to {party.name} ({', '.join(judged.hosts)}), which receives it at {where} "
            f"({', '.join(place.via)}): no adequacy in scope and no safeguard "
            f"({place.assessment.reason})"
        )
        if party.vendor is not None and party.vendor.dpf and not party.declared:
            message += (
                "; the vendor catalogue lists it on the DPF List, which counts only once the "
                "inventory records the certification"
            )
        evidence: dict[str, Any] = {
            "sites": judged.sites,
            "hosts": judged.hosts,
            "via": list(place.via),
            "reason": place.assessment.reason,
            "as_of": on.isoformat(),
            "declared": party.declared,
            "pages": _pages(judged.sightings),
            "connected": _connected(judged.sightings),
            "resolved": {
                h: list(observed[h].resolution.addresses) for h in place.hosts if h in observed
            },
        }
        if place.assessment.certifications:
            evidence["certifications"] = [c.describe() for c in place.assessment.certifications]
        yield policies.finding(
            "web-transfer-unsafeguarded", party.key, message, facet=Facet.WEB,
            place=place.place, country=place.country, evidence=evidence,
            probes=judged.probes(place.hosts),
        )  # fmt: skip


def _before_consent(judged: JudgedParty, policies: PolicyData) -> Iterator[Finding]:
    party = judged.party
    for sighting in judged.sightings:
        states = sighting.before_choice_states
        if not states:
            continue
        wording = {"before": "before the visitor chose", "reject": "after they rejected",
                   "accept": "before the visitor accepted"}  # fmt: skip
        when = " and ".join(dict.fromkeys(wording[state] for state in states))
        acts = {s: sighting.states[s] for s in states}
        what = []
        if any(a.contacted for a in acts.values()):
            what.append("is contacted")
        if any(a.cookies for a in acts.values()):
            what.append("sets cookies")
        if any(a.storage for a in acts.values()):
            what.append("sets storage keys")
        message = (
            f"on site {sighting.site}, {party.name} ({', '.join(sorted(sighting.hosts))}), which "
            f"is not listed as essential, {' and '.join(what) or 'is active'} {when}"
        )
        evidence = {
            "site": sighting.site,
            "states": {
                state: {
                    "pages": sorted(a.pages)[:PAGES_SHOWN],
                    "requests": a.requests,
                    "cookies": a.cookies,
                    "storage": a.storage,
                }
                for state, a in acts.items()
            },
        }
        yield policies.finding(
            "web-tracking-before-consent", party.key, message, facet=Facet.WEB,
            place=sighting.site, evidence=evidence, probes=_probes(sighting),
        )  # fmt: skip


def _undeclared(judged: JudgedParty, policies: PolicyData) -> Finding:
    party = judged.party
    known = (
        f"{party.vendor.name}, a catalogue vendor"
        if party.vendor
        else "not in the vendor catalogue"
    )
    message = (
        f"pages of {_sites(judged.sites)} contact {party.name} ({', '.join(judged.hosts)}; "
        f"{known}), but no inventory entry declares it"
    )
    evidence = {"sites": judged.sites, "hosts": judged.hosts, "pages": _pages(judged.sightings),
                "vendor": party.vendor.id if party.vendor else None}  # fmt: skip
    return policies.finding(
        "web-third-party-undeclared", party.key, message, facet=Facet.WEB,
        evidence=evidence, probes=judged.probes(),
    )  # fmt: skip


def _probes(sighting: Sighting) -> tuple[str, ...]:
    pages = sorted(page_probe(sighting.site, page) for page in sighting.pages)
    return (site_probe(sighting.site), *pages)


def _sites(sites: Sequence[str]) -> str:
    return ("site " if len(sites) == 1 else "sites ") + ", ".join(sites)


def _connected(sightings: Sequence[Sighting]) -> dict[str, list[str]]:
    """Host -> the addresses the browser connected to (kept as evidence, not judged)."""
    merged: dict[str, set[str]] = {}
    for sighting in sightings:
        for host, addresses in sighting.connected.items():
            merged.setdefault(host, set()).update(addresses)
    return {host: sorted(addresses) for host, addresses in sorted(merged.items())}
