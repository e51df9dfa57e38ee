"""The web audit for `gdpr-auditor web`: JSON for tools, a listing for people."""

from __future__ import annotations

from typing import Any

from auditor.discovery.web.audit import WebAudit
from auditor.discovery.web.records import party_json

_STATE_WORDS = {"before": "before any choice", "reject": "after reject", "accept": "after accept"}


def _utc(audit: WebAudit) -> str:
    return audit.started_at.isoformat(timespec="seconds").replace("+00:00", "Z")


def web_json(audit: WebAudit) -> dict[str, Any]:
    """The JSON document of `web --format json`, findings left to the caller to add."""
    return {
        "as_of": audit.as_of.isoformat(),
        "audited_at": _utc(audit),
        "complete": audit.complete,
        "evidence_directory": audit.directory,
        "sites": [
            {
                "site": visit.site.id,
                "failure": visit.failure,
                "pages": [
                    {
                        "url": page.url,
                        "page": page.page_id,
                        "states": {
                            state.capture.state: {
                                "failure": state.capture.failure,
                                "requests": len(state.capture.requests),
                                "cookies": len(state.capture.cookies),
                                "storage_keys": len(state.capture.storage),
                            }
                            for state in page.states
                        },
                    }
                    for page in visit.pages
                ],
            }
            for visit in audit.visits
        ],
        "third_parties": [party_json(judged) for judged in audit.parties],
        "problems": audit.problems,
    }


def render_table(audit: WebAudit) -> str:
    """A listing for people: per site, its pages and third parties; then the findings."""
    lines = []
    for visit in audit.visits:
        observed = sum(1 for page in visit.pages if page.failure is None)
        lines.append(f"site {visit.site.id}: {observed} of {len(visit.pages)} pages observed")
        for judged in audit.parties:
            for sighting in judged.sightings:
                if sighting.site != visit.site.id:
                    continue
                states = ", ".join(_STATE_WORDS[s] for s in sorted(sighting.states, key=_order))
                declared = "declared" if judged.party.declared else "NOT DECLARED"
                lines.append(
                    f"  {judged.party.name} ({', '.join(sorted(sighting.hosts))}): "
                    f"{judged.verdict.value}, {declared}; active {states}"
                )
    if audit.findings:
        lines.append(f"\n{len(audit.findings)} findings:")
        lines += [
            f"  {f.severity.value.upper():8} {f.rule} {f.integration}: {f.message}"
            for f in audit.findings
        ]
    else:
        lines.append("\nno findings")
    if audit.problems:
        lines.append("\nCould not observe:")
        lines += [f"  {problem}" for problem in audit.problems]
    lines.append(f"\nevidence files: {audit.directory}")
    return "\n".join(lines) + "\n"


def _order(state: str) -> int:
    return list(_STATE_WORDS).index(state)
