"""The state store: audit runs, what they observed, findings with their history, and waivers.

Only this package opens connections. Every method is one transaction, so a process killed in the
middle of one leaves the state as it was before it.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from auditor import __version__
from auditor.audit import AuditResult
from auditor.consent_import import ImportedConsent
from auditor.errors import (
    FindingNotFoundError,
    InvalidRequestError,
    SchemaVersionError,
    StoreError,
)
from auditor.evidence.chain import EvidenceRecord
from auditor.lifecycle import Change, Status
from auditor.model import Finding, PlaceCheck
from auditor.ports import DataSet
from auditor.retention.ledger import BatchIntent, PendingBatch, Settlement
from auditor.sources.consent import ConsentCoverage
from auditor.store import consents, evidence, intents, migrations
from auditor.store import waivers as waiver_queries
from auditor.store.consents import ImportCounts, StoredCoverage
from auditor.store.engine import WRITE, create_store_engine, display_url, normalise_url
from auditor.store.recording import (
    FindingChanges,
    apply_findings,
    dataset_json,
    insert_event,
    insert_integrations,
    insert_observations,
    insert_places,
    job_scope,
    record_findings,
)
from auditor.store.records import (
    FindingDetail,
    FindingEvent,
    RunRecord,
    RunSummary,
    SnapshotCounts,
    StoredFinding,
    StoreStatus,
    finding_order,
    place_check_record,
    run_record,
    stored_finding,
    waiver_record,
)
from auditor.store.schema import (
    audit_runs,
    finding_events,
    findings,
    observations,
    place_checks,
    run_integrations,
    waivers,
)

RUNNING, SUCCESS, ERROR, INTERRUPTED = "running", "success", "error", "interrupted"
FINDING_STATES = ("open", "waived", "resolved", "all")
"""What `list_findings(status=...)` accepts: open and unwaived, open under a waiver, resolved, all."""

MAX_ERROR_CHARS = 1000

# pg_advisory_xact_lock key serialising schema creation and upgrades between replicas
# (the bigint key space; the leader lock uses the two-integer one, which never overlaps it).
_SCHEMA_LOCK = 0x6764707273636D61


class StateStore:
    """The one repository over the state database; open it with `StateStore.open(url)`."""

    def __init__(self, engine: Engine, evidence_key: bytes | None = None) -> None:
        self.engine = engine
        self.evidence_key = evidence_key  # signs evidence records (HMAC) when set
        self.url = display_url(engine.url)
        self._sqlite = engine.dialect.name == "sqlite"
        self._writer = engine.execution_options(**{WRITE: True})
        # Repeatable read on PostgreSQL: the several queries of one scrape see one state.
        self._reader = (
            engine if self._sqlite else engine.execution_options(isolation_level="REPEATABLE READ")
        )
        database = engine.url.database if self._sqlite else None
        # A SQLite file's identity once opened: a file deleted or replaced under an open
        # connection takes writes that nobody will ever read (see `check_file`).
        self._file = database if database and not database.startswith(":memory:") else None
        self._identity: tuple[int, int] | None = None

    # -- opening, schema versions -------------------------------------------------------------

    @classmethod
    def open(
        cls, url: str, *, check_version: bool = True, evidence_key: bytes | None = None
    ) -> StateStore:
        """Connect; create the schema in an empty database; refuse another schema version.

        With `check_version=False` nothing is created or checked (for `db status|upgrade`).

        Raises:
            SchemaVersionError: the database's schema is older or newer than this code's.
            StoreError: the URL is unusable or the database cannot be reached.
        """
        store = cls(create_store_engine(normalise_url(url)), evidence_key)
        if check_version:
            try:
                store._ensure_schema()
            except BaseException:
                store.close()
                raise
        store._remember_file()
        return store

    def _remember_file(self) -> None:
        if self._file is not None:
            try:
                status = os.stat(self._file)
            except OSError:
                return  # not created yet (`db status` of a new database)
            self._identity = (status.st_dev, status.st_ino)

    def check_file(self) -> None:
        """Check that a SQLite database file is still the one opened; PostgreSQL always passes.

        Raises:
            StoreError: the file was deleted, or replaced by another one (another device or
                inode): whatever is written now would be lost, and a new connection would
                create an empty database in its place.
        """
        if self._file is None or self._identity is None:
            return
        try:
            status = os.stat(self._file)
        except FileNotFoundError:
            raise StoreError(
                f"the state database {self.url} was deleted while in use; nothing more is "
                "written, so that nothing is lost in a deleted file: restore it from a backup "
                "and restart"
            ) from None
        except OSError as exc:
            raise StoreError(f"the state database {self.url} cannot be checked: {exc}") from None
        if (status.st_dev, status.st_ino) != self._identity:
            raise StoreError(
                f"the state database {self.url} was replaced by another file while in use "
                "(another device or inode); nothing more is written: restart to open the new file"
            )

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def schema_version(self) -> int | None:
        """Return the database's schema version, or None when it has no tables of ours yet."""
        with self._read() as conn:
            return migrations.stored_version(conn)

    def upgrade(self) -> tuple[int | None, int]:
        """Create or upgrade the schema to this code's version; return (before, after).

        Raises:
            SchemaVersionError: the database is newer than this code; nothing is changed.
        """
        with self._write() as conn:
            self._lock_schema(conn)
            found = migrations.stored_version(conn)
            if found is not None and found > migrations.SCHEMA_VERSION:
                raise SchemaVersionError(self.url, found, migrations.SCHEMA_VERSION)
            if found == migrations.SCHEMA_VERSION:
                return found, found
            return found, migrations.migrate(conn, found or 0)

    def _ensure_schema(self) -> None:
        with self._read() as conn:
            found = migrations.stored_version(conn)
        if found is None:
            with self._write() as conn:
                self._lock_schema(conn)
                # Another replica may have created it while we waited for the lock.
                found = migrations.stored_version(conn)
                if found is None:
                    found = migrations.migrate(conn, 0)
        if found != migrations.SCHEMA_VERSION:
            raise SchemaVersionError(self.url, found, migrations.SCHEMA_VERSION)

    def _lock_schema(self, conn: Connection) -> None:
        if not self._sqlite:  # SQLite's BEGIN IMMEDIATE already serialises writers
            conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK)))

    # -- transactions ---------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        self.check_file()
        try:
            with self._writer.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(self._describe(exc)) from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        self.check_file()
        try:
            with self._reader.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(self._describe(exc)) from exc

    def _describe(self, exc: SQLAlchemyError) -> str:
        cause = getattr(exc, "orig", None) or exc
        first = (str(cause).strip().splitlines() or [""])[0]
        password = self.engine.url.password
        if password:
            first = first.replace(str(password), "***")
        return f"the state database {self.url}: {type(cause).__name__}: {first}"

    # -- audit runs -----------------------------------------------------------------------------

    def begin_run(
        self, started_at: datetime, *, tool_version: str, config_digest: str, policy_digest: str
    ) -> int:
        """Record a run as running (committed at once, so a killed process leaves a trace)."""
        with self._write() as conn:
            inserted = conn.execute(
                insert(audit_runs)
                .values(
                    started_at=started_at,
                    outcome=RUNNING,
                    tool_version=tool_version,
                    config_digest=config_digest,
                    policy_digest=policy_digest,
                    datasets=[],
                )
                .returning(audit_runs.c.id)
            )
            return int(inserted.scalar_one())

    def finish_run(self, run_id: int, result: AuditResult, finished_at: datetime) -> RunSummary:
        """Record a completed audit in one transaction: findings' lifecycle, events, observations,
        place checks, integrations, and the run's outcome `success`.

        Raises:
            StoreError: the run is not running (finished, failed or interrupted already), or the
                database refused the writes; nothing of this run is then recorded.
        """
        with self._write() as conn:
            claimed = conn.execute(
                update(audit_runs)
                .where(audit_runs.c.id == run_id, audit_runs.c.outcome == RUNNING)
                .values(finished_at=finished_at)
            )
            if claimed.rowcount != 1:
                raise StoreError(f"run {run_id} is not a running audit run; nothing recorded")
            mark = evidence.last_event_id(conn)
            summary = record_findings(conn, run_id, result)
            insert_observations(conn, run_id, result.observations)
            insert_places(conn, run_id, result.places)
            insert_integrations(conn, run_id, result)
            geoip = next((d.built for d in result.datasets if d.kind == "geoip-country"), None)
            conn.execute(
                update(audit_runs)
                .where(audit_runs.c.id == run_id)
                .values(
                    outcome=SUCCESS,
                    as_of=result.as_of,
                    policy_digest=result.policy_digest,
                    geoip_built=geoip,
                    datasets=[dataset_json(d) for d in result.datasets],
                    integrations=len(result.integrations),
                    hostnames=result.hostnames,
                    findings=summary.open,
                    new=summary.new,
                    resolved=summary.resolved,
                    reopened=summary.reopened,
                    carried=summary.carried,
                    probes_failed=sorted(result.failed_probes),
                )
            )
            run_content = {
                "run_id": run_id,
                "outcome": SUCCESS,
                "as_of": result.as_of,
                "started_at": result.started_at,
                "finished_at": finished_at,
                "tool_version": __version__,
                "policy_digest": result.policy_digest,
                "datasets": [dataset_json(d) for d in result.datasets],
                "integrations": len(result.integrations),
                "hostnames": result.hostnames,
                "findings_open": summary.open,
                "new": summary.new,
                "resolved": summary.resolved,
                "reopened": summary.reopened,
                "carried": summary.carried,
                "probes_failed": sorted(result.failed_probes),
            }
            self._seal(conn, finished_at, mark, [("audit-run", run_content)])
            return summary

    def fail_run(self, run_id: int, finished_at: datetime, error: str) -> None:
        """Mark a running run as failed with a short error (class and message, no secrets)."""
        with self._write() as conn:
            failed = conn.execute(
                update(audit_runs)
                .where(audit_runs.c.id == run_id, audit_runs.c.outcome == RUNNING)
                .values(outcome=ERROR, finished_at=finished_at, error=error[:MAX_ERROR_CHARS])
            )
            if failed.rowcount:
                content = {"run_id": run_id, "outcome": ERROR, "error": error[:MAX_ERROR_CHARS]}
                self._seal(conn, finished_at, None, [("audit-run", content)])

    def interrupt_run(self, run_id: int, finished_at: datetime, reason: str) -> None:
        """Mark a running run as interrupted: stopped on purpose (shutdown, lost leadership).

        Unlike `fail_run`, nothing went wrong with the audit; `reason` says why it stopped. A run
        that is no longer running is left as it is.
        """
        with self._write() as conn:
            stopped = conn.execute(
                update(audit_runs)
                .where(audit_runs.c.id == run_id, audit_runs.c.outcome == RUNNING)
                .values(
                    outcome=INTERRUPTED, finished_at=finished_at, error=reason[:MAX_ERROR_CHARS]
                )
            )
            if stopped.rowcount:
                content = {"run_id": run_id, "outcome": INTERRUPTED, "reason": reason}
                self._seal(conn, finished_at, None, [("audit-run", content)])

    def mark_interrupted(self, now: datetime) -> int:
        """Mark runs left running by a killed process as interrupted; return how many.

        Call it at start-up, and with several replicas only while holding the leader lock: a
        standby would otherwise mark the active replica's run.
        """
        with self._write() as conn:
            left = sorted(
                conn.execute(
                    select(audit_runs.c.id).where(audit_runs.c.outcome == RUNNING)
                ).scalars()
            )
            if not left:
                return 0
            reason = "the process stopped before the run finished"
            conn.execute(
                update(audit_runs)
                .where(audit_runs.c.id.in_(left))
                .values(outcome=INTERRUPTED, finished_at=now, error=reason)
            )
            items = [
                ("audit-run", {"run_id": i, "outcome": INTERRUPTED, "reason": reason}) for i in left
            ]
            self._seal(conn, now, None, items)
            return len(left)

    def latest_run(self, successful: bool = True) -> RunRecord | None:
        """Return the newest run (the newest successful one by default), or None."""
        with self._read() as conn:
            return _latest_run(conn, successful)

    def latest_places(self) -> list[PlaceCheck]:
        """Return the place checks of the latest successful run."""
        with self._read() as conn:
            run = _latest_run_id(conn)
            if run is None:
                return []
            rows = conn.execute(
                select(place_checks).where(place_checks.c.run_id == run).order_by(place_checks.c.id)
            )
            return [place_check_record(row) for row in rows]

    def latest_categories(self) -> dict[str, int]:
        """Return integrations by category in the latest successful run."""
        with self._read() as conn:
            return _categories(conn, _latest_run_id(conn))

    def prune_observations(self, before: datetime) -> int:
        """Delete observations, place checks and run integrations of runs started before `before`,
        never those of the latest successful run; return the rows deleted."""
        with self._write() as conn:
            keep = _latest_run_id(conn)
            old = select(audit_runs.c.id).where(audit_runs.c.started_at < before)
            if keep is not None:
                old = old.where(audit_runs.c.id != keep)
            deleted = 0
            for table in (observations, place_checks, run_integrations):
                deleted += conn.execute(table.delete().where(table.c.run_id.in_(old))).rowcount
            return deleted

    # -- findings -------------------------------------------------------------------------------

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
                FindingEvent(e.id, e.finding_id, e.run_id, e.at, e.change, dict(e.detail))
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

    # -- waivers --------------------------------------------------------------------------------

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

    # -- evidence -------------------------------------------------------------------------------

    def append_evidence(self, kind: str, content: Mapping[str, Any], at: datetime) -> None:
        """Append one record to the evidence chain (a config reload, a retention batch, ...)."""
        with self._write() as conn:
            evidence.append(conn, kind, content, at, self.evidence_key)

    def evidence_records(self) -> Iterator[EvidenceRecord]:
        """Every evidence record in sequence order, read in batches within one transaction."""
        with self._read() as conn:
            yield from evidence.records(conn)

    # -- retention batches ----------------------------------------------------------------------

    def begin_retention_batch(self, intent: BatchIntent) -> int:
        """Commit a retention batch's intent before the batch runs; return its id."""
        with self._write() as conn:
            intents.bound_lock_wait(conn)
            return intents.begin(conn, intent)

    def settle_retention_batch(
        self,
        intent_id: int,
        rows: int,
        how: Settlement,
        content: Mapping[str, Any],
        at: datetime,
    ) -> int | None:
        """Settle a retention batch's intent and append its `retention-batch` record, in one
        transaction; return the rows recorded (see `RetentionLedger.settle_retention_batch`)."""
        with self._write() as conn:
            intents.bound_lock_wait(conn)
            return intents.settle(conn, intent_id, rows, how, content, at, self.evidence_key)

    def pending_retention_batches(self, policy: str) -> list[PendingBatch]:
        """The policy's retention batches whose intents are not settled yet, oldest first."""
        with self._read() as conn:
            intents.bound_lock_wait(conn)
            return intents.pending(conn, policy)

    def _seal(
        self,
        conn: Connection,
        at: datetime,
        events_after: int | None,
        items: Sequence[tuple[str, Mapping[str, Any]]],
    ) -> None:
        """Append evidence for the finding events written since `events_after`, then `items`."""
        changes: list[tuple[str, Mapping[str, Any], datetime]] = []
        if events_after is not None:
            changes = [
                (f"finding-{row.change}", row.content, row.at)
                for row in evidence.finding_event_items(conn, events_after)
            ]
        changes += [(kind, content, at) for kind, content in items]
        evidence.append_many(conn, changes, self.evidence_key)

    # -- consents -------------------------------------------------------------------------------

    def import_consents(
        self,
        purpose: str,
        rows: Iterable[ImportedConsent],
        *,
        digest: str,
        at: datetime,
        evidence_content: Mapping[str, Any] | None = None,
        batch_size: int = consents.IMPORT_BATCH,
    ) -> ImportCounts:
        """Import consents for `purpose` in one transaction, with a `consent-import` evidence
        record (the file's digest, the purpose and the counts; never a subject key).

        Raises:
            Exception: whatever `rows` raised (a bad row); nothing is imported then.
            StoreError: the database refused the writes; nothing is imported.
        """
        with self._write() as conn:
            counts = consents.import_rows(
                conn, purpose, rows, digest=digest, at=at, batch_size=batch_size
            )
            content = {
                **(evidence_content or {}),
                "purpose": purpose,
                "file_sha256": digest,
                "read": counts.read,
                "inserted": counts.inserted,
                "updated": counts.updated,
                "already_present": counts.already_present,
            }
            self._seal(conn, at, None, [("consent-import", content)])
            return counts

    def imported_consent_states(
        self, purpose: str, hashes: Collection[str], as_of: date
    ) -> dict[str, int]:
        """Of the subjects of `hashes`, those with an imported consent for `purpose` granted by
        the end of `as_of`: 1 if one still stands that day, 0 if all were withdrawn by then."""
        with self._read() as conn:
            return consents.consent_states(conn, purpose, hashes, as_of)

    def imported_consent_count(self, purpose: str | None = None) -> int:
        """How many consents are imported (for `purpose`, if given)."""
        with self._read() as conn:
            return consents.imported_count(conn, purpose)

    def consent_coverage(self) -> dict[str, StoredCoverage]:
        """The latest consent check of every integration, by integration id."""
        with self._read() as conn:
            return consents.load_coverage(conn)

    def record_job_findings(
        self,
        job: str,
        found: Iterable[Finding],
        at: datetime,
        failed: Mapping[str, str] | None = None,
    ) -> FindingChanges:
        """Apply the findings of a job other than the audit (`retention`, `discovery`): only the
        rules that job owns are opened, kept or resolved; evidence records the changes.
        `failed` are the run's probes that observed nothing (scope -> why): findings resting
        on them are carried, not resolved (see `apply_findings`)."""
        with self._write() as conn:
            mark = evidence.last_event_id(conn)
            changes = apply_findings(conn, None, at, found, job_scope(job), failed=failed)
            items: list[tuple[str, dict[str, Any]]] = []
            if failed:
                content = {"job": job, "probes_failed": sorted(failed), "carried": changes.carried}
                items.append(("job-probes-failed", content))
            self._seal(conn, at, mark, items)
            return changes

    def record_consent_check(
        self,
        results: Sequence[ConsentCoverage],
        failures: Mapping[str, tuple[str, str]],
        found: Iterable[Finding],
        *,
        at: datetime,
        keep: Collection[str],
    ) -> FindingChanges:
        """Record one consent job run in one transaction: the fresh coverage, the failures
        (integration -> (purpose, error); their last counts are kept, marked stale), the
        `transfer-consent-missing` findings' lifecycle (no other rule's), and evidence: the
        finding changes and a `consent-check` record with the counts. Integrations not in
        `keep` (no longer configured) are forgotten.
        """
        with self._write() as conn:
            mark = evidence.last_event_id(conn)
            consents.save_coverage(conn, results, failures, at, keep)
            changes = apply_findings(conn, None, at, found, job_scope("consent"))
            content = {
                "checked": [
                    {
                        "integration": result.integration,
                        "purpose": result.purpose,
                        "as_of": result.as_of,
                        "shared": result.shared,
                        "missing": result.missing,
                        "withdrawn": result.withdrawn,
                        "path": result.path,
                    }
                    for result in results
                ],
                "failed": sorted(failures),
                "findings_open": changes.open,
                "new": changes.new,
                "resolved": changes.resolved,
                "reopened": changes.reopened,
            }
            self._seal(conn, at, mark, [("consent-check", content)])
            return changes

    # -- aggregates -----------------------------------------------------------------------------

    def snapshot_counts(self, on: date) -> SnapshotCounts:
        """Aggregate what the metrics show, in a handful of GROUP BY queries."""
        waived = waiver_queries.waived(on)
        is_open = findings.c.status == Status.OPEN.value
        triple = (findings.c.rule, findings.c.severity, findings.c.integration)
        with self._read() as conn:
            last = _latest_run(conn, successful=True)
            open_rows = conn.execute(
                select(*triple, func.count()).where(is_open, ~waived).group_by(*triple)
            ).all()
            waived_rows = conn.execute(
                select(*triple, func.count()).where(is_open, waived).group_by(*triple)
            ).all()
            pair = (findings.c.rule, findings.c.severity)
            carried_rows = conn.execute(
                select(*pair, func.count())
                .where(is_open, ~waived, findings.c.carried_since.is_not(None))
                .group_by(*pair)
            ).all()
            expiry_rows = conn.execute(
                select(*pair, func.min(waivers.c.expires))
                .join(waivers, waivers.c.finding_id == findings.c.id)
                .where(is_open, waiver_queries.waiver_counts(on))
                .group_by(*pair)
            ).all()
            resolved_rows: list[tuple[str, str, str]] = []
            places: dict[tuple[str, str], int] = {}
            if last is not None:
                resolved_rows = [
                    (r[0], r[1], r[2])
                    for r in conn.execute(
                        select(*triple)
                        .distinct()
                        .join(finding_events, finding_events.c.finding_id == findings.c.id)
                        .where(
                            finding_events.c.run_id == last.id,
                            finding_events.c.change == Change.RESOLVED.value,
                        )
                    )
                ]
                verdicts = (place_checks.c.verdict, place_checks.c.country)
                places = {
                    (verdict, country or ""): count
                    for verdict, country, count in conn.execute(
                        select(*verdicts, func.count())
                        .where(place_checks.c.run_id == last.id)
                        .group_by(*verdicts)
                    )
                }
            categories = _categories(conn, last.id if last else None)
        open_counts = {(r[0], r[1], r[2]): int(r[3]) for r in open_rows}
        waived_counts: dict[tuple[str, str], int] = {}
        for r in waived_rows:
            waived_counts[(r[0], r[1])] = waived_counts.get((r[0], r[1]), 0) + int(r[3])
        quiet = {(r[0], r[1], r[2]) for r in (*resolved_rows, *waived_rows)}
        return SnapshotCounts(
            open_findings=open_counts,
            waived_findings=waived_counts,
            carried_findings={(r[0], r[1]): int(r[2]) for r in carried_rows},
            waiver_expiry={(r[0], r[1]): r[2] for r in expiry_rows},
            recently_resolved=frozenset(quiet - open_counts.keys()),
            places=places,
            integrations_by_category=categories,
            data_built=_oldest_builds(last.datasets if last else ()),
            last_run=last,
        )

    def status(self, on: date) -> StoreStatus:
        """Return runs by outcome and findings by state, for `db status`."""
        with self._read() as conn:
            version = migrations.stored_version(conn)
            runs = {
                outcome: int(count)
                for outcome, count in conn.execute(
                    select(audit_runs.c.outcome, func.count()).group_by(audit_runs.c.outcome)
                )
            }
            waived = waiver_queries.waived(on)
            state = select(
                func.count().filter(findings.c.status == "open", ~waived),
                func.count().filter(findings.c.status == "open", waived),
                func.count().filter(findings.c.status == "resolved"),
            ).select_from(findings)
            open_count, waived_count, resolved_count = conn.execute(state).one()
            latest = _latest_run(conn, successful=False)
            success = _latest_run(conn, successful=True)
        return StoreStatus(
            schema_version=version or 0,
            runs={name: runs.get(name, 0) for name in (SUCCESS, ERROR, INTERRUPTED, RUNNING)},
            findings={
                "open": int(open_count),
                "waived": int(waived_count),
                "resolved": int(resolved_count),
            },
            latest_run=latest,
            latest_success=success,
        )


# -- reading --------------------------------------------------------------------------------------


def _latest_run_id(conn: Connection) -> int | None:
    found = conn.execute(
        select(func.max(audit_runs.c.id)).where(audit_runs.c.outcome == SUCCESS)
    ).scalar()
    return None if found is None else int(found)


def _latest_run(conn: Connection, successful: bool) -> RunRecord | None:
    query = select(audit_runs).order_by(audit_runs.c.id.desc()).limit(1)
    if successful:
        query = query.where(audit_runs.c.outcome == SUCCESS)
    row = conn.execute(query).first()
    return None if row is None else run_record(row)


def _categories(conn: Connection, run_id: int | None) -> dict[str, int]:
    if run_id is None:
        return {}
    rows = conn.execute(
        select(run_integrations.c.category, func.count())
        .where(run_integrations.c.run_id == run_id)
        .group_by(run_integrations.c.category)
    )
    return {category: int(count) for category, count in rows}


def _oldest_builds(datasets: Iterable[DataSet]) -> dict[tuple[str, str], datetime]:
    """Each data set's build time by (kind, name); of several files under one name (Cloudflare's
    ips-v4 and ips-v6), the oldest, so the staleness alert sees the file most out of date."""
    built: dict[tuple[str, str], datetime] = {}
    for dataset in datasets:
        if dataset.built is not None:
            key = (dataset.kind, dataset.name)
            built[key] = min(built.get(key, dataset.built), dataset.built)
    return built
