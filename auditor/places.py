"""Parses place specs (`DE`, `aws:eu-central-1`, `azure:germanywc`, `org:...`) into Places."""

from __future__ import annotations

from auditor.model import Place
from auditor.policies import PROVIDERS, PolicyData

ORGANISATION_PREFIX = "org"


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
    region = policies.region(prefix, name)
    if region is None and prefix == "ovh":
        # OVHcloud names data centres by site and number (gra11, de1); the site decides the country.
        region = policies.region(prefix, name.rstrip("0123456789"))
    if region is None:
        raise ValueError(f"unknown {prefix} region {name!r}")
    return Place(
        spec=f"{prefix}:{region.name}",
        country=region.country,
        provider=prefix,
        region=region.name,
    )
