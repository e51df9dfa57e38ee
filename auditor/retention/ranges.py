"""Enforcement batches on PostgreSQL in the table's physical order: each batch is one range of row
addresses (ctids, read by a TID Range Scan), whose records still eligible are deleted or updated
by one statement, which returns how many (not their keys: its intent names its transaction,
`SourceTransaction`); each next range is sized toward the batch's record count and its target transaction
time.

Walking the table by address reads each block once, in order, as a bulk DELETE does; walking it
by key reads it through the key's index, in key order: where that is not the order the rows were
written in (random keys, rows updated for years), one block here and one there. The walk
applies, on PostgreSQL 14 or later (which reads a range of addresses by itself), to a plain table
(not partitioned, no child tables: a ctid names one row of one table) and a policy without
dependents or keyed hashes (`walkable`); other policies, older servers and the other dialects
walk by key (`auditor.retention.batches`).

The table's size in blocks is read when the walk starts, and its blocks are split into
consecutive parts, one walker each (`RangeWalker.split`; the walkers run at once,
`auditor.retention.parallel`). A walker stops at the end of its part, except the last: past the
table's last block, it reads the size again and walks the blocks added meanwhile; when there are
none, one last range is open-ended, so that a record written since at the end of the table is
processed if eligible, as the walk by key processes a record given a key after the last one
done. A record written or moved (by an UPDATE) into a block the walk has passed is left for the
next run, as the walk by key leaves a record given a key before the last one done; the run's
record says how many it processed of those planned. A stopped run is not resumed at its range:
row addresses are not stable (VACUUM frees them, and another row may take one), so the next run
reconciles the stopped run's batches by their transactions (`auditor.retention.reconcile`), plans
again and walks from the first block.

A range is sized to hold a little fewer eligible records than a batch may have, at the rate of
eligible records per address of the last range (at first the plan's share of eligible records,
halved; while the plan is still being counted, the share in a sample of `SAMPLE` blocks, halved,
on the server's estimate of the table's records); and to take at most the target transaction
time at the last range's pace. A range that holds more records than the batch may process is
undone (to a savepoint, in its transaction) and ended just before the first record too many, so
that no batch processes more than it may. A range spans at most `REACH` batches' worth of the
table's records, and at most twice the last range, which bounds the work undone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.sql.util import ClauseAdapter

from auditor.core.ledger import SourceTransaction
from auditor.retention.batches import ATTEMPTS, TARGET_TRANSACTION_SECONDS
from auditor.retention.plan import RetentionPlan
from auditor.retention.tables import BoundPolicy, fitted
from auditor.sources.datasources import DataSourceError

FILL = 0.95
"""The share of a batch's records a range is sized to hold, so that a range holding a few more
eligible records than the last one is not undone."""
SAMPLE = 100
"""Blocks sampled for the first ranges' share of eligible records while the plan counts them."""
SLOTS = 100
"""Records per block assumed when neither a plan nor the server's statistics tell."""
FIRST = 0.5
"""The first range's share of what the table's average gives: its records may be anywhere."""
REACH = 8
"""A range spans at most this many batches' worth of the table's records (at their average per
block): what a range whose records all turn out eligible does before it is undone."""
GROWTH = 2
"""A range spans at most this many times the last one."""

Tid = tuple[int, int]
"""A row address: block and line."""

_TID = re.compile(r"\((\d+),(\d+)\)")


class _TidType(sa.types.UserDefinedType[str]):
    """PostgreSQL's `tid`, a row address `(block,line)`, compared with `ctid`."""

    cache_ok = True

    def get_col_spec(self, **_: Any) -> str:
        return "tid"


class RangeWalker:
    """Walks a part of a table's row addresses in order, one range per batch, remembering where
    it is."""

    def __init__(
        self,
        bound: BoundPolicy,
        deadline: datetime,
        part: tuple[int, int],
        last: bool,
        slots: int,
        records: float,
        density: float,
    ) -> None:
        """A walker over the blocks `part` (first, end); `last`: the part that ends at the
        table's end, which follows blocks added meanwhile and ends open-ended. Ranges are sized
        in positions, block × `slots` + line, at `records` per position and, at first,
        `density` eligible ones."""
        self.bound = bound
        self.eligible = eligible_records(bound, deadline)
        first, self.blocks = part
        self.last = last
        self.slots = slots
        self.records = records
        self.density = density
        self.position: Tid = (first, 0)
        self.finished = False
        self.last_span = 0
        self.timed_span: float | None = None
        self._before: tuple[Any, ...] = ()

    @classmethod
    def split(
        cls,
        connection: Connection,
        bound: BoundPolicy,
        deadline: datetime,
        size: TableSize,
        plan: RetentionPlan | None,
        parts: int,
    ) -> list[RangeWalker]:
        """Walkers for the policy's table (of `size`) in up to `parts` consecutive parts of its
        blocks. Without `plan`, they are sized on the server's estimate of the table's records
        and the eligible share of a sample of its blocks."""
        blocks = size.blocks
        rows = plan.table_rows if plan is not None else max(size.estimate, 0)
        # A position stands for about one record: slots is the table's records per block. A
        # block with more lines is still walked whole, as ranges are bounded by row addresses.
        slots = max(1, -(-rows // max(blocks, 1))) if rows > 0 else SLOTS
        positions = max(blocks, 1) * slots
        records = rows / positions if rows > 0 else 1.0
        if plan is not None:
            share = plan.eligible / plan.table_rows if plan.table_rows else 0.0
        else:
            share = _sampled_share(connection, bound, deadline, blocks)
        density = records * share / FIRST
        count = max(1, min(parts, blocks))
        ends = [blocks * i // count for i in range(count + 1)]
        return [
            cls(bound, deadline, (ends[i], ends[i + 1]), i == count - 1, slots, records, density)
            for i in range(count)
        ]

    def take(self, connection: Connection, size: int, room: int) -> SourceTransaction | None:
        """In the caller's transaction: delete or update the eligible records of the next range
        of row addresses, sized for `size` records, at most `min(size, room)` of them; return
        the transaction that holds them, with how many (None: that range held no eligible
        record; `finished` says whether the walk is over). Nothing is committed here.

        The server re-checks every record against the whole condition (deadline, hold, scope)
        when it reaches it, so a record changed by another transaction since the plan is left
        alone unless it is still eligible.

        Raises:
            DataSourceError: a range kept holding more records than the batch may process
                (`ATTEMPTS` times, each undone); nothing of it was kept.
        """
        most = min(size, room)
        start = self.position
        self._before = (start, self.density, self.last_span, self.timed_span, self.blocks)
        stop = self._stop(connection, size)
        for _ in range(ATTEMPTS):
            with connection.begin_nested() as attempt:
                rows = self._process(connection, start, stop)
                if rows <= most:
                    break
                attempt.rollback()
            # Undone: the range ends just before the first record past what the batch may have
            # (or stays as it is when its records have changed meanwhile).
            stop = self._cut(connection, start, stop, most) or stop
        else:
            raise DataSourceError(
                self.bound.policy.source,
                f"a range of policy {self.bound.policy.id!r} kept holding more records than a "
                f"batch may process ({ATTEMPTS} attempts, each undone); run it again",
            )
        if stop is None:
            self.finished = True
        else:
            self.position = stop
            self.last_span = max(self._linear(stop) - self._linear(start), 1)
            self.density = rows / self.last_span
            self.finished = not self.last and stop >= (self.blocks, 0)
        if not rows:
            return None
        held = connection.execute(_HELD).one()
        stop_text = None if stop is None else _text(stop)
        return SourceTransaction(
            int(held.id), held.system, held.started, rows, _text(start), stop_text
        )

    def undo(self) -> None:
        """Forget the last `take`, whose transaction was rolled back: the next one takes the
        same range again."""
        start, self.density, self.last_span, self.timed_span, self.blocks = self._before
        self.position = start
        self.finished = False

    def took(self, seconds: float) -> None:
        """The last range's transaction took `seconds`: the next one spans at most what takes
        TARGET_TRANSACTION_SECONDS at that pace (at most doubled or quartered at a time)."""
        if not self.last_span:
            return
        scale = GROWTH if seconds <= 0 else TARGET_TRANSACTION_SECONDS / seconds
        self.timed_span = self.last_span * max(0.25, min(GROWTH, scale))

    def _stop(self, connection: Connection, size: int) -> Tid | None:
        """Where the next range ends (None: open-ended, the table's end)."""
        if self.last and self.position >= (self.blocks, 0):
            # Past the blocks the walk knew: walk those added since, else end open-ended.
            self.blocks = max(self.blocks, _blocks(connection, self.bound))
            if self.position >= (self.blocks, 0):
                return None
        limits = [REACH * size / self.records if self.records > 0 else float("inf")]
        if self.density > 0:
            limits.append(size * FILL / self.density)
        if self.timed_span is not None:
            limits.append(self.timed_span)
        if self.last_span:
            limits.append(self.last_span * GROWTH)
        span = min(limits)
        end = self.blocks * self.slots
        stop = end if span == float("inf") else self._linear(self.position) + max(1, int(span))
        if stop >= end:
            return (self.blocks, 0)
        return divmod(stop, self.slots)

    def _linear(self, tid: Tid) -> int:
        return tid[0] * self.slots + tid[1]

    def _process(self, connection: Connection, start: Tid, stop: Tid | None) -> int:
        bound = self.bound
        where = in_range(self.eligible, start, stop)
        statement: Any
        if bound.policy.action == "delete":
            statement = sa.delete(bound.table).where(*where)
        else:
            values = {
                bound.column(r).name: None if r.kind == "null" else fitted(r, bound.column(r))
                for r in bound.policy.anonymise
            }
            statement = sa.update(bound.table).where(*where).values(values)
        # No keys returned: reading them back, and writing them into the intents, cost about a
        # quarter of the walk's throughput; the intent names the transaction instead.
        return int(connection.execute(statement).rowcount)

    def _cut(self, connection: Connection, start: Tid, stop: Tid | None, most: int) -> Tid | None:
        """The address of the eligible record after the first `most` in the range (None: it
        holds no more than that now)."""
        ctid: sa.ColumnElement[Any] = sa.literal_column("ctid")
        query = (
            # Labelled: as `ctid`, ORDER BY would sort the text, where (10,1) comes before (9,1).
            sa.select(sa.cast(ctid, sa.Text).label("address"))
            .select_from(self.bound.table)
            .where(*in_range(self.eligible, start, stop))
            .order_by(ctid)
            .offset(most)
            .limit(1)
        )
        found = connection.execute(query).scalar()
        matched = _TID.fullmatch(found or "")
        return None if matched is None else (int(matched[1]), int(matched[2]))


_SIZE = sa.text(
    # A TID Range Scan came with PostgreSQL 14: before it, every range would read the table.
    # A batch's intent names its transaction and server, which takes two functions a server
    # may keep from its users.
    "SELECT c.relkind = 'r' AND NOT c.relhassubclass"
    " AND CASE WHEN current_setting('server_version_num')::integer >= 140000"
    " THEN has_function_privilege('pg_control_system()', 'EXECUTE')"
    " AND has_function_privilege('pg_xact_status(xid8)', 'EXECUTE') ELSE false END AS plain,"
    " pg_relation_size(c.oid) / current_setting('block_size')::integer AS blocks,"
    # The server's estimate of the records (-1: never counted), to size the first ranges by
    # while the plan counts them.
    " c.reltuples AS estimate"
    " FROM pg_class AS c WHERE c.oid = to_regclass(:name)"
)


SERVER = (
    # Which server gives a transaction its id: its system (shared by its replicas) and its start
    # (an id is never given twice between two starts; as seconds, whatever the session's date
    # style). Read when a batch is held and when it is reconciled, compared as text.
    "(SELECT system_identifier FROM pg_control_system())::text AS system,"
    " extract(epoch FROM pg_postmaster_start_time())::text AS started"
)
_HELD = sa.text(
    # The transaction's id, whose fate can be asked of the server later (pg_xact_status).
    "SELECT pg_current_xact_id()::text AS id, " + SERVER
)


def in_range(
    eligible: list[sa.ColumnElement[bool]], start: Tid | str, stop: Tid | str | None
) -> list[sa.ColumnElement[bool]]:
    """The conditions of the `eligible` records with row addresses in [start, stop)."""
    ctid: sa.ColumnElement[Any] = sa.literal_column("ctid")
    where = [ctid >= _tid(start)]
    if stop is not None:
        where.append(ctid < _tid(stop))
    return [*where, *eligible]


def _tid(address: Tid | str) -> sa.ColumnElement[Any]:
    text = address if isinstance(address, str) else _text(address)
    return sa.cast(sa.literal(text), _TidType())


@dataclass(frozen=True, slots=True)
class TableSize:
    """A table's size in blocks, and the server's estimate of its records (-1: never counted)."""

    blocks: int
    estimate: int


def walkable(connection: Connection, bound: BoundPolicy) -> TableSize | None:
    """The size of the policy's table where its batches can go by row address: PostgreSQL 14 or
    later, a plain table without child tables, no dependents, no keyed hashes, and the
    functions that name a batch's transaction open to the data source's user; else None."""
    if bound.dialect != "postgresql" or bound.dependents:
        return None
    if any(r.kind == "hash" for r in bound.policy.anonymise):
        return None
    with connection.begin():
        found = connection.execute(_SIZE, {"name": _name(connection, bound)}).first()
    if found is None or not found.plain:
        return None
    return TableSize(int(found.blocks), int(found.estimate))


def _sampled_share(
    connection: Connection, bound: BoundPolicy, deadline: datetime, blocks: int
) -> float:
    """The share of eligible records in about `SAMPLE` of the table's blocks picked at random
    (none eligible: as if one were, so that the first ranges stay bounded)."""
    percent = min(100.0, 100.0 * SAMPLE / max(blocks, 1))
    sample = sa.tablesample(bound.table, sa.func.system(percent))
    adapt = ClauseAdapter(sample).traverse
    eligible = sa.and_(*(adapt(condition) for condition in eligible_records(bound, deadline)))
    query = sa.select(sa.func.count().filter(eligible), sa.func.count()).select_from(sample)
    with connection.begin():
        found, sampled = connection.execute(query).one()
    return max(found, 1) / max(sampled, 1)


def eligible_records(bound: BoundPolicy, deadline: datetime) -> list[sa.ColumnElement[bool]]:
    """The conditions of the records a walk by address processes at `deadline`."""
    # A record whose (unique, but nullable) key is NULL cannot be named by its key: the walk by
    # key never processes it, and neither does this one (the plan counts it as left).
    return [bound.key.is_not(None), *bound.eligible(deadline)]


def _blocks(connection: Connection, bound: BoundPolicy) -> int:
    """The table's size in blocks now."""
    found = connection.execute(_SIZE, {"name": _name(connection, bound)}).first()
    return 0 if found is None else int(found.blocks)


def _name(connection: Connection, bound: BoundPolicy) -> str:
    return connection.dialect.identifier_preparer.format_table(bound.table)


def _text(tid: Tid) -> str:
    return f"({tid[0]},{tid[1]})"
