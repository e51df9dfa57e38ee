"""The store's answers: runs, findings with their lifecycle, waivers and events, as frozen records."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Row

from auditor.core.lifecycle import FindingKey, Status, waiver_active
from auditor.core.model import Facet, Finding, PlaceCheck, Severity, Verdict
from auditor.core.ports import DataSet

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One audit run as recorded: when, how it ended, and what it ran with."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    outcome: str  # running | success | error | interrupted
    error: str | None
    tool_version: str
    config_digest: str
    policy_digest: str
    as_of: date | None
    integrations: int
    hostnames: int
    findings: int  # open after the run
    new: int
    resolved: int
    reopened: int
    geoip_built: datetime | None
    datasets: tuple[DataSet, ...]
    carried: int = 0  # open findings kept open because a probe they rest on failed
    probes_failed: tuple[str, ...] = ()  # the probes of the run that observed nothing


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What one recorded audit did to the findings."""

    run_id: int
    new: int
    resolved: int
    reopened: int
    still_open: int
    carried: int = 0  # kept open because a probe they rest on failed

    @property
    def open(self) -> int:
        """Findings open after the run, waived or not, carried ones included."""
        return self.new + self.reopened + self.still_open + self.carried


@dataclass(frozen=True, slots=True)
class Waiver:
    """A DPO's acceptance of a finding until the end of its expiry day, unless revoked first."""

    id: int
    finding_id: int
    reason: str
    approver: str
    expires: date
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    expiry_recorded_at: datetime | None

    def active(self, on: date | None) -> bool:
        """Whether it counts on `on`; without a date, whether its expiry is not yet recorded."""
        if on is None:
            return self.revoked_at is None and self.expiry_recorded_at is None
        return waiver_active(self.expires, self.revoked_at is not None, on)


@dataclass(frozen=True, slots=True)
class FindingEvent:
    """One entry of a finding's append-only history."""

    id: int
    finding_id: int
    run_id: int | None
    at: datetime
    change: str  # new | resolved | reopened | waived | unwaived | waiver-expired
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as the store knows it: its identity, latest content, lifecycle and waiver."""

    id: int
    rule: str
    integration: str
    facet: Facet | None
    place: str | None
    country: str | None
    severity: Severity
    article: str
    message: str
    evidence: dict[str, Any]
    status: Status
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    reopened: int
    waiver: Waiver | None  # the active one, if any
    probes: tuple[str, ...] = ()  # the probes its last evidence came from
    carried_since: datetime | None = None  # the first run since then whose probe failed
    carried_reason: str | None = None  # which of its probes failed, and how

    @property
    def carried(self) -> bool:
        """Open only because the probe that would show it gone failed: its evidence is from
        `last_seen`, not from the latest run."""
        return self.carried_since is not None

    @property
    def waived(self) -> bool:
        return self.waiver is not None

    @property
    def state(self) -> str:
        """open, waived (open under an active waiver) or resolved."""
        if self.status is Status.RESOLVED:
            return "resolved"
        return "waived" if self.waived else "open"

    @property
    def key(self) -> FindingKey:
        return (self.rule, self.integration, self.facet or "", self.place or "")

    @property
    def finding(self) -> Finding:
        return Finding(
            rule=self.rule,
            integration=self.integration,
            severity=self.severity,
            article=self.article,
            message=self.message,
            facet=self.facet,
            place=self.place,
            country=self.country,
            evidence=self.evidence,
            probes=self.probes,
        )


@dataclass(frozen=True, slots=True)
class FindingDetail(StoredFinding):
    """A finding with its whole history and every waiver it ever had."""

    events: tuple[FindingEvent, ...] = ()
    waivers: tuple[Waiver, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotCounts:
    """What the metrics need from the store, aggregated in SQL (see auditor.service.snapshot.Snapshot)."""

    open_findings: dict[tuple[str, str, str], int]
    """(rule, severity, integration) -> open, unwaived findings."""
    waived_findings: dict[tuple[str, str], int]
    """(rule, severity) -> open findings under an active waiver."""
    carried_findings: dict[tuple[str, str], int]
    """(rule, severity) -> open, unwaived findings carried: a probe they rest on failed."""
    waiver_expiry: dict[tuple[str, str], date]
    """(rule, severity) -> the last day of the soonest-ending active waiver of an open finding."""
    recently_resolved: frozenset[tuple[str, str, str]]
    """(rule, severity, integration) with no open finding left: resolved by the latest run, or
    waived."""
    places: dict[tuple[str, str], int]
    """(verdict, country or "") -> place checks of the latest successful run."""
    integrations_by_category: dict[str, int]
    data_built: dict[tuple[str, str], datetime]
    """(kind, name) -> build time of each data set the latest successful run used."""
    last_run: RunRecord | None
    """The latest successful run."""


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """An overview for `db status`."""

    schema_version: int
    runs: dict[str, int]  # outcome -> runs
    findings: dict[str, int]  # open, waived, resolved -> findings
    latest_run: RunRecord | None
    latest_success: RunRecord | None


# -- from rows -----------------------------------------------------------------------------------


def record_of(record: type[R], row: Any, **converted: Any) -> R:
    """A `record` (a dataclass) whose fields are the row's columns of the same names, but for
    the fields given in `converted`."""
    values = {
        name: converted[name] if name in converted else getattr(row, name)
        for name in (field.name for field in fields(record))
    }
    return record(**values)


def run_record(row: Row[Any]) -> RunRecord:
    return record_of(
        RunRecord,
        row,
        id=int(row.id),
        datasets=tuple(
            DataSet(
                kind=d["kind"],
                name=d["name"],
                path=d.get("path", ""),
                built=datetime.fromisoformat(d["built"]) if d.get("built") else None,
                entries=d.get("entries"),
            )
            for d in row.datasets or ()
        ),
        carried=int(row.carried or 0),
        probes_failed=tuple(row.probes_failed or ()),
    )


def waiver_record(row: Row[Any]) -> Waiver:
    return record_of(Waiver, row, id=int(row.id), finding_id=int(row.finding_id))


def event_record(row: Row[Any]) -> FindingEvent:
    return record_of(FindingEvent, row, detail=dict(row.detail))


def stored_finding(row: Row[Any], waiver: Waiver | None) -> StoredFinding:
    return record_of(
        StoredFinding,
        row,
        id=int(row.id),
        facet=Facet(row.facet) if row.facet else None,
        place=row.place or None,
        severity=Severity(row.severity),
        evidence=dict(row.evidence),
        status=Status(row.status),
        reopened=int(row.reopened),
        waiver=waiver,
        probes=tuple(row.probes or ()),
    )


def finding_order(finding: StoredFinding) -> tuple[int, str, str, str, str, int]:
    return (-finding.severity.rank, finding.integration, finding.rule, *finding.key[2:], finding.id)


def place_check_record(row: Any) -> PlaceCheck:
    """A stored place check as the model's PlaceCheck."""
    return PlaceCheck(
        integration=row.integration,
        facet=Facet(row.facet),
        place=row.place,
        country=row.country,
        verdict=Verdict(row.verdict),
        basis=row.basis,
        via=row.via,
    )
