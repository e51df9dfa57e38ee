"""Renders an audit result for people (a table grouped by integration) and for tools (JSON)."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any, TextIO

from auditor import __version__
from auditor.cli.json_items import endpoint_texts, finding_text, place_texts
from auditor.core.model import Finding, Observation, PlaceCheck, Verdict
from auditor.core.results import AuditResult
from auditor.core.staleness import DataWarning

_VERDICT_ORDER = [
    Verdict.UNSAFEGUARDED,
    Verdict.UNKNOWN,
    Verdict.SCOPE_UNCONFIRMED,
    Verdict.CONSENT,
    Verdict.SAFEGUARDED,
    Verdict.ADEQUATE,
    Verdict.EDGE,
    Verdict.EEA,
]


def _utc(moment: Any) -> str:
    return str(moment.isoformat(timespec="seconds").replace("+00:00", "Z"))


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "rule": finding.rule,
        "integration": finding.integration,
        "facet": finding.facet.value if finding.facet else None,
        "place": finding.place,
        "country": finding.country,
        "severity": finding.severity.value,
        "article": finding.article,
        "message": finding.message,
        "evidence": finding.evidence,
    }


def place_json(check: PlaceCheck) -> dict[str, Any]:
    return {"integration": check.integration, **check.verdict_fields()}


def observation_json(observation: Observation) -> dict[str, Any]:
    resolution = observation.resolution
    return {
        "integration": observation.integration,
        "hostname": observation.hostname,
        "status": resolution.status,
        "reason": resolution.reason,
        "cname_chain": list(resolution.cname_chain),
        "edge": observation.edge_reason,
        "addresses": [
            {
                "address": location.address,
                "country": location.country,
                "source": location.source,
                "provider": location.provider,
                "region": location.region,
                "zone": location.zone,
                "asn": location.asn,
            }
            for location in observation.locations
        ],
    }


def warning_json(warning: DataWarning) -> dict[str, Any]:
    return {
        "kind": warning.kind,
        "source": warning.source,
        "name": warning.name,
        "built": warning.built.isoformat() if warning.built else None,
        "dated_by": warning.dated_by,
        "age_days": warning.age_days,
        "max_age_days": warning.max_age_days,
        "message": warning.message,
    }


def result_json(result: AuditResult) -> dict[str, Any]:
    """The `check --format json` document (DESIGN §3; keys are stable, more may be added)."""
    return {
        key: list(value) if isinstance(value, Iterator) else value
        for key, value in _result_items(result).items()
    }


def _result_items(result: AuditResult) -> dict[str, Any]:
    """The document's keys in order, its long lists as iterators that build one item at a time."""
    severities = Counter(finding.severity.value for finding in result.findings)
    return {
        "as_of": result.as_of.isoformat(),
        "audited_at": _utc(result.started_at),
        "integrations": len(result.integrations),
        "hostnames": result.hostnames,
        "summary": {name: severities.get(name, 0) for name in ("critical", "warning", "info")},
        "warnings": [warning_json(warning) for warning in result.warnings],
        "findings": map(finding_json, result.findings),
        "places": map(place_json, result.places),
        "endpoints": map(observation_json, result.observations),
        "data": {
            "tool_version": __version__,
            "policy_digest": result.policy_digest,
            "datasets": [
                {
                    "kind": dataset.kind,
                    "name": dataset.name,
                    "built": _utc(dataset.built) if dataset.built else None,
                    "entries": dataset.entries,
                }
                for dataset in result.datasets
            ],
        },
    }


def _encoder() -> Callable[[Any], str]:
    """`json.dumps(item, ensure_ascii=False)`, by one C encoder made once (json.dumps makes one
    per call) and without the circular-reference check (the items are trees built here)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return json.JSONEncoder(ensure_ascii=False).encode

    def fail(value: Any) -> Any:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    encode = make(None, fail, json.encoder.encode_basestring, None, ": ", ", ", False, False, True)
    return lambda item: "".join(encode(item, 0))


_ENCODE = _encoder()
_BATCH = 512  # items joined per write


def write_json(result: AuditResult, stream: TextIO) -> None:
    """Write `result_json(result)`: one top-level key per line and one list item per line.

    The long lists' items are written as they are made, straight from their field values
    (`auditor.cli.json_items`), so memory stays flat: no list of all items, and no dict or
    object for each, is ever held. The rest goes through one C encoder made once (an indented
    document goes through the pure-Python encoder, several times slower on a large audit).
    """
    document = _result_items(result)
    # The long lists as their items' JSON texts, in place of the dicts the texts are made like.
    document.update(
        findings=(finding_text(finding, _ENCODE) for finding in result.findings),
        places=place_texts(result.places),
        endpoints=endpoint_texts(result.observations),
    )
    stream.write("{\n")
    for position, (key, value) in enumerate(document.items()):
        stream.write(f"  {json.dumps(key)}: ")
        if isinstance(value, list):
            _write_items(map(_ENCODE, value), stream)
        elif isinstance(value, Iterator):
            _write_items(value, stream)
        else:
            stream.write(_ENCODE(value))
        stream.write(",\n" if position < len(document) - 1 else "\n")
    stream.write("}\n")


def _write_items(items: Iterator[str], stream: TextIO) -> None:
    """Write `[...]` with one item's JSON text per line; an empty list as `[]`."""
    batch = list(islice(items, _BATCH))
    if not batch:
        stream.write("[]")
        return
    stream.write("[\n    ")
    while batch:
        stream.write(",\n    ".join(batch))
        batch = list(islice(items, _BATCH))
        if batch:
            stream.write(",\n    ")
    stream.write("\n  ]")


def _places_line(checks: list[PlaceCheck]) -> str:
    by_verdict: dict[Verdict, list[str]] = {}
    for check in checks:
        label = f"{check.facet.value} {check.place}"
        if check.country and check.country not in check.place:
            label += f" ({check.country})"
        by_verdict.setdefault(check.verdict, []).append(label)
    return "; ".join(
        f"{verdict.value}: {', '.join(by_verdict[verdict])}"
        for verdict in _VERDICT_ORDER
        if verdict in by_verdict
    )


def terminal_safe(line: str) -> str:
    """One line of terminal output with every control character escaped (`\x1b`, `\n`, ...):
    a name or reason from a file or the database cannot move the cursor, recolour or forge lines."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in line)


def _wrap(text: str, indent: int, width: int = 110) -> list[str]:
    return textwrap.wrap(text, width=width, subsequent_indent=" " * indent, break_on_hyphens=False)


def render_table(result: AuditResult) -> str:
    """Findings grouped by integration, the integration with the worst findings first."""
    by_integration: dict[str, list[Finding]] = {i.id: [] for i in result.integrations}
    for finding in result.findings:
        by_integration[finding.integration].append(finding)
    places: dict[str, list[PlaceCheck]] = {}
    for check in result.places:
        places.setdefault(check.integration, []).append(check)
    names = {integration.id: integration.name for integration in result.integrations}

    def worst(ident: str) -> tuple[int, int, int, str]:
        findings = by_integration[ident]
        ranks = [f.severity.rank for f in findings]
        return (-max(ranks, default=0), -ranks.count(3), -len(findings), ident)

    title = (
        f"gdpr-auditor check — as of {result.as_of}, {len(result.integrations)} integrations, "
        f"{result.hostnames} hostnames"
    )
    lines = [title]
    # Under the header, not among the findings: old data makes every result below less certain.
    for warning in result.warnings:
        lines.extend(_wrap(f"  data    {warning.message}", indent=10))
    for ident in sorted(by_integration, key=worst):
        findings = by_integration[ident]
        counts = Counter(f.severity.value for f in findings)
        tally = ", ".join(f"{counts[s]} {s}" for s in ("critical", "warning", "info") if counts[s])
        lines.append("")
        lines.append(f"{ident} ({names[ident]}) — {tally or 'no findings'}")
        if ident in places:
            lines.extend(_wrap(f"  places  {_places_line(places[ident])}", indent=10))
        for finding in findings:
            head = f"  {finding.severity.value.upper():<8} {finding.rule:<30} "
            lines.extend(_wrap(head + finding.message, indent=len(head)))
    counts = Counter(f.severity.value for f in result.findings)
    lines.append("")
    lines.append(
        f"{len(result.findings)} findings: {counts['critical']} critical, {counts['warning']} "
        f"warning, {counts['info']} info"
    )
    return "\n".join(terminal_safe(line) for line in lines) + "\n"
