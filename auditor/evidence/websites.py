"""The evidence report's Websites section: the period's latest web run, read from its evidence
record (pages and consent states, the hashes of their files, the third parties and verdicts).

The record is read defensively: it comes from the database, and a report must say what is there
rather than fail on a record written by another version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.core.chain import EvidenceRecord
from auditor.evidence.ledgers import utc

_FILE_KINDS = ("record", "screenshot", "har")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _file(value: object) -> dict[str, Any] | None:
    entry = _mapping(value)
    if not entry:
        return None
    size = entry.get("size")
    return {
        "name": _text(entry.get("name")),
        "sha256": _text(entry.get("sha256")),
        "size": size if isinstance(size, int) and not isinstance(size, bool) else None,
    }


def _page(page: Mapping[str, Any]) -> dict[str, Any]:
    states = _mapping(page.get("states"))
    return {
        "url": _text(page.get("url")),
        "page": _text(page.get("page")),
        "states": [
            {
                "state": str(state),
                "failure": _text(_mapping(data).get("failure")),
                **{
                    kind: _file(_mapping(_mapping(data).get("files")).get(kind))
                    for kind in _FILE_KINDS
                },
            }
            for state, data in states.items()
        ],
    }


def _party(party: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "party": _text(party.get("party")),
        "name": _text(party.get("name")),
        "declared": party.get("declared") is True,
        "vendor": _text(party.get("vendor")),
        "verdict": _text(party.get("verdict")),
        "hosts": [str(host) for host in _list(party.get("hosts"))],
        "places": [
            {
                "place": _text(_mapping(place).get("place")),
                "country": _text(_mapping(place).get("country")),
                "verdict": _text(_mapping(place).get("verdict")),
                "basis": _text(_mapping(place).get("basis")),
            }
            for place in _list(party.get("places"))
        ],
        "sites": [
            {
                "site": str(site),
                "states": [str(s) for s in _list(_mapping(data).get("states"))],
                "before_choice": [str(s) for s in _list(_mapping(data).get("before_choice"))],
            }
            for site, data in sorted(_mapping(party.get("sites")).items())
        ],
    }


def websites(record: EvidenceRecord | None) -> dict[str, Any]:
    """The Websites section: the latest web run of the period, or an empty section when none
    was recorded in it."""
    if record is None:
        return {"run": None, "sites": [], "third_parties": [], "probes_failed": []}
    data = record.data()
    failed = _mapping(data.get("probes_failed"))
    return {
        "run": {
            "recorded_at": utc(record.at),
            "seq": record.seq,
            "hash": record.hash,
            "as_of": _text(data.get("as_of")),
            "complete": data.get("complete") is True,
            "directory": _text(data.get("directory")),
        },
        "sites": [
            {
                "site": _text(_mapping(site).get("site")),
                "failure": _text(_mapping(site).get("failure")),
                "pages": [_page(_mapping(page)) for page in _list(_mapping(site).get("pages"))],
            }
            for site in _list(data.get("sites"))
        ],
        "third_parties": [_party(_mapping(party)) for party in _list(data.get("third_parties"))],
        "probes_failed": [
            {"probe": str(probe), "reason": str(reason)} for probe, reason in sorted(failed.items())
        ],
    }
