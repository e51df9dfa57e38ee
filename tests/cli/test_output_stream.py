"""The JSON output is written item by item, in chunks: any number of items gives valid JSON, and
the long lists' items, made straight from field values, are byte for byte what `json.dumps`
makes of the document's dicts, whether the audit's results were spooled to a file or not."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from auditor.cli.output import _write_items, result_json, write_json
from auditor.core import spool
from auditor.core.model import (
    Facet,
    Finding,
    Location,
    Observation,
    PlaceCheck,
    Resolution,
    Severity,
    Verdict,
)
from auditor.core.results import AuditResult
from auditor.core.spool import Spool


@pytest.mark.parametrize("count", [0, 1, 2, 511, 512, 513, 1024, 1025, 2000])
def test_lists_of_any_length_are_written_as_valid_json_one_item_per_line(count: int) -> None:
    items = [{"n": number, "text": "é"} for number in range(count)]
    stream = io.StringIO()
    _write_items((json.dumps(item, ensure_ascii=False) for item in items), stream)
    text = stream.getvalue()
    assert json.loads(text) == items
    assert text.count("\n") == (count + 1 if count else 0)


# Strings JSON escapes, and some it does not with ensure_ascii=False.
_ODD = [
    'say "no"',
    "back\\slash",
    "tab\there",
    "new\nline",
    "nul\x00",
    "é ü 東京",
    "\u2028 \ud83d\ude00",
]


def _odd(number: int) -> str:
    return _ODD[number % len(_ODD)] + str(number)


def _result(count: int) -> AuditResult:
    shared = Location("192.0.2.1", "DE", "ip-ranges:aws", "aws", "eu-central-1", "z", asn=16509)
    observations = []
    places = []
    findings = []
    for n in range(count):
        own = Location(f"2001:db8::{n}", None if n % 3 else "US", _odd(n), asn=None if n % 2 else n)
        addresses = () if n % 4 == 0 else (own, shared)[: n % 3]
        resolution = Resolution(
            f"h{n}.example",
            ("ok", "timeout", "nxdomain")[n % 3],
            tuple(location.address for location in addresses),
            tuple(_odd(n + k) for k in range(n % 3)),
            None if n % 2 else _odd(n),
        )
        edge = _odd(n) if n % 5 == 0 else None
        observations.append(Observation(_odd(n), f"h{n}.example", resolution, addresses, edge))
        places.append(
            PlaceCheck(
                _odd(n),
                list(Facet)[n % len(Facet)],
                _odd(n + 1),
                None if n % 4 == 1 else "DE",
                list(Verdict)[n % len(Verdict)],
                _odd(n + 2),
                None if n % 2 else _odd(n + 3),
                probes=("p",),
            )
        )
        evidence: dict[str, Any] = {"n": n, "odd": [_odd(n), None, 1.5, True]} if n % 2 else {}
        findings.append(
            Finding(
                _odd(n),
                _odd(n + 1),
                list(Severity)[n % 3],
                _odd(n + 2),
                _odd(n + 3),
                None if n % 3 else Facet.ENDPOINT,
                None if n % 4 else _odd(n + 4),
                None if n % 5 else "US",
                evidence,
            )
        )
    return AuditResult(
        as_of=date(2026, 11, 22),
        started_at=datetime(2026, 11, 22, 10, tzinfo=UTC),
        finished_at=datetime(2026, 11, 22, 10, 1, tzinfo=UTC),
        integrations=(),
        observations=observations,
        places=places,
        findings=tuple(findings),
        policy_digest="sha256:0",
    )


def _dumped(result: AuditResult) -> str:
    """`result_json` laid out as `write_json` lays it out, each part by `json.dumps`."""
    parts = []
    for key, value in result_json(result).items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(json.dumps(item, ensure_ascii=False) for item in value)
            parts.append(f'  "{key}": [\n    {items}\n  ]')
        else:
            parts.append(f'  "{key}": {json.dumps(value, ensure_ascii=False)}')
    return "{\n" + ",\n".join(parts) + "\n}\n"


@pytest.mark.parametrize("count", [0, 1, 7, 40])
def test_spooled_and_in_memory_results_are_written_as_json_dumps_writes_the_document(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_memory = _result(count)
    monkeypatch.setattr(spool, "CHUNK", 3)  # several chunks in the file, and a tail
    observations: Spool[Observation] = Spool((Observation, Resolution, Location))
    observations.extend(in_memory.observations)
    places: Spool[PlaceCheck] = Spool((PlaceCheck,))
    places.extend(in_memory.places)
    spooled = replace(in_memory, observations=observations, places=places)
    expected = _dumped(in_memory)

    for result in (in_memory, spooled):
        stream = io.StringIO()
        write_json(result, stream)
        assert stream.getvalue() == expected
