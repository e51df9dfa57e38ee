"""Appending to and reading the evidence chain in the state database, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, Text, func, select, text, type_coerce

from auditor.core.chain import EvidenceRecord, link
from auditor.store.schema import evidence, finding_events, findings

_LOCK_KEY = 0x6764707265766964  # "gdprevid": serialises appends across PostgreSQL connections


def _stored_time(value: Any) -> Any:
    """A record's time as stored, made aware; left as it is when it is not a time at all.

    The column is read raw, not through the UTC type: a row tampered with outside the store
    (SQLite does not enforce column types) must reach verification, which names the record,
    instead of failing the whole read inside the driver.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _select() -> Select[Any]:
    """Every column of the evidence table, the time read raw (see `_stored_time`)."""
    raw_at = type_coerce(evidence.c.at, Text).label("at")
    return select(*(raw_at if column.name == "at" else column for column in evidence.c))


def _row_record(row: Any) -> EvidenceRecord:
    at = _stored_time(row.at)
    return EvidenceRecord(row.seq, at, row.kind, row.content, row.hash, row.prev_hash, row.mac)


def last_record(
    connection: Connection,
    before: datetime | None = None,
    *,
    kind: str | None = None,
    since: datetime | None = None,
) -> EvidenceRecord | None:
    """The record with the highest sequence number (of `kind`, timed in [since, before)), or
    None."""
    query = _select().order_by(evidence.c.seq.desc()).limit(1)
    if before is not None:
        query = query.where(evidence.c.at < before)
    if since is not None:
        query = query.where(evidence.c.at >= since)
    if kind is not None:
        query = query.where(evidence.c.kind == kind)
    row = connection.execute(query).first()
    return None if row is None else _row_record(row)


def append_many(
    connection: Connection,
    items: Sequence[tuple[str, Mapping[str, Any], datetime]],
    key: bytes | None,
) -> list[EvidenceRecord]:
    """Append several (kind, content, at) records in one insert; commits with the caller's transaction."""
    if not items:
        return []
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    made: list[EvidenceRecord] = []
    previous = last_record(connection)
    for kind, content, at in items:
        previous = link(previous, kind, content, at, key)
        made.append(previous)
    connection.execute(
        evidence.insert(),
        [
            {"seq": r.seq, "at": r.at, "kind": r.kind, "content": r.content, "hash": r.hash,
             "prev_hash": r.prev_hash, "mac": r.mac}
            for r in made
        ],
    )  # fmt: skip
    return made


def append(
    connection: Connection,
    kind: str,
    content: Mapping[str, Any],
    at: datetime,
    key: bytes | None,
) -> EvidenceRecord:
    """Append one record after the current last one; commits with the caller's transaction."""
    return append_many(connection, [(kind, content, at)], key)[0]


def records(
    connection: Connection,
    start: datetime | None = None,
    end: datetime | None = None,
    kinds: Collection[str] = (),
    batch: int = 1000,
) -> Iterator[EvidenceRecord]:
    """Records in sequence order, of `kinds` (all when empty), timed in [start, end) when given;
    read in batches (the chain can be long)."""
    after: int | None = None  # no lower bound at first: a planted record with seq 0 must be seen
    while True:
        query = _select().order_by(evidence.c.seq).limit(batch)
        if after is not None:
            query = query.where(evidence.c.seq > after)
        if start is not None:
            query = query.where(evidence.c.at >= start)
        if end is not None:
            query = query.where(evidence.c.at < end)
        if kinds:
            query = query.where(evidence.c.kind.in_(sorted(kinds)))
        rows = connection.execute(query).all()
        if not rows:
            return
        for row in rows:
            yield _row_record(row)
        after = rows[-1].seq


def last_event_id(conn: Connection) -> int:
    return int(conn.execute(select(func.coalesce(func.max(finding_events.c.id), 0))).scalar_one())


@dataclass(frozen=True, slots=True)
class EventEvidence:
    change: str
    at: datetime
    content: Mapping[str, Any]


def finding_event_items(conn: Connection, event_id: int) -> list[EventEvidence]:
    """The finding events after `event_id`, with what identifies their finding: evidence content."""
    rows = conn.execute(
        select(
            finding_events.c.id,
            finding_events.c.run_id,
            finding_events.c.at,
            finding_events.c.change,
            finding_events.c.detail,
            findings.c.id.label("finding_id"),
            findings.c.rule,
            findings.c.integration,
            findings.c.facet,
            findings.c.place,
            findings.c.severity,
        )
        .join(findings, findings.c.id == finding_events.c.finding_id)
        .where(finding_events.c.id > event_id)
        .order_by(finding_events.c.id)
    )
    return [
        EventEvidence(
            row.change,
            row.at,
            {
                "event_id": row.id,
                "finding_id": row.finding_id,
                "run_id": row.run_id,
                "rule": row.rule,
                "integration": row.integration,
                "facet": row.facet,
                "place": row.place,
                "severity": row.severity,
                "change": row.change,
                "detail": row.detail,
            },
        )
        for row in rows
    ]
