"""Location rules: endpoints observed outside the declared places, or not located at all."""

from __future__ import annotations

from collections.abc import Iterator

from auditor.core.model import Facet, Finding, Integration, Location, endpoint_probe
from auditor.transfers.rules import AuditContext, rule


@rule("location-drift", "location-unverified")
def location_rules(context: AuditContext) -> Iterator[Finding]:
    """Compare what DNS and geolocation observed with what the inventory declares."""
    for integration_id, observations in context.observations.items():
        integration = context.integrations[integration_id]
        declared = {place.country for place in integration.hosting if place.country is not None}
        drift: dict[str, list[str]] = {}
        for observation in observations:
            resolution = observation.resolution
            probe = (endpoint_probe(observation.hostname),)
            if not resolution.ok:
                yield context.finding(
                    "location-unverified",
                    integration,
                    f"endpoint {observation.hostname} could not be resolved ({resolution.status}: "
                    f"{resolution.reason or 'no reason given'}); its location is unverified",
                    facet=Facet.ENDPOINT,
                    place=observation.hostname,
                    evidence={"status": resolution.status, "reason": resolution.reason},
                    probes=probe,
                )
                continue
            if resolution.reason is not None:  # addresses of one family, the other's lookup failed
                yield context.finding(
                    "location-unverified",
                    integration,
                    f"endpoint {observation.hostname} resolved only in part ({resolution.reason});"
                    " the addresses that lookup would give are unverified",
                    facet=Facet.ENDPOINT,
                    place=observation.hostname,
                    evidence={"status": "partial", "reason": resolution.reason},
                    probes=probe,
                )
            if observation.edge:
                continue  # a CDN edge's location says nothing about where the data rests
            unlocated = [loc for loc in observation.locations if loc.country is None]
            if unlocated:
                yield _unlocated(context, integration, observation.hostname, unlocated, probe)
            if not declared:
                continue  # contract-location-undisclosed covers an integration declaring nothing
            for location in observation.locations:
                if location.country is not None and location.country not in declared:
                    drift.setdefault(location.country, []).append(observation.hostname)
        for country, hostnames in sorted(drift.items()):
            names = sorted(set(hostnames))
            yield context.finding(
                "location-drift",
                integration,
                f"endpoint {', '.join(names)} is served from {country}, which is not among the "
                f"declared hosting places ({', '.join(sorted(declared))})",
                facet=Facet.ENDPOINT,
                place=country,
                country=country,
                evidence={"hostnames": names, "declared": sorted(declared)},
                probes=tuple(endpoint_probe(name) for name in names),
            )


def _unlocated(
    context: AuditContext,
    integration: Integration,
    hostname: str,
    unlocated: list[Location],
    probes: tuple[str, ...],
) -> Finding:
    """The location-unverified finding for addresses nothing locates.

    An address in a provider's range whose region or zone the tables do not map (a new region,
    an AWS border group of an unknown Local Zone) names it, so the DPO sees why it is unlocated
    rather than placed in the parent region's country.
    """
    unmapped = sorted(
        {
            f"{loc.provider}:{loc.zone or loc.region}"
            for loc in unlocated
            if loc.provider is not None and (loc.zone or loc.region)
        }
    )
    message = (
        f"endpoint {hostname} resolves to {len(unlocated)} address(es) "
        "that no IP-range file or GeoIP database locates"
    )
    evidence: dict[str, object] = {"addresses": [loc.address for loc in unlocated]}
    if unmapped:
        message += f" (in {', '.join(unmapped)}, which the region tables do not map)"
        evidence["unmapped"] = unmapped
    return context.finding(
        "location-unverified",
        integration,
        message,
        facet=Facet.ENDPOINT,
        place=hostname,
        evidence=evidence,
        probes=probes,
    )
