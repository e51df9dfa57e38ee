"""The metric families of the capabilities beside the audit: retention, reports, discovery, web
and consent; `families` puts them in the collector's order."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from auditor.service.exportable import PREFIX, Skipped, labelled_gauge, time_gauge, unix
from auditor.service.snapshot import Snapshot


def retention(snapshot: Snapshot) -> Iterator[Metric]:
    # Labels: retention policy ids (from configuration) and actions (report, anonymise, delete).
    overdue = labelled_gauge(
        "retention_overdue_records",
        "Records past their retention deadline and not on legal hold, by retention policy; "
        "as counted by the last retention job run.",
        ["policy"],
        snapshot.retention_overdue,
    )
    held = labelled_gauge(
        "retention_held_records",
        "Records past their retention deadline kept under a legal hold, by retention policy; "
        "as counted by the last retention job run.",
        ["policy"],
        snapshot.retention_held,
    )
    processed = CounterMetricFamily(
        f"{PREFIX}retention_processed_records",
        "Records anonymised or deleted by retention enforcement since the daemon started, by "
        "retention policy and action.",
        labels=["policy", "action"],
    )
    for (policy, action), count in sorted(snapshot.retention_processed.items()):
        processed.add_metric([policy, action], count)
    undetermined = CounterMetricFamily(
        f"{PREFIX}retention_undetermined_batches",
        "Batches left unsettled by an earlier run whose records the data source could no "
        "longer tell when they were reconciled (recorded with no records, marked "
        "undetermined), since the daemon started, by retention policy.",
        labels=["policy"],
    )
    for policy, count in sorted(snapshot.retention_undetermined.items()):
        undetermined.add_metric([policy], count)
    last = labelled_gauge(
        "retention_last_enforcement_timestamp_seconds",
        "When the last retention enforcement run of the policy finished, as a Unix time.",
        ["policy"],
        {policy: when.timestamp() for policy, when in snapshot.retention_last_enforcement.items()},
    )
    yield from (overdue, held, processed, undetermined, last)


def report_written(snapshot: Snapshot) -> Metric:
    # Live, not cached with the stored results: the report job sets it between store reads.
    return time_gauge(
        "report_last_written_timestamp_seconds",
        "When the report job last wrote the evidence report files, as a Unix time; 0 when it "
        "has not written them since the daemon started.",
        snapshot.report_last_written,
    )


def discovery(snapshot: Snapshot) -> Iterator[Metric]:
    # Live, not cached with the stored results: the discovery job sets them between store reads.
    vendors = GaugeMetricFamily(
        f"{PREFIX}discovery_vendors",
        "Catalogue vendors the last complete discovery run found in use (DNS records, web "
        "pages), by whether the inventory declares them; absent before the first since start.",
        labels=["state"],
    )
    for state in ("declared", "undeclared"):
        if state in snapshot.discovery_vendors:
            vendors.add_metric([state], snapshot.discovery_vendors[state])
    coverage = GaugeMetricFamily(
        f"{PREFIX}inventory_coverage_ratio",
        "Vendors found in use that the inventory declares, over all found in use, in the last "
        "discovery run (1 when none were found); absent while unknown: before the first run "
        "since start, and after a run where some domain or page could not be checked.",
    )
    if snapshot.inventory_coverage is not None:
        coverage.add_metric([], snapshot.inventory_coverage)
    yield from (vendors, coverage)


def web(snapshot: Snapshot) -> Iterator[Metric]:
    # Live, like discovery's. Labels: site ids from the configuration (never a URL or host
    # name), the three consent states and the place verdicts: bounded.
    parties = labelled_gauge(
        "web_third_parties",
        "Third parties the last web run saw active on a site's pages (contacted, or setting a "
        "cookie or storage key), by consent state (before, reject, accept) and by the worst "
        "verdict on the places they receive visitors' data at; absent before the first run "
        "since start.",
        ["site", "state", "verdict"],
        snapshot.web_third_parties,
    )
    pages = labelled_gauge(
        "web_pages",
        "Pages of a site the last web run visited, by whether they were observed in every "
        "consent state or failed (did not load, the banner's button was missing, too big): "
        "findings resting on a failed page are carried, not resolved.",
        ["site", "outcome"],
        snapshot.web_pages,
    )
    yield from (parties, pages)


def consent(snapshot: Snapshot, skipped: Skipped) -> Iterator[Metric]:
    # Counts of data subjects only, by integration id: never who they are.
    checked = (
        f"as counted by the last successful consent check ({PREFIX}consent_stale says whether "
        "a later one failed)"
    )
    shared = GaugeMetricFamily(
        f"{PREFIX}consent_subjects_shared",
        f"Data subjects shared with an integration whose transfer relies on consent; {checked}.",
        labels=["integration"],
    )
    missing = GaugeMetricFamily(
        f"{PREFIX}consent_missing_subjects",
        "Shared data subjects without a valid consent for the integration's purpose (Art. "
        f"49(1)(a)), the withdrawn included; {checked}.",
        labels=["integration"],
    )
    withdrawn = GaugeMetricFamily(
        f"{PREFIX}consent_withdrawn_subjects",
        f"Shared data subjects who withdrew their consent and are still shared; {checked}.",
        labels=["integration"],
    )
    last = GaugeMetricFamily(
        f"{PREFIX}consent_last_check_timestamp_seconds",
        "When the integration's last successful consent check finished, as a Unix time; 0 if "
        "none has.",
        labels=["integration"],
    )
    stale = GaugeMetricFamily(
        f"{PREFIX}consent_stale",
        "1 when the integration's last consent check failed, so that the counts shown are from "
        "an earlier successful check (or there are none yet); 0 otherwise.",
        labels=["integration"],
    )
    for integration, status in sorted(snapshot.consent.items()):
        labels = [integration]
        if status.shared is not None:
            shared.add_metric(labels, status.shared)
            missing.add_metric(labels, status.missing or 0)
            withdrawn.add_metric(labels, status.withdrawn or 0)
        skipped.add(last, labels, status.checked_at, unix)
        stale.add_metric(labels, 1 if status.stale else 0)
    yield from (shared, missing, withdrawn, last, stale)
