"""Parses place specs (`DE`, `aws:eu-central-1`, `aws:us-east-1-qro-1`, `org:...`) into Places."""

from __future__ import annotations

import re
from collections.abc import Iterator

from auditor.core.model import Place
from auditor.core.policies import PROVIDERS, PolicyData, Region

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
            raise ValueError(
                f"unknown country code {text!r}: use an ISO 3166-1 alpha-2 code such as DE or US"
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
            f"unknown cloud provider {prefix!r} in {text!r} (known: {', '.join(PROVIDERS)})"
        )
    region = _find_region(policies, prefix, name)
    if region is None:
        left_out = policies.left_out.get(prefix, {})
        reason = next(
            (left_out[c] for c in _candidates(prefix, name.lower()) if c in left_out), None
        )
        hint = f": left out of the region table ({reason})" if reason else ""
        raise ValueError(f"unknown {prefix} region {name!r}{hint}")
    # An AWS Local Zone keeps its own name: it can be in another country than its region.
    return Place(
        spec=f"{prefix}:{region.spec_name}",
        country=region.country,
        provider=prefix,
        region=region.name,
        zone=region.zone,
    )
