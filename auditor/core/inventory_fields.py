"""The inventory's field types: each value checked as it is validated, against the policy data
the validation context carries (places, countries, adequacy decisions, frameworks, purposes)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationInfo, WithJsonSchema

from auditor.core.durations import DurationText
from auditor.core.iso3166 import COUNTRY_CODES
from auditor.core.model import Place
from auditor.core.places import parse_place
from auditor.core.policies import PolicyData

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""An id or a name: a lower-case slug."""
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _hostname(value: str) -> str:
    name = value.strip().lower().rstrip(".")
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError(f"not a valid hostname: {value!r}")
    return name


def resolve_places(
    values: Iterable[str], policies: PolicyData, known: dict[str, Place] | None = None
) -> tuple[Place, ...]:
    """Parse place specs, dropping repeats; raises ValueError naming every bad one by index.

    `known` holds the specs already parsed against the same policy data, and gains the new ones.
    """
    places: list[Place] = []
    errors = []
    for index, spec in enumerate(values):
        place = known.get(spec) if known is not None and isinstance(spec, str) else None
        if place is None:
            try:
                place = parse_place(spec, policies)
            except ValueError as exc:
                errors.append(f"[{index}] {exc}")
                continue
            if known is not None and isinstance(spec, str):
                known[spec] = place
        if place not in places:
            places.append(place)
    if errors:
        raise ValueError("; ".join(errors))
    return tuple(places)


def _check_place(value: str, info: ValidationInfo) -> str:
    context = info.context or {}
    known: dict[str, Place] | None = context.get("places")
    if known is None or value not in known:
        place = parse_place(value, context["policies"])
        if known is not None:
            known[value] = place
    return value


def _policies(info: ValidationInfo) -> PolicyData:
    policies: PolicyData = (info.context or {})["policies"]
    return policies


def _check_country(value: str, info: ValidationInfo) -> str:
    code = _policies(info).canonical_country(value)  # UK -> GB, EL -> GR, as for places
    if code not in COUNTRY_CODES:
        raise ValueError(f"not an ISO 3166-1 alpha-2 country code: {value!r}")
    return code


def _check_generations(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("name at least one generation, such as {daily: P7D}, or leave it out")
    bad = [name for name in value if not SLUG.match(str(name))]
    if bad:
        raise ValueError(f"generation names are lower-case words such as daily: {bad[0]!r}")
    return value


def _check_limited_decision(value: str, info: ValidationInfo) -> str:
    adequacy = _policies(info).adequacy
    decision = adequacy.decision(value)
    limited = ", ".join(d.id for d in adequacy.limited)
    if decision is None:
        raise ValueError(
            f"unknown adequacy decision {value!r} (limited-scope decisions: {limited})"
        )
    if decision.scope != "limited":
        raise ValueError(
            f"{value!r} is not a limited-scope decision, so there is no scope to confirm "
            f"(limited-scope decisions: {limited})"
        )
    return value


def _check_framework(value: str, info: ValidationInfo) -> str:
    frameworks = _policies(info).adequacy.frameworks
    if value not in frameworks:
        raise ValueError(f"unknown framework {value!r} (known: {', '.join(sorted(frameworks))})")
    return value


def _check_purpose(value: str, info: ValidationInfo) -> str:
    purposes = _policies(info).adequacy.purposes
    if value not in purposes:
        raise ValueError(
            f"unknown purpose {value!r}: only purposes some adequacy decision excludes are "
            f"recorded ({', '.join(sorted(purposes))})"
        )
    return value


_PLACES_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Places: ISO 3166-1 alpha-2 codes (DE), cloud regions (aws:eu-central-1, "
    "gcp:europe-west3, azure:westeurope, oci:eu-frankfurt-1, do:fra1, hetzner:fsn1, ovh:gra) "
    "or international organisations (org:european-patent-organisation).",
}
PlaceSpec = Annotated[str, AfterValidator(_check_place)]
PlaceSpecs = Annotated[list[PlaceSpec], WithJsonSchema(_PLACES_SCHEMA, mode="validation")]
"""Country codes, cloud regions or organisations, checked one by one (so that each error names
its own item and line) against the policy data in the context."""
CountryCode = Annotated[str, AfterValidator(_check_country)]
Generations = Annotated[dict[str, DurationText], AfterValidator(_check_generations)]
Hostname = Annotated[str, AfterValidator(_hostname)]
LimitedDecisionId = Annotated[str, AfterValidator(_check_limited_decision)]
FrameworkName = Annotated[str, AfterValidator(_check_framework)]
Purpose = Annotated[str, AfterValidator(_check_purpose)]
