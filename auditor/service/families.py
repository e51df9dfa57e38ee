"""The metric families the collector yields from a snapshot, in order: findings, inventory, jobs,
DNS, data sets and the daemon here; retention, reports, discovery, web and consent from
`capability_families`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)

from auditor import __version__
from auditor.core.inventory import CATEGORIES
from auditor.core.model import Verdict
from auditor.service import capability_families as capabilities
from auditor.service.exportable import PREFIX, Skipped, labelled_gauge, time_gauge, unix
from auditor.service.snapshot import JobHealth, Snapshot

FROM_LAST_AUDIT = "value from the last completed audit run (cached, not computed at scrape time)"
DAY_SECONDS = 86400


def all_families(snapshot: Snapshot) -> Iterator[Metric]:
    yield from stored_families(snapshot)
    yield from live_families(snapshot)


def stored_families(snapshot: Snapshot) -> Iterator[Metric]:
    """The families drawn from the stored results alone: they change only with `stored_key`."""
    skipped = Skipped()
    yield from _findings(snapshot, skipped)
    yield from _inventory(snapshot, skipped)
    yield _data_built(snapshot, skipped)
    yield _last_audit(snapshot)
    yield from capabilities.consent(snapshot, skipped)
    yield skipped.family()


def live_families(snapshot: Snapshot) -> Iterator[Metric]:
    """The families the daemon changes between two reads of the store: job health and the like."""
    yield from _jobs(snapshot.jobs)
    yield from _dns(snapshot)
    yield from _daemon(snapshot)
    yield from capabilities.retention(snapshot)
    yield capabilities.report_written(snapshot)
    yield from capabilities.discovery(snapshot)
    yield from capabilities.web(snapshot)


def stored_key(snapshot: Snapshot) -> tuple[object, ...]:
    """Every field `stored_families` reads: equal keys render the same bytes."""
    return (
        snapshot.open_findings,
        snapshot.recently_resolved,
        snapshot.waived_findings,
        snapshot.carried_findings,
        snapshot.waiver_expiry,
        snapshot.integrations_by_category,
        snapshot.places,
        snapshot.data_built,
        snapshot.last_audit,
        snapshot.consent,
    )


def _findings(snapshot: Snapshot, skipped: Skipped) -> Iterator[Metric]:
    open_findings = GaugeMetricFamily(
        f"{PREFIX}findings_open",
        "Open, unwaived findings by rule, severity and integration; "
        f"{FROM_LAST_AUDIT}. A combination whose last finding was resolved or waived reads 0 "
        "after that audit, then disappears.",
        labels=["rule", "severity", "integration"],
    )
    counts = {key: count for key, count in snapshot.open_findings.items() if count > 0}
    for key in snapshot.recently_resolved:
        counts.setdefault(key, 0)
    for (rule, severity, integration), count in sorted(counts.items()):
        skipped.add(open_findings, [rule, severity, integration], count)
    yield open_findings

    waived = GaugeMetricFamily(
        f"{PREFIX}findings_waived",
        f"Findings a DPO has waived, by rule and severity; {FROM_LAST_AUDIT}.",
        labels=["rule", "severity"],
    )
    for (rule, severity), count in sorted(snapshot.waived_findings.items()):
        skipped.add(waived, [rule, severity], count)
    yield waived

    yield labelled_gauge(
        "findings_carried",
        "Open, unwaived findings kept open because the probe that would show them gone (an "
        "endpoint's DNS lookup or geolocation) failed: counted in findings_open too, with the "
        f"evidence of the last run that saw them; by rule and severity; {FROM_LAST_AUDIT}.",
        ["rule", "severity"],
        snapshot.carried_findings,
    )

    expiry = GaugeMetricFamily(
        f"{PREFIX}waiver_expiry_timestamp_seconds",
        "When the soonest-ending active waiver of an open finding ends (the end of its expiry "
        f"day, UTC), by rule and severity, as a Unix time; {FROM_LAST_AUDIT}.",
        labels=["rule", "severity"],
    )
    for (rule, severity), last_day in sorted(snapshot.waiver_expiry.items()):
        skipped.add(expiry, [rule, severity], last_day, _day_end)
    yield expiry


def _inventory(snapshot: Snapshot, skipped: Skipped) -> Iterator[Metric]:
    integrations = GaugeMetricFamily(
        f"{PREFIX}integrations",
        f"Integrations in the inventory by category; {FROM_LAST_AUDIT}.",
        labels=["category"],
    )
    by_category = dict.fromkeys(CATEGORIES, 0) | dict(snapshot.integrations_by_category)
    for category, count in sorted(by_category.items()):
        skipped.add(integrations, [category], count)
    yield integrations

    places = GaugeMetricFamily(
        f"{PREFIX}places",
        "Places personal data reaches, by transfer verdict and ISO country code "
        f"(empty for none); {FROM_LAST_AUDIT}.",
        labels=["verdict", "country"],
    )
    counts = dict(snapshot.places)
    seen = {verdict for verdict, _ in counts}
    for known in Verdict:
        if known.value not in seen:
            counts[(known.value, "")] = 0
    for (verdict, country), count in sorted(counts.items()):
        skipped.add(places, [verdict, country], count)
    yield places


def _jobs(jobs: tuple[JobHealth, ...]) -> Iterator[Metric]:
    label = ["job_id"]
    last_success = GaugeMetricFamily(
        f"{PREFIX}job_last_success_timestamp_seconds",
        "When the job last finished without error, as a Unix time; 0 if it never has.",
        labels=label,
    )
    last_run = GaugeMetricFamily(
        f"{PREFIX}job_last_run_timestamp_seconds",
        "When the job last finished, with or without error, as a Unix time; 0 if it never has.",
        labels=label,
    )
    duration = GaugeMetricFamily(
        f"{PREFIX}job_last_duration_seconds",
        "How long the job's last run took; 0 if it has not run.",
        labels=label,
    )
    interval = GaugeMetricFamily(
        f"{PREFIX}job_interval_seconds",
        "How often the job is scheduled to run (typical gap for cron schedules).",
        labels=label,
    )
    runs = CounterMetricFamily(
        f"{PREFIX}job_runs", "Runs of the job since the daemon started.", labels=label
    )
    failures = CounterMetricFamily(
        f"{PREFIX}job_failures",
        "Runs of the job that raised an error since the daemon started.",
        labels=label,
    )
    for job in sorted(jobs, key=lambda j: j.job_id):
        labels = [job.job_id]
        last_success.add_metric(labels, unix(job.last_success))
        last_run.add_metric(labels, unix(job.last_run))
        duration.add_metric(labels, job.last_duration_seconds or 0.0)
        interval.add_metric(labels, job.interval_seconds)
        runs.add_metric(labels, job.runs)
        failures.add_metric(labels, job.failures)
    yield from (last_success, last_run, duration, interval, runs, failures)


def _dns(snapshot: Snapshot) -> Iterator[Metric]:
    yield CounterMetricFamily(
        f"{PREFIX}dns_queries",
        "DNS queries sent by audits since the daemon started; updated when an audit run completes.",
        value=snapshot.dns_queries,
    )
    yield CounterMetricFamily(
        f"{PREFIX}dns_failures",
        "Hostname lookups by audits that could not be completed (timeout, SERVFAIL, REFUSED or "
        "error) since the daemon started, one per hostname however many queries it took; "
        "NXDOMAIN and no-answer are answers, not failures. Updated when an audit run completes.",
        value=snapshot.dns_failures,
    )


def _data_built(snapshot: Snapshot, skipped: Skipped) -> Metric:
    built = GaugeMetricFamily(
        f"{PREFIX}data_build_timestamp_seconds",
        "When a GeoIP database or IP-range data set in use was built, as a Unix time.",
        labels=["kind", "name"],
    )
    for (kind, name), when in sorted(snapshot.data_built.items()):
        skipped.add(built, [kind, name], when, datetime.timestamp)
    return built


def _last_audit(snapshot: Snapshot) -> Metric:
    return time_gauge(
        "last_audit_timestamp_seconds",
        "When the audit run the other gdpr_auditor_ results come from finished, as a Unix time; "
        "0 before the first completed audit run.",
        snapshot.last_audit,
    )


def _daemon(snapshot: Snapshot) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        f"{PREFIX}config_last_reload_successful",
        "Whether the last configuration load or reload succeeded (1) or was rejected (0).",
        value=1 if snapshot.config_reload_ok else 0,
    )
    yield time_gauge(
        "config_last_reload_success_timestamp_seconds",
        "When the configuration was last loaded successfully, as a Unix time.",
        snapshot.config_reload_at,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}leader",
        "Whether this replica runs the jobs (1) or stands by serving metrics (0).",
        value=1 if snapshot.leader else 0,
    )
    info = InfoMetricFamily(f"{PREFIX}build", "The version of gdpr-auditor running.")
    info.add_metric([], {"version": snapshot.version or __version__})
    yield info


def _day_end(last_day: date) -> float:
    """The end of a day in UTC as a Unix time; the calendar's last day too (no `date` after it)."""
    return datetime.combine(last_day, time.min, tzinfo=UTC).timestamp() + DAY_SECONDS
