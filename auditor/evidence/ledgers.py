"""The evidence report's parts read from the evidence log: retention batches, consent checks and
imports, and the state of the chain itself."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from auditor.core.chain import EvidenceRecord
from auditor.store.reporting import ChainCheck, PeriodRecords


def utc(moment: datetime | None) -> str | None:
    """A time as `2026-01-05T10:00:00Z`, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- retention, consent, evidence ----------------------------------------------------------------


def _number(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def retention(records: Iterable[EvidenceRecord]) -> list[dict[str, Any]]:
    """Rows acted on per retention policy and action, from the period's `retention-batch` records;
    with the batches reconciled as undetermined, and the records they may have processed."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if record.kind not in {"retention-batch", "retention-run"}:
            continue
        data = record.data()
        key = (str(data.get("policy", "")), str(data.get("action", "")))
        group = groups.setdefault(
            key,
            {
                "policy": key[0],
                "action": key[1],
                "tables": set(),
                "runs": 0,
                "batches": 0,
                "rows": 0,
                "undetermined": 0,
                "undetermined_at_most": 0,
                "first_at": utc(record.at),
                "last_at": utc(record.at),
            },
        )
        if record.kind == "retention-run":
            group["runs"] += 1
            continue
        group["batches"] += 1
        group["rows"] += _number(data.get("rows"))
        if data.get("undetermined") is True:
            group["undetermined"] += 1
            group["undetermined_at_most"] += _number(data.get("planned"))
        group["tables"].add(f"{data.get('source', '')}.{data.get('table', '')}".strip("."))
        group["last_at"] = utc(record.at)
    return [
        {**group, "tables": sorted(group["tables"])}
        for _, group in sorted(groups.items())
        if group["batches"]
    ]


def _checked(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # One record per consent job run lists every integration it checked; a record about one
    # integration is read as a list of one.
    checked = data.get("checked")
    if isinstance(checked, list):
        return [item for item in checked if isinstance(item, Mapping)]
    return [data] if "integration" in data else []


def consent_checks(records: Iterable[EvidenceRecord]) -> list[dict[str, Any]]:
    """Consent checks per integration in the period: how many succeeded or failed, and the
    latest counts (never a subject identifier)."""
    latest: dict[str, dict[str, Any]] = {}

    def item(ident: str) -> dict[str, Any]:
        return latest.setdefault(
            ident,
            {
                "integration": ident,
                "checks": 0,
                "failures": 0,
                "purpose": None,
                "shared": 0,
                "missing": 0,
                "withdrawn": 0,
                "last_at": None,
            },
        )

    for record in records:
        if record.kind != "consent-check":
            continue
        data = record.data()
        for checked in _checked(data):
            found = item(str(checked.get("integration", "")))
            purpose = checked.get("purpose")
            found.update(
                checks=found["checks"] + 1,
                purpose=purpose if isinstance(purpose, str) else found["purpose"],
                shared=_number(checked.get("shared")),
                missing=_number(checked.get("missing")),
                withdrawn=_number(checked.get("withdrawn")),
                last_at=utc(record.at),
            )
        failed = data.get("failed")
        for ident in failed if isinstance(failed, list) else ():
            item(str(ident))["failures"] += 1
    return [latest[ident] for ident in sorted(latest)]


def consent_imports(records: Iterable[EvidenceRecord]) -> list[dict[str, Any]]:
    """Consent imports per purpose in the period: files imported and consents read and added."""
    purposes: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.kind != "consent-import":
            continue
        data = record.data()
        purpose = str(data.get("purpose", ""))
        found = purposes.setdefault(
            purpose, {"purpose": purpose, "imports": 0, "read": 0, "inserted": 0, "updated": 0}
        )
        found["imports"] += 1
        for key in ("read", "inserted", "updated"):
            found[key] += _number(data.get(key))
    return [purposes[purpose] for purpose in sorted(purposes)]


def _record_json(record: EvidenceRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"seq": record.seq, "at": utc(record.at), "kind": record.kind, "hash": record.hash}


def evidence(chain: ChainCheck, records: PeriodRecords) -> dict[str, Any]:
    """The chain's head and whether it verified, and what the period recorded."""
    outcome = chain.verification
    return {
        "verified": outcome.ok,
        "hmac_checked": chain.hmac_checked,
        "records_verified": outcome.records,
        "head": _record_json(chain.head),
        "first_bad": outcome.first_bad,
        "problem": outcome.problem,
        "period": {
            "kinds": [{"kind": k, "records": n} for k, n in sorted(records.record_kinds.items())],
            "last": _record_json(records.last_record),
        },
    }
