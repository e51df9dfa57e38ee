"""The evidence report for a period: one document built from stored records, rendered as JSON, CSV or HTML.

The document is a pure function of what is stored, the inventory and policy data, and the dates
given: no clock is read, every list is sorted and every time is UTC, so two renderings over the
same records are byte for byte the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from auditor.core.model import Facet, Integration, PlaceCheck, Severity
from auditor.core.policies import PolicyData
from auditor.core.policydocs import Decision
from auditor.evidence.declared import backup_item, day, inventory_item
from auditor.evidence.ledgers import consent_checks, consent_imports, evidence, retention, utc
from auditor.evidence.websites import websites
from auditor.store.reporting import ChainCheck, FindingHistory, PeriodRecords, RunTally

SCHEMA_VERSION = 1
"""The version of the report document's layout (docs/report-schema.json)."""

FORMATS = ("html", "json", "csv")

CSV_COLUMNS = (
    "id",
    "rule",
    "severity",
    "article",
    "integration",
    "facet",
    "place",
    "country",
    "status_at_end",
    "first_seen",
    "resolved_at",
    "reopened",
    "opened_in_period",
    "resolved_in_period",
    "waived_in_period",
    "waiver_reason",
    "waiver_approver",
    "waiver_expires",
    "waiver_created_at",
    "waiver_state",
    "message",
)
"""The findings CSV: one row per finding, with its lifecycle dates and its waiver."""

_FACETS = [
    facet.value
    for facet in (Facet.HOSTING, Facet.BACKUP, Facet.SUPPORT, Facet.SUBPROCESSOR, Facet.ENDPOINT)
]
_OUTCOMES = ("success", "error", "interrupted", "running")


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """What one report is made of; everything but the records comes from the configuration."""

    first_day: date
    last_day: date
    as_of: date
    generated_at: datetime | None
    tool_version: str
    config_digest: str
    policies: PolicyData
    integrations: Sequence[Integration]
    records: PeriodRecords
    chain: ChainCheck


def period_bounds(first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """The UTC moments a period of whole days spans: [first day 00:00, day after last 00:00)."""
    start = datetime.combine(first_day, datetime.min.time(), UTC)
    return start, datetime.combine(last_day + timedelta(days=1), datetime.min.time(), UTC)


# -- the document --------------------------------------------------------------------------------


def build_report(inputs: ReportInputs) -> dict[str, Any]:
    """The report document (docs/report-schema.json): plain JSON values in a fixed order."""
    records = inputs.records
    names = {integration.id: integration.name for integration in inputs.integrations}
    consent = consent_checks(records.records)
    return {
        "report": "gdpr-auditor evidence report",
        "schema_version": SCHEMA_VERSION,
        "period": {
            "from": inputs.first_day.isoformat(),
            "to": inputs.last_day.isoformat(),
            "start": utc(records.start),
            "end": utc(records.end),
        },
        "as_of": inputs.as_of.isoformat(),
        "generated_at": utc(inputs.generated_at),
        "tool": {
            "version": inputs.tool_version,
            "config_digest": inputs.config_digest,
            "policy_digest": inputs.policies.digest,
        },
        "policy_data": policy_data(inputs.policies, inputs.as_of),
        "datasets": datasets(records.runs),
        "runs": runs(records.runs),
        "inventory": [inventory_item(i) for i in sorted(inputs.integrations, key=lambda i: i.id)],
        "places": places(records, names, consent),
        "findings": findings(records, inputs.first_day, inputs.last_day),
        "retention": retention(records.records),
        "consent": {"checks": consent, "imports": consent_imports(records.records)},
        "backups": [
            backup_item(i, inputs.as_of) for i in sorted(inputs.integrations, key=lambda i: i.id)
        ],
        "websites": websites(records.web_run),
        "evidence": evidence(inputs.chain, records),
    }


def policy_data(policies: PolicyData, on: date) -> dict[str, Any]:
    """The policy data's digest and the adequacy decisions in force on `on`."""
    in_force = sorted(
        (d for d in policies.adequacy.decisions if d.in_force(on)),
        # Countries by code, then international organisations.
        key=lambda d: (d.country is None, d.country or d.organisation or "", d.adopted, d.id),
    )
    return {
        "digest": policies.digest,
        "adequacy_updated": policies.adequacy.updated.isoformat(),
        "decisions_in_force": [decision_json(d) for d in in_force],
    }


def decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision.id,
        "country": decision.country,
        "organisation": decision.organisation,
        "name": decision.name,
        "instrument": decision.instrument,
        "adopted": decision.adopted.isoformat(),
        "ended": day(decision.ended),
        "expires": day(decision.expires),
        "scope": decision.scope,
        "scope_note": decision.scope_note,
        "commission_document": decision.commission_document,
        "official_journal": decision.official_journal,
        "framework": decision.framework,
        "confirm": decision.covers.confirm,
    }


def datasets(tally: RunTally) -> dict[str, Any]:
    """The GeoIP and IP-range data the latest successful run of the period used, with build dates."""
    run = tally.latest_success
    items = sorted(run.datasets if run else (), key=lambda d: (d.kind, d.name))
    return {
        "run_id": run.id if run else None,
        "items": [
            {"kind": d.kind, "name": d.name, "built": utc(d.built), "entries": d.entries}
            for d in items
        ],
    }


def runs(tally: RunTally) -> dict[str, Any]:
    def counted(values: Mapping[str, int]) -> list[dict[str, Any]]:
        return [{"value": value, "runs": count} for value, count in sorted(values.items())]

    return {
        "total": tally.total,
        "outcomes": {name: tally.outcomes.get(name, 0) for name in _OUTCOMES},
        "first_started_at": utc(tally.first_started),
        "last_started_at": utc(tally.last_started),
        "tool_versions": counted(tally.tool_versions),
        "config_digests": counted(tally.config_digests),
        "policy_digests": counted(tally.policy_digests),
        "problems": [
            {
                "id": run.id,
                "started_at": utc(run.started_at),
                "finished_at": utc(run.finished_at),
                "outcome": run.outcome,
                "error": run.error,
            }
            for run in tally.problems
        ],
    }


def _place_order(check: PlaceCheck) -> tuple[int, str, str]:
    return (_FACETS.index(check.facet.value), check.place, check.via or "")


def places(
    records: PeriodRecords, names: Mapping[str, str], consent: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Every place of every integration, from the latest successful run of the period."""
    run = records.runs.latest_success
    coverage = {item["integration"]: item for item in consent}
    by_integration: dict[str, list[PlaceCheck]] = {}
    for check in records.places:
        by_integration.setdefault(check.integration, []).append(check)
    return {
        "run_id": run.id if run else None,
        "run_started_at": utc(run.started_at) if run else None,
        "as_of": day(run.as_of) if run else None,
        # Old runs' place checks are pruned (database.keep_observations); the latest is kept.
        "pruned": run is not None and not records.places and run.integrations > 0,
        "integrations": [
            {
                "integration": ident,
                "name": names.get(ident, ident),
                "places": [
                    {
                        **check.verdict_fields(),
                        "consent": _coverage(coverage.get(ident))
                        if check.verdict.value == "consent"
                        else None,
                    }
                    for check in sorted(checks, key=_place_order)
                ],
            }
            for ident, checks in sorted(by_integration.items())
        ],
    }


def _coverage(item: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    if item["last_at"] is None:  # every check of the period failed: no counts to show
        return None
    keys = ("purpose", "shared", "missing", "withdrawn", "last_at")
    return {key: item[key] for key in keys}


# -- findings ------------------------------------------------------------------------------------

_OPENING = {"new", "reopened"}


def findings(records: PeriodRecords, first_day: date, last_day: date) -> dict[str, Any]:
    """Findings opened, resolved, waived or open at the end of the period, worst first."""
    items = [
        item
        for history in records.findings
        if (item := finding_item(history, records.start, first_day, last_day)) is not None
    ]
    items.sort(
        key=lambda f: (
            -Severity(f["severity"]).rank,
            f["integration"],
            f["rule"],
            f["facet"] or "",
            f["place"] or "",
            f["id"],
        )
    )
    return {
        "counts": {
            "opened": sum(f["opened_in_period"] for f in items),
            "resolved": sum(f["resolved_in_period"] for f in items),
            "waived": sum(f["waived_in_period"] for f in items),
            "open_at_end": sum(f["status_at_end"] == "open" for f in items),
            "waived_at_end": sum(f["status_at_end"] == "waived" for f in items),
        },
        "items": items,
    }


def finding_item(
    history: FindingHistory, start: datetime, first_day: date, last_day: date
) -> dict[str, Any] | None:
    """One finding's part in the period, judged from its events; None when it had none.

    It stays one function of about 65 lines: it walks one finding's events in order, and the
    state it carries from one event to the next reads best in one place.
    """
    found = history.finding
    in_period = [event for event in history.events if event.at >= start]
    status, resolved_at, reopened = "open", None, 0
    for event in history.events:
        if event.change in _OPENING:
            status, resolved_at = "open", None
            reopened += event.change == "reopened"
        elif event.change == "resolved":
            status, resolved_at = "resolved", event.at
    # The waiver that counted on some day of the period, the newest if several did.
    counted = [
        w
        for w in history.waivers
        if w.expires >= first_day and (w.revoked_at is None or w.revoked_at >= start)
    ]
    waiver = counted[-1] if counted else None
    waiver_state = None
    if waiver is not None:
        end = start + timedelta(days=(last_day - first_day).days + 1)
        if waiver.revoked_at is not None and waiver.revoked_at < end:
            waiver_state = "revoked"
        elif waiver.expires < last_day:
            waiver_state = "expired"
        else:
            waiver_state = "active"
    at_end = "waived" if status == "open" and waiver_state == "active" else status
    opened = any(event.change in _OPENING for event in in_period)
    resolved = any(event.change == "resolved" for event in in_period)
    if not (opened or resolved or waiver is not None or at_end != "resolved"):
        return None
    return {
        "id": found.id,
        "rule": found.rule,
        "severity": found.severity.value,
        "article": found.article,
        "integration": found.integration,
        "facet": found.facet.value if found.facet else None,
        "place": found.place,
        "country": found.country,
        "message": found.message,
        "status_at_end": at_end,
        "first_seen": utc(found.first_seen),
        "resolved_at": utc(resolved_at),
        "reopened": reopened,
        "opened_in_period": opened,
        "resolved_in_period": resolved,
        "waived_in_period": waiver is not None,
        "events": [
            {"at": utc(event.at), "change": event.change, "run_id": event.run_id}
            for event in in_period
        ],
        "waiver": None
        if waiver is None
        else {
            "reason": waiver.reason,
            "approver": waiver.approver,
            "expires": waiver.expires.isoformat(),
            "created_at": utc(waiver.created_at),
            "revoked_at": utc(waiver.revoked_at),
            "revoked_by": waiver.revoked_by,
            "state_at_end": waiver_state,
        },
    }
