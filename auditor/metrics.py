"""Prometheus metrics rendered fresh on each scrape from a snapshot of the stored results.

Nothing here audits or touches the network: the collector reads a `Snapshot` the daemon keeps up to
date, so a scrape costs a few microseconds per series and never blows Prometheus's scrape timeout.

Known label sets start at 0: every job, every inventory category and every verdict is exported even
when nothing is counted under it. Open findings are the exception, because their label sets
(rule x severity x integration) are only known once a finding exists: a combination is exported
while it has open findings, and once more as 0 in the snapshots right after the audit that resolved
or waived its last finding (`Snapshot.recently_resolved`); after that it is absent. Alerts treat
absent and 0 alike, so both resolve an alert.

Labels carry only bounded, non-personal values: rule ids, severities, integration ids, categories,
verdicts, ISO country codes, job ids, data-set kinds and names, and the version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from auditor import __version__
from auditor.inventory import CATEGORIES
from auditor.model import Verdict
from auditor.snapshot import JobHealth, Snapshot

PREFIX = "gdpr_auditor_"
FROM_LAST_AUDIT = "value from the last completed audit run (cached, not computed at scrape time)"


class SnapshotCollector(Collector):
    """Builds every `gdpr_auditor_*` metric family from one snapshot per scrape.

    `source` is called from the HTTP server's threads, once per scrape: it should hand back the
    latest immutable snapshot, not build one from the store.
    """

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source

    def describe(self) -> Iterator[Metric]:
        """Yield the families an empty snapshot gives: their names, without reading the source."""
        return _families(Snapshot())

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families for the snapshot the source returns now."""
        return _families(self._source())


def build_registry(source: Callable[[], Snapshot]) -> CollectorRegistry:
    """Return a fresh registry holding the snapshot collector and the process collector."""
    # Direct instrumentation added later (counters, histograms) would otherwise export `_created`
    # series, which only add cardinality; the setting is process-wide in prometheus_client.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(source))
    ProcessCollector(registry=registry)
    return registry


def _families(snapshot: Snapshot) -> Iterator[Metric]:
    yield from _findings(snapshot)
    yield from _inventory(snapshot)
    yield from _jobs(snapshot.jobs)
    yield from _probes(snapshot)
    yield from _daemon(snapshot)


def _findings(snapshot: Snapshot) -> Iterator[Metric]:
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
        open_findings.add_metric([rule, severity, integration], count)
    yield open_findings

    waived = GaugeMetricFamily(
        f"{PREFIX}findings_waived",
        f"Findings a DPO has waived, by rule and severity; {FROM_LAST_AUDIT}.",
        labels=["rule", "severity"],
    )
    for (rule, severity), count in sorted(snapshot.waived_findings.items()):
        waived.add_metric([rule, severity], count)
    yield waived


def _inventory(snapshot: Snapshot) -> Iterator[Metric]:
    integrations = GaugeMetricFamily(
        f"{PREFIX}integrations",
        f"Integrations in the inventory by category; {FROM_LAST_AUDIT}.",
        labels=["category"],
    )
    by_category = dict.fromkeys(CATEGORIES, 0) | dict(snapshot.integrations_by_category)
    for category, count in sorted(by_category.items()):
        integrations.add_metric([category], count)
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
        places.add_metric([verdict, country], count)
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
        last_success.add_metric(labels, _unix(job.last_success))
        last_run.add_metric(labels, _unix(job.last_run))
        duration.add_metric(labels, job.last_duration_seconds or 0.0)
        interval.add_metric(labels, job.interval_seconds)
        runs.add_metric(labels, job.runs)
        failures.add_metric(labels, job.failures)
    yield from (last_success, last_run, duration, interval, runs, failures)


def _probes(snapshot: Snapshot) -> Iterator[Metric]:
    yield CounterMetricFamily(
        f"{PREFIX}dns_queries",
        "DNS queries sent by audits since the daemon started; updated when an audit run completes.",
        value=snapshot.dns_queries,
    )
    yield CounterMetricFamily(
        f"{PREFIX}dns_failures",
        "DNS queries that timed out or failed since the daemon started; "
        "updated when an audit run completes.",
        value=snapshot.dns_failures,
    )
    built = GaugeMetricFamily(
        f"{PREFIX}data_build_timestamp_seconds",
        "When a GeoIP database or IP-range data set in use was built, as a Unix time.",
        labels=["kind", "name"],
    )
    for (kind, name), when in sorted(snapshot.data_built.items()):
        built.add_metric([kind, name], when.timestamp())
    yield built


def _daemon(snapshot: Snapshot) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        f"{PREFIX}last_audit_timestamp_seconds",
        "When the audit run the other gdpr_auditor_ results come from finished, as a Unix time; "
        "0 before the first completed audit run.",
        value=_unix(snapshot.last_audit),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}config_last_reload_successful",
        "Whether the last configuration load or reload succeeded (1) or was rejected (0).",
        value=1 if snapshot.config_reload_ok else 0,
    )
    yield GaugeMetricFamily(
        f"{PREFIX}config_last_reload_success_timestamp_seconds",
        "When the configuration was last loaded successfully, as a Unix time.",
        value=_unix(snapshot.config_reload_at),
    )
    yield GaugeMetricFamily(
        f"{PREFIX}leader",
        "Whether this replica runs the jobs (1) or stands by serving metrics (0).",
        value=1 if snapshot.leader else 0,
    )
    info = InfoMetricFamily(f"{PREFIX}build", "The version of gdpr-auditor running.")
    info.add_metric([], {"version": snapshot.version or __version__})
    yield info


def _unix(when: datetime | None) -> float:
    return 0.0 if when is None else when.timestamp()
