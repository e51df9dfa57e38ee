"""The state store's runs aggregate: audit runs, their observations and place checks, and the
counts the metrics and `db status` show.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from sys import intern

from sqlalchemy import Connection, func, insert, select, update

from auditor import __version__
from auditor.core.errors import (
    StoreError,
)
from auditor.core.lifecycle import Change, Status
from auditor.core.model import PlaceCheck
from auditor.core.ports import DataSet
from auditor.core.results import AuditResult
from auditor.store import evidence, migrations
from auditor.store import waivers as waiver_queries
from auditor.store.connection import (
    ERROR,
    INTERRUPTED,
    MAX_ERROR_CHARS,
    RUNNING,
    SUCCESS,
    StoreConnection,
)
from auditor.store.recording import (
    dataset_json,
    insert_integrations,
    insert_observations,
    insert_places,
    record_findings,
)
from auditor.store.records import (
    RunRecord,
    RunSummary,
    SnapshotCounts,
    StoreStatus,
    place_check_record,
    run_record,
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


class RunStore(StoreConnection):
    """Audit runs and what they observed."""

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

        It stays one function of about 60 lines: one transaction's writes, in the order they
        must happen.

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

    def snapshot_counts(self, on: date) -> SnapshotCounts:
        """Aggregate what the metrics show, in a handful of GROUP BY queries.

        It stays one function of about 65 lines: a handful of queries that must read one
        state, in one read transaction.
        """
        waived = waiver_queries.waived(on)
        is_open = findings.c.status == Status.OPEN.value
        triple = (findings.c.rule, findings.c.severity, findings.c.integration)
        with self._read() as conn:
            last = _latest_run(conn, successful=True)
            # Label strings interned: the snapshot the daemon keeps then shares them with the
            # one it replaces, rather than holding a fresh copy of some 200,000 labels per read.
            open_counts = {
                (intern(rule), intern(severity), intern(integration)): int(count)
                for rule, severity, integration, count in conn.execute(
                    select(*triple, func.count()).where(is_open, ~waived).group_by(*triple)
                )
            }
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
                    (intern(r[0]), intern(r[1]), intern(r[2]))
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
        waived_counts: dict[tuple[str, str], int] = {}
        for r in waived_rows:
            waived_counts[(r[0], r[1])] = waived_counts.get((r[0], r[1]), 0) + int(r[3])
        quiet = {(intern(r[0]), intern(r[1]), intern(r[2])) for r in (*resolved_rows, *waived_rows)}
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
