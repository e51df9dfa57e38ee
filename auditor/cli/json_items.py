"""The JSON text of the check document's long lists' items, made straight from field values.

A large audit's JSON holds hundreds of thousands of findings, places and endpoints. Building a
dict for each and encoding it took most of the time of writing it, and rebuilding each spooled
observation and place as an object before that most of the rest. Here each item is one template
filled in with its encoded values, from the finding itself or from the field values a spool
reads back (`Spool.rebuilt`): a location is encoded once per chunk however many addresses share
it, a resolution once however many integrations name its hostname.

The text is byte for byte `json.dumps(item, ensure_ascii=False)` of `finding_json`,
`place_json` and `observation_json` in `auditor.cli.output`, the document's definition; a
test holds the two together.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from auditor.core.model import Finding, Location, Observation, PlaceCheck, Resolution
from auditor.core.spool import Spool

_STRING: Callable[[str], str] = json.encoder.encode_basestring
"""A string as JSON, non-ASCII characters as they are (`ensure_ascii=False`); a `StrEnum`
member as its value."""


def _optional(value: str | None) -> str:
    return "null" if value is None else _STRING(value)


class _Known(dict[str | None, str]):
    """The JSON of the values of fields that take few distinct ones (verdicts, countries,
    providers, rules): each encoded once, up to `_KNOWN_MOST` of them."""

    def __missing__(self, value: str | None) -> str:
        text = _optional(value)
        if len(self) < _KNOWN_MOST:
            self[value] = text
        return text


_KNOWN_MOST = 4_096
_KNOWN = _Known()


def _template(*keys: str) -> str:
    """`{"key": %s, ...}`: the keys in order, each followed by its encoded value."""
    return "{" + ", ".join(f"{json.dumps(key)}: %s" for key in keys) + "}"


_FINDING = _template(
    "rule", "integration", "facet", "place", "country", "severity", "article", "message", "evidence"
)


def finding_text(finding: Finding, encode: Callable[[Any], str]) -> str:
    """`finding_json(finding)` as JSON; `encode` encodes its evidence (any JSON value)."""
    return _FINDING % (
        _KNOWN[finding.rule],
        _STRING(finding.integration),
        _KNOWN[finding.facet],
        _optional(finding.place),
        _KNOWN[finding.country],
        _KNOWN[finding.severity],
        _KNOWN[finding.article],
        _STRING(finding.message),
        encode(finding.evidence),
    )


_PLACE = _template("integration", "facet", "place", "country", "verdict", "basis", "via")


def _place(
    integration: str,
    facet: str,
    place: str,
    country: str | None,
    verdict: str,
    basis: str,
    via: str | None,
    probes: tuple[str, ...],
) -> str:
    """A `PlaceCheck`'s field values as `place_json` of it, as JSON."""
    return _PLACE % (
        _STRING(integration),
        _KNOWN[facet],
        _STRING(place),
        _KNOWN[country],
        _KNOWN[verdict],
        _STRING(basis),
        _optional(via),
    )


_ADDRESS = _template("address", "country", "source", "provider", "region", "zone", "asn")


def _address(
    address: str,
    country: str | None,
    source: str,
    provider: str | None,
    region: str | None,
    zone: str | None,
    service: str | None,
    network: str | None,
    asn: int | None,
    asn_org: str | None,
    edge: bool,
) -> str:
    """A `Location`'s field values as an endpoint's address in `observation_json`, as JSON."""
    return _ADDRESS % (
        _STRING(address),
        _KNOWN[country],
        _KNOWN[source],
        _KNOWN[provider],
        _KNOWN[region],
        _KNOWN[zone],
        "null" if asn is None else int.__repr__(asn),
    )


_RESOLUTION = '"status": %s, "reason": %s, "cname_chain": [%s]'


def _resolution(
    hostname: str,
    status: str,
    addresses: tuple[str, ...],
    cname_chain: tuple[str, ...],
    reason: str | None,
) -> str:
    """A `Resolution`'s field values as its keys in `observation_json`: a part of an object."""
    return _RESOLUTION % (_KNOWN[status], _optional(reason), ", ".join(map(_STRING, cname_chain)))


_ENDPOINT = '{"integration": %s, "hostname": %s, %s, "edge": %s, "addresses": [%s]}'


def _endpoint(
    integration: str,
    hostname: str,
    resolution: str,
    addresses: tuple[str, ...],
    edge_reason: str | None,
) -> str:
    """An `Observation`'s field values, its resolution and locations made by `_resolution` and
    `_address`, as `observation_json` of it, as JSON."""
    return _ENDPOINT % (
        _STRING(integration),
        _STRING(hostname),
        resolution,
        _optional(edge_reason),
        ", ".join(addresses),
    )


def place_texts(places: Collection[PlaceCheck]) -> Iterator[str]:
    """Each place as `place_json` of it, as JSON, in order."""
    return _texts(places, {PlaceCheck: _place})


def endpoint_texts(observations: Collection[Observation]) -> Iterator[str]:
    """Each observation as `observation_json` of it, as JSON, in order."""
    return _texts(
        observations, {Observation: _endpoint, Resolution: _resolution, Location: _address}
    )


def _texts(items: Collection[Any], builders: Mapping[type, Callable[..., str]]) -> Iterator[str]:
    """`items` read back by `builders`. An audit's items are a spool; a list (a test's) is
    spooled here, of the builders' classes, so that every item is made the one way."""
    if isinstance(items, Spool):
        return items.rebuilt(builders)
    spool: Spool[Any] = Spool(builders)
    spool.extend(items)
    return spool.rebuilt(builders)
