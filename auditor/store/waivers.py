"""Waiver queries and bookkeeping inside the store's transactions: which waivers count, expiries."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, and_, exists, select, update
from sqlalchemy.sql.elements import ColumnElement

from auditor.core.errors import FindingNotFoundError
from auditor.store.recording import insert_event
from auditor.store.records import Waiver, waiver_record
from auditor.store.schema import findings, waivers


def waiver_counts(on: date | None) -> ColumnElement[bool]:
    """SQL for `Waiver.active(on)`: not revoked, and not past its expiry day."""
    if on is None:
        return and_(waivers.c.revoked_at.is_(None), waivers.c.expiry_recorded_at.is_(None))
    return and_(waivers.c.revoked_at.is_(None), waivers.c.expires >= on)


def waived(on: date | None) -> ColumnElement[bool]:
    """SQL: the finding of the current row has a waiver active on `on`."""
    return exists().where(waivers.c.finding_id == findings.c.id, waiver_counts(on))


def active_waivers(conn: Connection, on: date | None) -> dict[int, Waiver]:
    """Finding id -> its newest active waiver (a DPO keeps few; all of them are read)."""
    rows = conn.execute(select(waivers).where(waiver_counts(on)).order_by(waivers.c.id))
    return {row.finding_id: waiver_record(row) for row in rows}


def active_waivers_of(conn: Connection, finding_id: int, on: date) -> list[Waiver]:
    rows = conn.execute(
        select(waivers).where(waivers.c.finding_id == finding_id, waiver_counts(on))
    )
    return [waiver_record(row) for row in rows]


def require_finding(conn: Connection, finding_id: int) -> None:
    if conn.execute(select(findings.c.id).where(findings.c.id == finding_id)).first() is None:
        raise FindingNotFoundError(finding_id)


def record_expiries(conn: Connection, now: datetime, finding_id: int | None) -> list[int]:
    """Record waiver-expired once per lapsed waiver; return the findings they belonged to."""
    query = select(waivers).where(
        waivers.c.revoked_at.is_(None),
        waivers.c.expiry_recorded_at.is_(None),
        waivers.c.expires < utc_day(now),
    )
    if finding_id is not None:
        query = query.where(waivers.c.finding_id == finding_id)
    lapsed = [waiver_record(row) for row in conn.execute(query.order_by(waivers.c.id))]
    for waiver in lapsed:
        conn.execute(
            update(waivers).where(waivers.c.id == waiver.id).values(expiry_recorded_at=now)
        )
        detail = {"waiver_id": waiver.id, "expires": waiver.expires.isoformat()}
        insert_event(conn, waiver.finding_id, None, now, "waiver-expired", detail)
    return [waiver.finding_id for waiver in lapsed]


def revoke(conn: Connection, waiver: Waiver, *, by: str, now: datetime, replaced: bool) -> None:
    conn.execute(
        update(waivers).where(waivers.c.id == waiver.id).values(revoked_at=now, revoked_by=by)
    )
    detail: dict[str, Any] = {"waiver_id": waiver.id, "by": by}
    if replaced:
        detail["replaced"] = True
    insert_event(conn, waiver.finding_id, None, now, "unwaived", detail)


MAX_WAIVER_YEARS = 10
"""How far ahead a waiver may end: a risk accepted for longer is never reviewed."""


def latest_expiry(now: datetime) -> date:
    """The last expiry day a waiver created at `now` may have."""
    today = utc_day(now)
    day = 28 if (today.month, today.day) == (2, 29) else today.day
    return date(today.year + MAX_WAIVER_YEARS, today.month, day)


def utc_day(now: datetime) -> date:
    """The UTC date of a moment: waivers run to the end of their expiry day in UTC."""
    return now.astimezone(UTC).date()
