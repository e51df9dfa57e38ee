"""Parses place specs (`DE`, `aws:eu-central-1`, `aws:us-east-1-qro-1`, `org:...`) into Places."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from auditor.core.iso3166 import COUNTRY_NAMES
from auditor.core.model import Place
from auditor.core.policies import PROVIDERS, PolicyData, Region
from auditor.core.suggest import closest, did_you_mean

ORGANISATION_PREFIX = "org"

# What providers add to a region's or location's name for a part of it in the same place, tried
# in turn when the name itself is not in the table. Such a name is normalised to the table's
# entry: an availability zone is in its region's metro area, so `gcp:europe-west3-a` and
# `gcp:europe-west3-b` are the one place `gcp:europe-west3`, judged by the region's country.
_SUFFIXES: dict[str, tuple[re.Pattern[str], ...]] = {
    # Availability-zone letters: eu-central-1a, and us-east-1-qro-1a in a Local Zone.
    "aws": (re.compile(r"(?<=\d)[a-z]$"),),
    # Zones: europe-west3-a.
    "gcp": (re.compile(r"-[a-z]$"),),
    # Site numbers (GRA11, DE1, US-EAST-VA-1) and zone letters (EU-WEST-PAR-A, EU-WEST-LZ-LUX-A).
    "ovh": (re.compile(r"-?\d+$"), re.compile(r"-[a-z]$")),
}


def _candidates(provider: str, name: str) -> Iterator[str]:
    yield name
    for suffix in _SUFFIXES.get(provider, ()):
        shorter = suffix.sub("", name)
        if shorter and shorter != name:
            yield shorter


def _find_region(policies: PolicyData, provider: str, name: str) -> Region | None:
    lowered = name.lower()
    return next(
        (
            region
            for candidate in _candidates(provider, lowered)
            if (region := policies.region(provider, candidate)) is not None
        ),
        None,
    )


INFORMAL_NAMES = {
    "usa": "US", "america": "US", "britain": "GB", "korea": "KR", "uae": "AE",
}  # fmt: skip
"""Loose names people write for a code, beyond the country names and those in the policy data;
for suggestions only (a name is never accepted as a place)."""


PROVIDER_NAMES = {
    "amazon": "aws", "google": "gcp", "gce": "gcp", "microsoft": "azure", "oracle": "oci",
    "digitalocean": "do", "ovhcloud": "ovh",
}  # fmt: skip
"""Names people write for a provider prefix; for suggestions only."""


def _provider_hint(prefix: str, name: str) -> str:
    """` (did you mean 'aws:eu-west-1'?)` for a provider's name or a typo of its prefix."""
    provider = PROVIDER_NAMES.get(prefix) or closest(prefix, PROVIDERS)
    return "" if provider is None else f" (did you mean {f'{provider}:{name}'!r}?)"


def region_table(policies: PolicyData, provider: str) -> str:
    """The file listing a provider's regions, zones and aliases."""
    return str(Path(policies.directory) / "regions" / f"{provider}.yaml")


def _country_hint(text: str, policies: PolicyData) -> str:
    """` (did you mean 'DE'?)` for a code in lower case, a country's name or a region written
    without its provider; the empty string when nothing fits."""
    names = COUNTRY_NAMES | INFORMAL_NAMES
    for code, member in policies.eea.members.items():
        names[member.name.lower()] = code
    for decision in policies.adequacy.decisions:
        if decision.country and "-" not in decision.name and "Privacy" not in decision.name:
            names[decision.name.split(" (")[0].lower()] = decision.country
    upper = policies.canonical_country(text.upper())
    if len(text) == 2 and upper in policies.known_countries:
        return f" (did you mean {upper!r}?)"
    name = closest(text, names, cutoff=0.8)
    if name is not None:
        return f" (did you mean {names[name]!r} for {name.title()}?)"
    providers = [p for p in PROVIDERS if _find_region(policies, p, text) is not None]
    if providers:
        return f" (did you mean {f'{providers[0]}:{text.lower()}'!r}?)"
    return ""


def parse_place(spec: str, policies: PolicyData) -> Place:
    """Return the Place a spec names, with its country looked up in the policy data.

    Raises:
        ValueError: the spec is not a known country code, cloud region or organisation.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"expected a country code or cloud region, got {spec!r}")
    text = spec.strip()
    if ":" not in text:
        code = policies.canonical_country(text.upper())
        if text != text.upper() or len(text) != 2 or code not in policies.known_countries:
            what = (
                f"unknown country code {text!r}"
                if len(text) == 2
                else f"{text!r} is not a country code or a cloud region"
            )
            raise ValueError(
                f"{what}{_country_hint(text, policies)}: use an ISO 3166-1 alpha-2 code such as "
                "DE or US, or a cloud region such as aws:eu-central-1"
            )
        return Place(spec=code, country=code)
    prefix, _, name = text.partition(":")
    prefix = prefix.lower()
    if prefix == ORGANISATION_PREFIX:
        if name not in policies.adequacy.organisations:
            known = ", ".join(sorted(policies.adequacy.organisations))
            raise ValueError(f"unknown organisation {name!r} (known: {known})")
        return Place(spec=f"{prefix}:{name}", country=None, organisation=name)
    if prefix not in PROVIDERS:
        raise ValueError(
            f"unknown cloud provider {prefix!r} in {text!r}{_provider_hint(prefix, name)} "
            f"(known: {', '.join(PROVIDERS)}, and org: for organisations)"
        )
    region = _find_region(policies, prefix, name)
    if region is None:
        left_out = policies.left_out.get(prefix, {})
        reason = next(
            (left_out[c] for c in _candidates(prefix, name.lower()) if c in left_out), None
        )
        if reason:
            raise ValueError(
                f"unknown {prefix} region {name!r}: left out of the region table ({reason})"
            )
        suggestion = did_you_mean(name.lower(), policies.regions.get(prefix, {}))
        raise ValueError(
            f"unknown {prefix} region {name!r}{suggestion}; the known {prefix} regions are "
            f"listed in {region_table(policies, prefix)}"
        )
    # An AWS Local Zone keeps its own name: it can be in another country than its region.
    return Place(
        spec=f"{prefix}:{region.spec_name}",
        country=region.country,
        provider=prefix,
        region=region.name,
        zone=region.zone,
    )
