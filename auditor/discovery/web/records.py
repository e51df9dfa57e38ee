"""The web audit's records: the JSON file of one page in one consent state, and the evidence
chain's record of a run, which holds the SHA-256 of every file the run wrote."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditor.discovery.web.config import SiteSettings
from auditor.discovery.web.parties import Attribution, host_of
from auditor.probes.pagecapture import PageCapture

if TYPE_CHECKING:
    from auditor.discovery.web.audit import WebAudit
    from auditor.discovery.web.rules import JudgedParty

RECORD = "gdpr-auditor web page"
RECORD_VERSION = 1


def _utc(capture: PageCapture) -> str:
    return capture.started_at.isoformat(timespec="seconds").replace("+00:00", "Z")


def page_record(
    site: SiteSettings, page: str, capture: PageCapture, *, attribution: Attribution
) -> dict[str, Any]:
    """The JSON record of one capture: every request, cookie and storage key, each marked first
    or third party, and third parties with the party they are attributed to."""

    def party(host: str) -> dict[str, Any]:
        if site.first_party_host(host):
            return {"third_party": False}
        found = attribution.party(host)
        return {"third_party": True, "party": found.key, "declared": found.declared,
                "essential": attribution.essential(site, found, host)}  # fmt: skip

    return {
        "record": RECORD,
        "version": RECORD_VERSION,
        "site": site.id,
        "page": page,
        "url": capture.url,
        "state": capture.state,
        "started_at": _utc(capture),
        "final_url": capture.final_url,
        "status": capture.status,
        "failure": capture.failure,
        "clicked": capture.clicked,
        "bytes_received": capture.bytes_received,
        "requests": [
            {**request.as_json(), "host": host_of(request.url), **party(host_of(request.url))}
            for request in capture.requests
        ],
        "cookies": [
            {**capture.cookie_json(cookie), **party(cookie.domain)} for cookie in capture.cookies
        ],
        "storage": [{**key.as_json(), **party(host_of(key.origin))} for key in capture.storage],
    }


def party_json(judged: JudgedParty) -> dict[str, Any]:
    """A third party with its verdict, places and sightings, as `web --format json` and the
    `web-run` record show it."""
    party = judged.party
    return {
        "party": party.key,
        "name": party.name,
        "declared": party.declared,
        "vendor": party.vendor.id if party.vendor else None,
        "verdict": judged.verdict.value,
        "hosts": judged.hosts,
        "places": [
            {
                "place": place.place,
                "country": place.country,
                "verdict": place.verdict.value,
                "basis": place.assessment.basis,
                "via": list(place.via),
            }
            for place in judged.places
        ],
        "sites": {
            s.site: {
                "states": sorted(s.states),
                "before_choice": s.before_choice_states,
                "essential_hosts": sorted(s.essential),
            }
            for s in judged.sightings
        },
    }


def run_record(audit: WebAudit) -> dict[str, Any]:
    """The `web-run` evidence record: per site and page, each state's outcome and its files'
    hashes; the third parties with their verdict; the probes that failed."""
    sites = []
    for visit in audit.visits:
        pages = []
        for page in visit.pages:
            states = {
                state.capture.state: {
                    "failure": state.capture.failure,
                    "files": {
                        kind: None if record is None else record.as_json()
                        for kind, record in state.files.items()
                    },
                }
                for state in page.states
            }
            pages.append({"page": page.page_id, "url": page.url, "states": states})
        sites.append({"site": visit.site.id, "pages": pages, "failure": visit.failure})
    parties = [party_json(judged) for judged in audit.parties]
    return {
        "directory": audit.directory,
        "as_of": audit.as_of.isoformat(),
        "started_at": audit.started_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "complete": audit.complete,
        "sites": sites,
        "third_parties": parties,
        "probes_failed": audit.failed_probes,
        "findings": len(audit.findings),
    }
