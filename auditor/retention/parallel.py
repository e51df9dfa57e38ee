"""Enforcement batches by row address on several connections at once: the table's blocks split
into consecutive parts, one walker (`auditor.retention.ranges`), thread and connection per part,
each batch still one short transaction whose intent is committed before the data source commits
it.

What the walkers share is kept under one lock: the run's batch numbers and its row limit (a
batch reserves its room before its statement and gives back what it did not use, so the run
stops at exactly its limit). The ledger takes their intents and settlements as they come (the
state store serialises its writers), and the caller's listener hears of one batch at a time.
A walker that fails stops the others before their next batch; a batch under way whose intent is
committed is settled, or stays pending for the next reconciliation when the process dies, as on
one connection: a run may leave as many unsettled batches as it has walkers.

The plan may still be counting when the walkers start (`Gate`): a walker whose range held
eligible records waits for the plan and the guard before it commits anything, at most until its
transaction has lasted `WAIT` seconds; then it undoes its range, waits outside any transaction and
takes the range again. A refused run, or one with nothing to process, commits nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from auditor.core.ledger import BatchIntent, RetentionLedger, SourceTransaction
from auditor.core.ports import Clock
from auditor.retention.batches import next_batch_size
from auditor.retention.intent import range_intent
from auditor.retention.plan import RetentionPlan
from auditor.retention.ranges import RangeWalker
from auditor.retention.reconcile import Batch, batch_content
from auditor.retention.tables import BoundPolicy

WALKERS = 2
"""Parts a table is walked in at once: two connections keep two of the server's cores busy, and
leave the others to the organisation's own work."""
BESIDE = 1024
"""Blocks (8 MB) from which a table is counted while the walkers take their first ranges; a
smaller one is counted first, in less time than the overlap would save."""
WAIT = 0.75
"""How long (seconds) a batch's transaction may stay open waiting for the plan, under the second
no transaction may reach."""


class Gate:
    """Whether the walkers may commit: closed until the plan is counted and the guard passed."""

    def __init__(self) -> None:
        self._opened = threading.Event()
        self.plan: RetentionPlan | None = None

    @property
    def is_open(self) -> bool:
        return self._opened.is_set()

    def open(self, plan: RetentionPlan | None) -> None:
        """Let the walkers commit under `plan`, or (None) stop them with nothing committed."""
        self.plan = plan
        self._opened.set()

    def wait(self, timeout: float | None) -> bool:
        """Whether the gate is open, waiting at most `timeout` seconds (None: until it is)."""
        return self._opened.wait(timeout)


class _Stopped(Exception):
    """A walker stops quietly: the run is stopping, or the gate said so; nothing is kept."""


class RangedRun:
    """One enforcement run of a policy by row address, its walkers each on its own thread."""

    def __init__(
        self,
        bound: BoundPolicy,
        walkers: list[RangeWalker],
        ledger: RetentionLedger,
        gate: Gate,
        *,
        run: str,
        limit: int,
        secret: bytes | None,
        clock: Clock,
        timer: Callable[[], float],
        check: Callable[[], None] | None,
        on_batch: Callable[[Batch], None] | None,
    ) -> None:
        self.bound = bound
        self.walkers = walkers
        self.ledger = ledger
        self.gate = gate
        self.run = run
        self.limit = limit
        self.secret = secret
        self.clock = clock
        self.timer = timer
        self.check = check
        self.on_batch = on_batch
        self.processed = 0
        self.batches = 0  # settled
        self.longest = 0.0
        self.unsettled: set[int] = set()  # intents begun, not settled
        self._numbered = 0  # batch numbers given
        self._reserved = 0  # room taken by the batches under way
        self._stopping = False
        self._errors: list[BaseException] = []
        self._lock = threading.Condition()
        self._listener = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the walkers, each on its own thread and connection."""
        for index, walker in enumerate(self.walkers):
            thread = threading.Thread(
                target=self._walk, args=(walker,), name=f"retention-walker-{index}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop the walkers before their next batch (a batch under way is finished and
        settled); those waiting for the plan commit nothing."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
        if not self.gate.is_open:
            self.gate.open(None)

    def join(self) -> None:
        """Wait for every walker to end.

        Raises:
            BaseException: the first error a walker stopped on (the others stopped after it).
        """
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]

    # --- one walker ---------------------------------------------------------------------------

    def _walk(self, walker: RangeWalker) -> None:
        size = self.bound.policy.batch_size
        try:
            with self.bound.source.connect() as connection:
                while not walker.finished:
                    if self.check is not None:
                        self.check()
                    most = self._reserve(size)
                    if not most:
                        return
                    done = self._batch(connection, walker, size, most)
                    if done is not None:
                        size = next_batch_size(done[0], done[1], self.bound.policy.batch_size)
        except _Stopped:
            return
        except BaseException as exc:  # noqa: BLE001 (handed to the caller's thread by join)
            with self._lock:
                self._errors.append(exc)
                self._stopping = True
                self._lock.notify_all()

    def _batch(
        self, connection: Connection, walker: RangeWalker, size: int, most: int
    ) -> tuple[int, float] | None:
        """One range in one transaction: (records, seconds without waiting for the plan) when
        it processed some, else None.

        Raises:
            _Stopped: the run stops, and this batch was rolled back.
        """
        started = self.clock()
        before = self.timer()
        begun: tuple[int, BatchIntent] | None = None
        try:
            with connection.begin() as transaction:
                held = walker.take(connection, size, most)
                waited = self._ready(before) if held else 0.0
                if waited is None:
                    # The plan is late: undo the range rather than hold its records longer.
                    transaction.rollback()
                    walker.undo()
                elif held:
                    begun = self._begin(held, started)
        except BaseException:
            self._release(most, fail=True)
            raise
        if waited is None:
            self._release(most)
            if not self.gate.wait(None) or self.gate.plan is None:
                raise _Stopped
            return None  # the same range again, now that the plan is in
        seconds = self.timer() - before
        walker.took(seconds - waited)
        if begun is None or held is None:
            self._release(most)
            return None
        self._settle(begun, held.processed, started, seconds, most)
        return held.processed, seconds - waited

    def _ready(self, before: float) -> float | None:
        """How long the transaction begun at `before` waited for the gate to open; None: it
        did not open within `WAIT` of `before`.

        Raises:
            _Stopped: the gate opened without a plan (refused, nothing to do, or stopping).
        """
        waited = 0.0
        if not self.gate.is_open:
            began = self.timer()
            if not self.gate.wait(max(0.0, WAIT - (began - before))):
                return None
            waited = self.timer() - began
        if self.gate.plan is None:
            raise _Stopped
        return waited

    # --- what the walkers share ---------------------------------------------------------------

    def _reserve(self, size: int) -> int:
        """Room for a batch of up to `size` records under the run's limit; 0: stop (the limit
        is reached, or the run is stopping). Waits while the batches under way hold the rest."""
        with self._lock:
            while not self._stopping:
                room = self.limit - self.processed - self._reserved
                if room > 0:
                    most = min(size, room)
                    self._reserved += most
                    return most
                if not self._reserved:
                    return 0
                self._lock.wait()
            return 0

    def _release(self, most: int, fail: bool = False) -> None:
        """Give back the room of a batch that processed nothing (`fail`: it failed, and the run
        stops before any other batch begins)."""
        with self._lock:
            self._reserved -= most
            self._stopping = self._stopping or fail
            self._lock.notify_all()

    def _begin(self, held: SourceTransaction, started: datetime) -> tuple[int, BatchIntent]:
        """Number the batch and commit its intent (the data source commits the batch after).

        Raises:
            _Stopped: the run is stopping; the batch is rolled back.
            StoreError: the intent could not be committed; the batch is rolled back.
        """
        plan = self.gate.plan
        assert plan is not None
        with self._lock:
            if self._stopping:
                raise _Stopped
            # The number is used even when the intent fails: it may have been committed.
            number, self._numbered = self._numbered, self._numbered + 1
        intent = range_intent(plan, self.run, number, held, self.secret, started)
        try:
            intent_id = self.ledger.begin_retention_batch(intent)
        except BaseException:
            self._release(0, fail=True)  # no other batch begins
            raise
        with self._lock:
            self.unsettled.add(intent_id)
        return intent_id, intent

    def _settle(
        self,
        begun: tuple[int, BatchIntent],
        rows: int,
        started: datetime,
        seconds: float,
        most: int,
    ) -> None:
        """Record a committed batch with its evidence, then tell the listener.

        Raises:
            StoreError: its evidence could not be written; it stays pending, and the run stops.
        """
        intent_id, intent = begun
        batch = Batch(intent.batch, rows, intent.key_range, started, self.clock(), seconds)
        try:
            self.ledger.settle_retention_batch(
                intent_id,
                rows,
                "confirmed",
                batch_content(intent, batch),
                batch.finished_at,
            )
        except BaseException:
            self._release(most, fail=True)
            raise
        with self._lock:
            self._reserved -= most
            self.unsettled.discard(intent_id)
            self.processed += rows
            self.batches += 1
            self.longest = max(self.longest, seconds)
            self._lock.notify_all()
        if self.on_batch is not None:
            with self._listener:
                self.on_batch(batch)
