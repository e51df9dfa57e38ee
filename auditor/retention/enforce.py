"""Retention enforcement in batches of keys, each batch one short transaction that re-checks the
deadline and the legal hold in the UPDATE or DELETE itself, begun and settled in the ledger.

One run:

1. reconciles the policy's batches that an earlier run left unsettled (`reconcile`);
2. plans the policy at the audit time (`auditor.retention.plan`), which fixes the deadline for
   the whole run;
3. refuses, before changing anything, when the data source is read-only, when a keyed hash has
   no key, or when the run would process more than `max_share` of the table (unless allowed);
4. walks the eligible keys in order (keyset pagination): each batch reads the next eligible keys
   (at most `batch_size`, fewer when the last batch's transaction took longer than its target
   time, `auditor.retention.batches.next_batch_size`), commits its intent (policy, run, action,
   deadline, keys) in the state database, then, in one data-source transaction, deletes or
   updates those of the records that are *still* in scope, overdue and not held (with their
   dependents, `auditor.retention.batches`), and settles the intent with its `retention-batch`
   evidence record (policy, action, rows, the dependent rows deleted per table, a hash of the key
   range, deadline, start and end). On PostgreSQL, where batches walk the table by row address
   (`auditor.retention.ranges`: one statement processes a range), the intent names the
   data-source transaction and how many records its statement processed, and is committed after
   the statement and before the data-source COMMIT; there the table's two halves are walked at
   once, and a large table's plan (step 2) is counted while the first batches run, none
   committed before the guard (step 3) passed (`auditor.retention.parallel`). A record touched or put on hold after the plan is left
   alone. When the intent cannot be committed (the state database locked past its timeout, or
   down), the batch does not run, or is rolled back;
5. appends one `retention-run` record at the end.

A run stopped at any point (SIGTERM, SIGKILL, a lost connection or state database) leaves every
batch done or not done, as the database commits or rolls back each transaction whole, and every
batch that may have committed has an intent (nothing is committed in the data source before
it): settled with its evidence, or pending until the next reconciliation looks in the data
source and records what it did. So the `retention-batch` records add up to what was processed;
the one exception is said where it happens: a batch by row address whose transaction the data
source can no longer tell about, with records still in its range, is recorded as undetermined
(`auditor.retention.reconcile`). Running it again changes nothing more: deleted records are
gone, anonymised ones no longer match (their columns hold their replacements).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from auditor.core.errors import InvalidRequestError, StoreError
from auditor.core.ledger import RetentionLedger, new_run
from auditor.core.ports import Clock
from auditor.retention.batches import BatchWalker, next_batch_size
from auditor.retention.intent import batch_intent
from auditor.retention.parallel import BESIDE, WALKERS, Gate, RangedRun
from auditor.retention.plan import RetentionPlan, plan_policy, policy_deadline, run_limit
from auditor.retention.policy import ANONYMISE_KEY_ENV
from auditor.retention.ranges import RangeWalker, walkable
from auditor.retention.reconcile import Batch, batch_content, reconcile_policy
from auditor.retention.tables import BoundPolicy

Outcome = Literal["done", "limit-reached", "report-only"]

MIN_KEY_BYTES = 16


class RetentionRefusedError(InvalidRequestError):
    """Enforcement was refused before anything was changed; the message says why and what to do."""

    def __init__(self, policy: str, reason: str) -> None:
        self.policy = policy
        self.reason = reason
        super().__init__(f"retention policy {policy!r}: refused, nothing was changed: {reason}")


@dataclass(frozen=True, slots=True)
class Enforcement:
    """One enforcement run of one policy."""

    plan: RetentionPlan  # as planned at the start of the run
    run: str
    processed: int
    batches: int
    outcome: Outcome
    started_at: datetime
    finished_at: datetime
    longest_transaction_seconds: float

    def as_json(self) -> dict[str, Any]:
        """The run for `--format json` (stable keys)."""
        return {
            "run": self.run,
            "outcome": self.outcome,
            "processed": self.processed,
            "batches": self.batches,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "longest_transaction_seconds": round(self.longest_transaction_seconds, 6),
            "plan": self.plan.as_json(),
        }


def anonymise_key(environ: Mapping[str, str]) -> bytes | None:
    """The secret of keyed hashes from GDPR_AUDITOR_ANONYMISE_KEY, or None when it is unset.

    Raises:
        InvalidRequestError: it is set but shorter than 16 bytes, too short to be a secret.
    """
    text = environ.get(ANONYMISE_KEY_ENV, "")
    if not text:
        return None
    secret = text.encode("utf-8")
    if len(secret) < MIN_KEY_BYTES:
        raise InvalidRequestError(
            f"{ANONYMISE_KEY_ENV} is shorter than {MIN_KEY_BYTES} bytes: use a random secret"
        )
    return secret


def enforce_policy(
    bound: BoundPolicy,
    clock: Clock,
    ledger: RetentionLedger,
    *,
    secret: bytes | None = None,
    max_rows: int | None = None,
    allow_large_share: bool = False,
    check: Callable[[], None] | None = None,
    on_batch: Callable[[Batch], None] | None = None,
    timer: Callable[[], float] = time.perf_counter,
    plan: RetentionPlan | None = None,
) -> Enforcement:
    """Reconcile the policy's unsettled batches, plan it at `clock()` and process its eligible
    records in batches, each begun in and settled with `ledger`.

    `secret` keys the hashes (of anonymised values and of key ranges); `check` is called before
    each batch and may raise to stop the run there (the daemon's JobContext.check); `on_batch`
    hears of each committed batch, reconciled ones included, one at a time (on PostgreSQL from
    the walkers' threads). `plan`: the caller's plan of this policy, made after its unsettled
    batches were reconciled, so that the table is not counted twice; without one, the run plans
    at `clock()`, on PostgreSQL while its first batches run (none is committed before the plan
    is in and the guard passed).

    Each batch holds at most the policy's batch_size records; the next batch is sized toward a
    target transaction time (`auditor.retention.batches.next_batch_size`).

    The order of reconcile, plan, guard, intent, batch and settlement is the safety argument for
    changing the organisation's data; it reads top to bottom here and in `_by_key`, and in
    `auditor.retention.parallel` for the walks by row address.

    Raises:
        RetentionRefusedError: refused before any change (read-only source, too large a share,
            a keyed hash without a key).
        InvalidInputError: the policy's keep_for reaches before the calendar's first year.
        DataSourceError: the data source failed; the batches committed so far stay done, and a
            batch whose outcome is unknown stays pending for the next reconciliation.
        StoreError: an intent could not be committed (the batch did not run) or settled (it
            stays pending for the next reconciliation); the run stops there.
    """
    started = clock()
    reconciled = reconcile_policy(bound, ledger, clock)
    if on_batch is not None:
        for batch in reconciled:
            on_batch(batch)
    if reconciled:
        plan = None  # counted before the reconciled batches were known
    run = _Run(bound, ledger, new_run(), started, clock, secret, allow_large_share)
    walkers = None
    if bound.policy.action != "report" and not bound.source.read_only:
        with bound.source.connect() as connection:
            size = walkable(connection, bound)
            if size is not None:
                if plan is None and size.blocks < BESIDE:
                    plan = plan_policy(bound, started, max_rows)
                # The deadline the plan has, or will have.
                deadline = (
                    plan.deadline if plan is not None else policy_deadline(bound.policy, started)
                )
                walkers = RangeWalker.split(connection, bound, deadline, size, plan, WALKERS)
    if walkers is None:
        return _by_key(run, plan or plan_policy(bound, started, max_rows), check, on_batch, timer)
    gate = Gate()
    ranged = RangedRun(
        bound,
        walkers,
        ledger,
        gate,
        run=run.id,
        limit=run_limit(bound.policy, max_rows),
        secret=secret,
        clock=clock,
        timer=timer,
        check=check,
        on_batch=on_batch,
    )
    if plan is not None:
        if not run.passes(plan):
            return run.nothing_to_do(plan)
        gate.open(plan)
    ranged.start()
    if plan is None:
        # Counted on a third connection while the walkers take their first ranges.
        try:
            plan = plan_policy(bound, started, max_rows)
            passes = run.passes(plan)
        except BaseException:
            ranged.stop()
            _join_quietly(ranged)  # the plan's error, or the refusal, is the one to raise
            raise
        if not passes:
            ranged.stop()
            ranged.join()
            return run.nothing_to_do(plan)
        gate.open(plan)
    try:
        ranged.join()
    except BaseException as exc:
        ranged.stop()
        _join_quietly(ranged)
        run.stopped(plan, exc, ranged.processed, ranged.batches, len(ranged.unsettled))
        raise
    outcome: Outcome = "limit-reached" if ranged.processed >= plan.limit else "done"
    return run.done(plan, outcome, ranged.processed, ranged.batches, ranged.longest)


def _by_key(
    run: _Run,
    plan: RetentionPlan,
    check: Callable[[], None] | None,
    on_batch: Callable[[Batch], None] | None,
    timer: Callable[[], float],
) -> Enforcement:
    """The run on a connection of its own, by key: each batch reads the next eligible keys,
    commits their intent, then processes them (`auditor.retention.batches`)."""
    bound, ledger, clock = run.bound, run.ledger, run.clock
    if plan.action == "report":
        return Enforcement(plan, run.id, 0, 0, "report-only", run.started, clock(), 0.0)
    if not run.passes(plan):
        return run.nothing_to_do(plan)
    walker = BatchWalker(bound, plan, run.secret)
    processed = batches = 0
    longest = 0.0
    size = bound.policy.batch_size
    outcome: Outcome = "limit-reached"
    unsettled = False
    try:
        with bound.source.connect() as connection:
            while processed < plan.limit:
                if check is not None:
                    check()
                batch_started = clock()
                # Read the next keys (none left: done), commit their intent, then process them.
                keys = walker.window(connection, min(size, plan.limit - processed))
                if not keys:
                    outcome = "done"
                    break
                intent = batch_intent(
                    plan, run.id, batches, keys, walker.keyed, run.secret, batch_started
                )
                # Nothing is changed in the data source before its intent is committed.
                intent_id = ledger.begin_retention_batch(intent)
                unsettled = True
                before = timer()
                applied = walker.apply(connection, keys)
                seconds = timer() - before
                batch = Batch(
                    batches,
                    applied.rows,
                    intent.key_range,
                    batch_started,
                    clock(),
                    seconds,
                    dependents=applied.dependents if bound.dependents else None,
                )
                ledger.settle_retention_batch(
                    intent_id,
                    applied.rows,
                    "confirmed",
                    batch_content(intent, batch),
                    batch.finished_at,
                )
                unsettled = False
                processed, batches = processed + applied.rows, batches + 1
                longest = max(longest, seconds)
                size = next_batch_size(len(keys), seconds, bound.policy.batch_size)
                if on_batch is not None:
                    on_batch(batch)
    except BaseException as exc:
        run.stopped(plan, exc, processed, batches, int(unsettled))
        raise
    return run.done(plan, outcome, processed, batches, longest)


def _join_quietly(ranged: RangedRun) -> None:
    """Wait for the walkers after the run failed: the error on its way out is the one to raise."""
    with contextlib.suppress(BaseException):
        ranged.join()


@dataclass(slots=True)
class _Run:
    """What one run records in the ledger: refused, finished with nothing to do, stopped, done."""

    bound: BoundPolicy
    ledger: RetentionLedger
    id: str
    started: datetime
    clock: Clock
    secret: bytes | None
    allow_large_share: bool

    def passes(self, plan: RetentionPlan) -> bool:
        """Whether the run goes on under `plan`: False when there is nothing to process.

        Raises:
            RetentionRefusedError: the guard refused it (recorded).
        """
        try:
            check_guard(self.bound, plan, self.secret, self.allow_large_share)
        except RetentionRefusedError as exc:
            # Best effort: the refusal is what the caller needs.
            with contextlib.suppress(StoreError):
                self.record(plan, "refused", 0, 0, exc.reason)
            raise
        return plan.to_process > 0

    def nothing_to_do(self, plan: RetentionPlan) -> Enforcement:
        """The run with nothing to process, recorded."""
        return self.done(plan, "done", 0, 0, 0.0)

    def done(
        self, plan: RetentionPlan, outcome: Outcome, processed: int, batches: int, longest: float
    ) -> Enforcement:
        finished = self.clock()
        self.record(plan, outcome, processed, batches, finished=finished)
        return Enforcement(
            plan, self.id, processed, batches, outcome, self.started, finished, longest
        )

    def stopped(
        self,
        plan: RetentionPlan,
        exc: BaseException,
        processed: int,
        batches: int,
        unsettled: int,
    ) -> None:
        """Record the run stopped by `exc`, with the batches it left unsettled (their rows are
        recorded when they are reconciled); best effort, as `exc` is what the caller needs."""
        reason = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
        with contextlib.suppress(StoreError):
            self.record(plan, "stopped", processed, batches, reason, unsettled=unsettled)

    def record(
        self,
        plan: RetentionPlan,
        outcome: str,
        processed: int,
        batches: int,
        reason: str | None = None,
        *,
        unsettled: int = 0,
        finished: datetime | None = None,
    ) -> None:
        """Append the run's `retention-run` record."""
        _run_record(
            self.ledger,
            plan,
            self.id,
            outcome,
            processed,
            batches,
            self.started,
            finished or self.clock(),
            reason,
            unsettled,
        )


# --- the guard rails ------------------------------------------------------------------------------


def check_guard(
    bound: BoundPolicy, plan: RetentionPlan, secret: bytes | None, allow_large_share: bool
) -> None:
    """Refuse a run that must not start: nothing is changed, and the message says what to do.

    Raises:
        RetentionRefusedError: the data source is read-only, a keyed hash has no secret, or the
            run would process more than the policy's max_share of its table (unless allowed).
    """
    if plan.action == "report":
        return
    policy = bound.policy
    if bound.source.read_only:
        raise RetentionRefusedError(
            policy.id,
            f"data source {policy.source!r} is read-only; set read_only: false on it to let "
            f"retention {policy.action} records",
        )
    hashes = any(r.kind == "hash" for r in policy.anonymise)
    if secret is None and hashes and plan.to_process:
        raise RetentionRefusedError(
            policy.id,
            f"a keyed hash needs a secret in the environment variable {ANONYMISE_KEY_ENV}",
        )
    if plan.share_exceeded and not allow_large_share:
        raise RetentionRefusedError(
            policy.id,
            f"this run would {policy.action} {plan.to_process} of the {plan.table_rows} records "
            f"in {plan.table} ({plan.share:.1%}), more than its max_share of "
            f"{policy.max_share:.1%}; check its timestamp column, keep_for and filter, then lower "
            "max_rows_per_run (or --max-rows), raise max_share, or allow it once with "
            "--allow-large-share",
        )


# --- evidence ---------------------------------------------------------------------------------


def _run_record(
    ledger: RetentionLedger,
    plan: RetentionPlan,
    run: str,
    outcome: str,
    processed: int,
    batches: int,
    started: datetime,
    finished: datetime,
    reason: str | None = None,
    unsettled: int = 0,
) -> None:
    planned = plan.as_json()
    content: dict[str, Any] = {
        "policy": plan.policy,
        "action": plan.action,
        "source": plan.source,
        "table": plan.table,
        "deadline": plan.deadline,
        "run": run,
        "outcome": outcome,
        "rows": processed,
        "batches": batches,
        "planned": {k: planned[k] for k in ("table_rows", "overdue", "held", "to_process")},
        "started_at": started,
        "finished_at": finished,
    }
    if reason is not None:
        content["reason"] = reason
    if unsettled:
        # The batches under way when the run stopped: their rows are recorded when they are
        # reconciled.
        content["unsettled_batches"] = unsettled
    ledger.append_evidence("retention-run", content, finished)


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
