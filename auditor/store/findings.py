"""The state store's findings aggregate: findings with their history, and waivers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select

from auditor.core.errors import (
    FindingNotFoundError,
    InvalidRequestError,
)
from auditor.core.lifecycle import Status
from auditor.core.model import Finding
from auditor.store import evidence
from auditor.store import waivers as waiver_queries
from auditor.store.connection import FINDING_STATES, StoreConnection
from auditor.store.recording import (
    FindingChanges,
    apply_findings,
    insert_event,
    job_scope,
)
from auditor.store.records import (
    FindingDetail,
    StoredFinding,
    event_record,
    finding_order,
    stored_finding,
    waiver_record,
)
from auditor.store.schema import (
    finding_events,
    findings,
    waivers,
)


class FindingStore(StoreConnection):
    """Findings with their history, and waivers."""

    def open_findings(self, on: date) -> list[StoredFinding]:
        """Return open findings not under a waiver active on `on` (an expired one does not count)."""
        return self.list_findings(status="open", on=on)

    def list_findings(
        self,
        *,
        status: str | None = None,
        integration: str | None = None,
        rule: str | None = None,
        on: date | None = None,
    ) -> list[StoredFinding]:
        """Return findings, worst first; `status` is one of FINDING_STATES (None: all).

        Waivers are judged on `on`; without it, a waiver counts until revoked or its expiry is
        recorded by `expire_waivers`.

        Raises:
            InvalidRequestError: `status` is not one of FINDING_STATES.
        """
        if status is not None and status not in FINDING_STATES:
            raise InvalidRequestError(
                f"unknown finding status {status!r}; expected one of {', '.join(FINDING_STATES)}"
            )
        query = select(findings)
        waived = waiver_queries.waived(on)
        if status == "open":
            query = query.where(findings.c.status == Status.OPEN.value, ~waived)
        elif status == "waived":
            query = query.where(findings.c.status == Status.OPEN.value, waived)
        elif status == "resolved":
            query = query.where(findings.c.status == Status.RESOLVED.value)
        if integration is not None:
            query = query.where(findings.c.integration == integration)
        if rule is not None:
            query = query.where(findings.c.rule == rule)
        with self._read() as conn:
            rows = conn.execute(query).all()
            active = waiver_queries.active_waivers(conn, on)
        found = [stored_finding(row, active.get(row.id)) for row in rows]
        return sorted(found, key=finding_order)

    def get_finding(self, finding_id: int, on: date | None = None) -> FindingDetail:
        """Return one finding with its history and all its waivers (active judged on `on`).

        Raises:
            FindingNotFoundError: no finding has that id.
        """
        with self._read() as conn:
            row = conn.execute(select(findings).where(findings.c.id == finding_id)).first()
            if row is None:
                raise FindingNotFoundError(finding_id)
            all_waivers = tuple(
                waiver_record(w)
                for w in conn.execute(
                    select(waivers).where(waivers.c.finding_id == finding_id).order_by(waivers.c.id)
                )
            )
            events = tuple(
                event_record(e)
                for e in conn.execute(
                    select(finding_events)
                    .where(finding_events.c.finding_id == finding_id)
                    .order_by(finding_events.c.at, finding_events.c.id)
                )
            )
        active = next((w for w in reversed(all_waivers) if w.active(on)), None)
        stored = stored_finding(row, active)
        return FindingDetail(
            **{name: getattr(stored, name) for name in StoredFinding.__dataclass_fields__},
            events=events,
            waivers=all_waivers,
        )

    def waive(
        self, finding_id: int, *, reason: str, approver: str, expires: date, now: datetime
    ) -> int:
        """Accept a finding until the end of `expires`; replaces an active waiver. Return its id.

        Raises:
            InvalidRequestError: no reason or approver, or `expires` is before `now`'s date or
                more than MAX_WAIVER_YEARS after it.
            FindingNotFoundError: no finding has that id.
        """
        reason, approver = reason.strip(), approver.strip()
        if not reason or not approver:
            raise InvalidRequestError("a waiver needs a reason and an approver")
        if expires < waiver_queries.utc_day(now):
            raise InvalidRequestError(
                f"the expiry date {expires.isoformat()} is in the past "
                f"(today is {waiver_queries.utc_day(now).isoformat()}, UTC)"
            )
        latest = waiver_queries.latest_expiry(now)
        if expires > latest:
            raise InvalidRequestError(
                f"the expiry date {expires.isoformat()} is too far away: a waiver must be "
                f"reviewed within {waiver_queries.MAX_WAIVER_YEARS} years, by "
                f"{latest.isoformat()} at the latest"
            )
        with self._write() as conn:
            waiver_queries.require_finding(conn, finding_id)
            mark = evidence.last_event_id(conn)
            waiver_queries.record_expiries(conn, now, finding_id)
            for old in waiver_queries.active_waivers_of(
                conn, finding_id, waiver_queries.utc_day(now)
            ):
                waiver_queries.revoke(conn, old, by=approver, now=now, replaced=True)
            waiver_id = int(
                conn.execute(
                    insert(waivers)
                    .values(
                        finding_id=finding_id,
                        reason=reason,
                        approver=approver,
                        expires=expires,
                        created_at=now,
                    )
                    .returning(waivers.c.id)
                ).scalar_one()
            )
            detail = {
                "waiver_id": waiver_id,
                "reason": reason,
                "approver": approver,
                "expires": expires.isoformat(),
            }
            insert_event(conn, finding_id, None, now, "waived", detail)
            self._seal(conn, now, mark, [])
            return waiver_id

    def unwaive(self, finding_id: int, *, by: str, now: datetime) -> None:
        """Revoke the finding's active waiver, so that it counts as open again.

        Raises:
            InvalidRequestError: `by` is empty, or the finding has no active waiver.
            FindingNotFoundError: no finding has that id.
        """
        by = by.strip()
        if not by:
            raise InvalidRequestError("say who revokes the waiver")
        with self._write() as conn:
            waiver_queries.require_finding(conn, finding_id)
            mark = evidence.last_event_id(conn)
            waiver_queries.record_expiries(conn, now, finding_id)
            active = waiver_queries.active_waivers_of(conn, finding_id, waiver_queries.utc_day(now))
            if not active:
                raise InvalidRequestError(f"finding {finding_id} has no active waiver")
            for old in active:
                waiver_queries.revoke(conn, old, by=by, now=now, replaced=False)
            self._seal(conn, now, mark, [])

    def expire_waivers(self, now: datetime) -> list[int]:
        """Record a waiver-expired event once for each waiver past its expiry day.

        Returns the ids of the findings these expiries leave open and unwaived.
        """
        with self._write() as conn:
            mark = evidence.last_event_id(conn)
            expired = waiver_queries.record_expiries(conn, now, None)
            if not expired:
                return []
            self._seal(conn, now, mark, [])
            reopened = conn.execute(
                select(findings.c.id)
                .where(
                    findings.c.id.in_(sorted(set(expired))),
                    findings.c.status == Status.OPEN.value,
                    ~waiver_queries.waived(waiver_queries.utc_day(now)),
                )
                .order_by(findings.c.id)
            )
            return [int(finding_id) for finding_id in reopened.scalars()]

    def record_job_findings(
        self,
        job: str,
        found: Iterable[Finding],
        at: datetime,
        failed: Mapping[str, str] | None = None,
        records: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> FindingChanges:
        """Apply the findings of a job other than the audit (`retention`, `discovery`, `web`):
        only the rules that job owns are opened, kept or resolved; evidence records the changes.
        `failed` are the run's probes that observed nothing (scope -> why): findings resting
        on them are carried, not resolved (see `apply_findings`). `records` are (kind, content)
        evidence records of the run, appended to the chain in the same transaction."""
        with self._write() as conn:
            mark = evidence.last_event_id(conn)
            changes = apply_findings(conn, None, at, found, job_scope(job), failed=failed)
            items: list[tuple[str, Mapping[str, Any]]] = []
            if failed:
                content = {"job": job, "probes_failed": sorted(failed), "carried": changes.carried}
                items.append(("job-probes-failed", content))
            items += records
            self._seal(conn, at, mark, items)
            return changes
