"""The snapshot collector and the rendered body: every value, zeros for known label sets, caching."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import threading
import zlib
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from auditor import __version__
from auditor.core.inventory import CATEGORIES
from auditor.core.model import Verdict
from auditor.core.results import AuditResult
from auditor.service.metrics import Exposition, build_registry
from auditor.service.snapshot import JobHealth, Snapshot, stored_snapshot
from auditor.store import StateStore
from auditor.transfers.rules import AuditContext, evaluate
from tests.helpers import integrations_from, minimal, shipped_policies

AUDITED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BUILT = datetime(2026, 2, 24, 0, 0, tzinfo=UTC)
RELOADED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

FULL = Snapshot(
    open_findings={
        ("transfer-unsafeguarded", "critical", "crm"): 2,
        ("backup-outside-eea", "warning", "helpdesk"): 1,
        ("contract-missing-dpa", "warning", "newsletter"): 0,
    },
    recently_resolved=frozenset({("transfer-unsafeguarded", "critical", "webshop")}),
    waived_findings={("backup-outside-eea", "warning"): 3},
    integrations_by_category={"crm": 4, "support": 1},
    places={("eea", "DE"): 5, ("unsafeguarded", "US"): 2, ("unknown", ""): 1},
    jobs=(
        JobHealth(
            "audit",
            interval_seconds=3600.0,
            runs=7,
            failures=2,
            last_run=AUDITED,
            last_success=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
            last_duration_seconds=12.5,
        ),
        JobHealth("retention", interval_seconds=86400.0),
    ),
    dns_queries=120,
    dns_failures=4,
    data_built={("geoip", "country"): BUILT, ("ip-ranges", "aws"): AUDITED},
    last_audit=AUDITED,
    config_reload_ok=False,
    config_reload_at=RELOADED,
    leader=False,
    version="9.9.9",
    web_third_parties={("shop", "before", "eea"): 2, ("shop", "accept", "unsafeguarded"): 3},
    web_pages={("shop", "observed"): 4, ("shop", "failed"): 1},
)


def registry_for(snapshot: Snapshot) -> CollectorRegistry:
    return build_registry(lambda: snapshot)


def value(registry: CollectorRegistry, metric: str, /, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


def open_findings(
    registry: CollectorRegistry, rule: str, severity: str, integration: str
) -> float | None:
    """The open-findings gauge of one rule, severity and integration (None when absent)."""
    labels = {"rule": rule, "severity": severity, "integration": integration}
    return value(registry, "gdpr_auditor_findings_open", **labels)


def test_findings_open_counts_each_rule_severity_integration() -> None:
    """Open findings are exported per rule, severity and integration with their counts."""
    registry = registry_for(FULL)

    assert 2 == open_findings(registry, "transfer-unsafeguarded", "critical", "crm")
    assert 1 == open_findings(registry, "backup-outside-eea", "warning", "helpdesk")


def test_findings_open_reads_zero_for_a_combination_just_resolved() -> None:
    """A combination the last audit resolved is exported as 0 rather than vanishing at once."""
    registry = registry_for(FULL)

    assert 0 == open_findings(registry, "transfer-unsafeguarded", "critical", "webshop")


def test_findings_open_leaves_out_zero_counts_not_recently_resolved() -> None:
    """Combinations with no open finding and no recent resolution are absent, not exported."""
    registry = registry_for(FULL)

    assert None is open_findings(registry, "contract-missing-dpa", "warning", "newsletter")


def test_waived_findings_by_rule_and_severity() -> None:
    """Waived findings are a separate gauge by rule and severity."""
    registry = registry_for(FULL)

    assert 3 == value(
        registry, "gdpr_auditor_findings_waived", rule="backup-outside-eea", severity="warning"
    )


def test_integrations_by_category_start_at_zero_for_every_category() -> None:
    """Every inventory category is exported; those without integrations read 0."""
    registry = registry_for(FULL)

    counts = {c: value(registry, "gdpr_auditor_integrations", category=c) for c in CATEGORIES}

    assert 4 == counts.pop("crm")
    assert 1 == counts.pop("support")
    assert set(counts.values()) == {0}


def test_places_by_verdict_and_country_with_every_verdict_present() -> None:
    """Places are counted by verdict and country; a verdict with no places reads 0 for no country."""
    registry = registry_for(FULL)

    assert 5 == value(registry, "gdpr_auditor_places", verdict="eea", country="DE")
    assert 2 == value(registry, "gdpr_auditor_places", verdict="unsafeguarded", country="US")
    assert 1 == value(registry, "gdpr_auditor_places", verdict="unknown", country="")
    for verdict in ("adequate", "safeguarded", "consent", "edge"):
        assert 0 == value(registry, "gdpr_auditor_places", verdict=verdict, country="")
    assert None is value(registry, "gdpr_auditor_places", verdict="eea", country="")


def test_job_metrics_follow_the_batch_job_pattern() -> None:
    """Per job: last success and last run as Unix times, duration, interval, runs and failures."""
    registry = registry_for(FULL)

    assert datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp() == value(
        registry, "gdpr_auditor_job_last_success_timestamp_seconds", job_id="audit"
    )
    assert AUDITED.timestamp() == value(
        registry, "gdpr_auditor_job_last_run_timestamp_seconds", job_id="audit"
    )
    assert 12.5 == value(registry, "gdpr_auditor_job_last_duration_seconds", job_id="audit")
    assert 3600 == value(registry, "gdpr_auditor_job_interval_seconds", job_id="audit")
    assert 7 == value(registry, "gdpr_auditor_job_runs_total", job_id="audit")
    assert 2 == value(registry, "gdpr_auditor_job_failures_total", job_id="audit")


def test_a_job_that_never_ran_reads_zero_everywhere_but_its_interval() -> None:
    """A known job with no runs yet is exported with zeros, so alerts see it from the start."""
    registry = registry_for(FULL)

    for name in (
        "gdpr_auditor_job_last_success_timestamp_seconds",
        "gdpr_auditor_job_last_run_timestamp_seconds",
        "gdpr_auditor_job_last_duration_seconds",
        "gdpr_auditor_job_runs_total",
        "gdpr_auditor_job_failures_total",
    ):
        assert 0 == value(registry, name, job_id="retention"), name
    assert 86400 == value(registry, "gdpr_auditor_job_interval_seconds", job_id="retention")


def test_dns_counters_and_data_build_times() -> None:
    """DNS queries and failures are counters; data sets carry their build time by kind and name."""
    registry = registry_for(FULL)

    assert 120 == value(registry, "gdpr_auditor_dns_queries_total")
    assert 4 == value(registry, "gdpr_auditor_dns_failures_total")
    assert BUILT.timestamp() == value(
        registry, "gdpr_auditor_data_build_timestamp_seconds", kind="geoip", name="country"
    )
    assert AUDITED.timestamp() == value(
        registry, "gdpr_auditor_data_build_timestamp_seconds", kind="ip-ranges", name="aws"
    )


def test_daemon_state_metrics() -> None:
    """Last audit time, reload outcome and time, leadership and build info are exported."""
    registry = registry_for(FULL)

    assert AUDITED.timestamp() == value(registry, "gdpr_auditor_last_audit_timestamp_seconds")
    assert 0 == value(registry, "gdpr_auditor_config_last_reload_successful")
    assert RELOADED.timestamp() == value(
        registry, "gdpr_auditor_config_last_reload_success_timestamp_seconds"
    )
    assert 0 == value(registry, "gdpr_auditor_leader")
    assert 1 == value(registry, "gdpr_auditor_build_info", version="9.9.9")


def test_an_empty_snapshot_exports_zeros_and_the_running_version() -> None:
    """Before any audit every scalar reads 0, reload and leader read 1, build info names the package."""
    registry = registry_for(Snapshot())

    for name in (
        "gdpr_auditor_last_audit_timestamp_seconds",
        "gdpr_auditor_dns_queries_total",
        "gdpr_auditor_dns_failures_total",
        "gdpr_auditor_config_last_reload_success_timestamp_seconds",
    ):
        assert 0 == value(registry, name), name
    assert 1 == value(registry, "gdpr_auditor_config_last_reload_successful")
    assert 1 == value(registry, "gdpr_auditor_leader")
    assert 1 == value(registry, "gdpr_auditor_build_info", version=__version__)
    for verdict in Verdict:
        assert 0 == value(registry, "gdpr_auditor_places", verdict=verdict.value, country="")


def test_no_created_series_in_either_exposition_format() -> None:
    """Counters export no `_created` samples, in the text format or in OpenMetrics."""
    registry = registry_for(FULL)

    names = {sample.name for family in registry.collect() for sample in family.samples}

    assert [] == [name for name in names if name.endswith("_created")]
    assert b"_created" not in generate_latest(registry)
    assert b"_created" not in generate_openmetrics(registry)


def test_result_metrics_say_their_values_come_from_the_last_audit() -> None:
    """HELP of the audit-result metrics says the values are cached from the last completed run."""
    families = {family.name: family for family in registry_for(FULL).collect()}

    for name in (
        "gdpr_auditor_findings_open",
        "gdpr_auditor_findings_waived",
        "gdpr_auditor_integrations",
        "gdpr_auditor_places",
    ):
        assert "last completed audit run" in families[name].documentation, name


def test_dns_failures_help_says_what_is_counted() -> None:
    """dns_failures counts hostname lookups that could not be completed, not every DNS query."""
    families = {family.name: family for family in registry_for(FULL).collect()}

    help_text = families["gdpr_auditor_dns_failures"].documentation

    assert help_text.startswith("Hostname lookups by audits that could not be completed")
    for status in ("timeout", "SERVFAIL", "REFUSED", "error", "NXDOMAIN and no-answer are answers"):
        assert status in help_text


def test_every_scrape_reads_the_source_anew_and_registration_does_not() -> None:
    """The collector calls its source once per scrape, never at registration, and shows changes."""
    calls: list[Snapshot] = []
    current = [Snapshot(dns_queries=1)]

    def source() -> Snapshot:
        calls.append(current[0])
        return current[0]

    registry = build_registry(source)
    assert [] == calls

    assert 1 == value(registry, "gdpr_auditor_dns_queries_total")
    current[0] = replace(current[0], dns_queries=5, leader=False)
    assert 5 == value(registry, "gdpr_auditor_dns_queries_total")
    assert 0 == value(registry, "gdpr_auditor_leader")
    assert 3 == len(calls)


def test_labels_are_only_the_bounded_names() -> None:
    """No metric uses a label Prometheus reserves (`job`, `instance`) or an unbounded one."""
    allowed = {
        "rule",
        "severity",
        "integration",
        "category",
        "verdict",
        "country",
        "job_id",
        "kind",
        "name",
        "version",
        "site",  # a site's id in the configuration, never a URL or host name
        "state",  # before, reject, accept
        "outcome",  # observed, failed
    }
    used = {
        label
        for family in registry_for(FULL).collect()
        if family.name.startswith("gdpr_auditor_")
        for sample in family.samples
        for label in sample.labels
    }

    assert used <= allowed


def test_registries_are_independent_and_include_process_metrics() -> None:
    """Each call builds its own registry, with the process collector alongside the snapshot."""
    first, second = registry_for(FULL), registry_for(Snapshot())

    assert 0 == value(first, "gdpr_auditor_leader")
    assert 1 == value(second, "gdpr_auditor_leader")
    assert value(first, "process_start_time_seconds") is not None


# -- the rendered body: the stored part kept between scrapes, the live part read anew --------------

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


class CountedFindings(dict[tuple[str, str, str], int]):
    """Open findings that count how often their items are read, i.e. how often they are rendered."""

    reads = 0

    def items(self) -> Any:
        type(self).reads += 1
        return super().items()


def samples(
    text: str, *, openmetrics: bool = False
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample but the process metrics (they move between two reads), by name and labels."""
    parse = parse_openmetrics if openmetrics else text_string_to_metric_families
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in parse(text)
        if not family.name.startswith("process_")
        for sample in family.samples
    }


def test_the_rendered_body_has_what_the_registry_exports_in_both_formats() -> None:
    """Exposition serves the same samples as the registry, text and OpenMetrics, process included."""
    registry = registry_for(FULL)
    exposition = Exposition(lambda: FULL)

    text_type, text = exposition.render("")
    om_type, om = exposition.render(OPENMETRICS)

    assert text_type.startswith("text/plain; version=0.0.4")
    assert om_type.startswith("application/openmetrics-text")
    assert samples(generate_latest(registry).decode()) == samples(text.decode())
    assert samples(generate_openmetrics(registry).decode(), openmetrics=True) == samples(
        om.decode(), openmetrics=True
    )
    assert b"process_cpu_seconds_total" in text
    assert b"process_cpu_seconds_total" in om


def test_openmetrics_has_one_eof_at_the_very_end_and_text_has_none() -> None:
    """The stored and live parts join into one document: a single `# EOF`, last, in OpenMetrics."""
    exposition = Exposition(lambda: FULL)

    for _ in range(2):  # a fresh rendering, then the kept one
        _, om = exposition.render(OPENMETRICS)
        _, text = exposition.render("text/plain; version=0.0.4")
        assert 1 == om.count(b"# EOF")
        assert om.endswith(b"\n# EOF\n")
        assert b"# EOF" not in text


def test_the_gzip_body_is_one_member_holding_the_plain_body() -> None:
    """Compressed, the body is a single gzip member that inflates to the uncompressed body."""
    exposition = Exposition(lambda: FULL)

    for accept in ("", OPENMETRICS):
        for _ in range(2):
            _, plain = exposition.render(accept)
            _, packed = exposition.render(accept, True)
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            inflated = inflater.decompress(packed)
            assert inflater.eof and b"" == inflater.unused_data
            assert samples(plain.decode(), openmetrics=bool(accept)) == samples(
                inflated.decode(), openmetrics=bool(accept)
            )
            assert gzip.decompress(packed).startswith(b"# HELP gdpr_auditor_findings_open ")


def test_stored_results_are_rendered_once_while_job_health_is_read_every_scrape() -> None:
    """Job runs, DNS counters, leadership and reload state change between store reads: never stale."""
    findings = CountedFindings({("transfer-unsafeguarded", "critical", "crm"): 2})
    current = [replace(FULL, open_findings=findings)]
    exposition = Exposition(lambda: current[0])
    CountedFindings.reads = 0

    exposition.render("")
    exposition.render("", True)
    job = replace(current[0].jobs[0], runs=8, failures=3, last_run=RELOADED)
    current[0] = replace(current[0], jobs=(job,), dns_queries=130, dns_failures=5, leader=True)
    _, text = exposition.render("")
    _, packed = exposition.render("", True)

    assert 1 == CountedFindings.reads
    for body in (text, gzip.decompress(packed)):
        served = samples(body.decode())
        assert 8 == served[("gdpr_auditor_job_runs_total", (("job_id", "audit"),))]
        assert 3 == served[("gdpr_auditor_job_failures_total", (("job_id", "audit"),))]
        assert (
            RELOADED.timestamp()
            == served[("gdpr_auditor_job_last_run_timestamp_seconds", (("job_id", "audit"),))]
        )
        assert 130 == served[("gdpr_auditor_dns_queries_total", ())]
        assert 5 == served[("gdpr_auditor_dns_failures_total", ())]
        assert 1 == served[("gdpr_auditor_leader", ())]


def test_new_stored_results_are_rendered_and_equal_ones_are_not() -> None:
    """A store read with other results shows them at once; one with equal results renders nothing."""
    findings = CountedFindings({("transfer-unsafeguarded", "critical", "crm"): 2})
    current = [replace(FULL, open_findings=findings)]
    exposition = Exposition(lambda: current[0])
    CountedFindings.reads = 0
    crm = (("integration", "crm"), ("rule", "transfer-unsafeguarded"), ("severity", "critical"))

    exposition.render("")
    current[0] = replace(current[0], open_findings=CountedFindings(findings))  # equal copy
    exposition.render("")
    reads_after_equal = CountedFindings.reads
    changed = CountedFindings({("transfer-unsafeguarded", "critical", "crm"): 5})
    current[0] = replace(current[0], open_findings=changed, last_audit=RELOADED)
    _, text = exposition.render("")

    served = samples(text.decode())
    assert 1 == reads_after_equal
    assert 2 == CountedFindings.reads
    assert 5 == served[("gdpr_auditor_findings_open", crm)]
    assert RELOADED.timestamp() == served[("gdpr_auditor_last_audit_timestamp_seconds", ())]


def test_each_format_is_rendered_from_the_same_snapshot_read() -> None:
    """One render reads the source once, so its stored and live parts come from one snapshot."""
    calls: list[int] = []

    def source() -> Snapshot:
        calls.append(1)
        return FULL

    exposition = Exposition(source)

    exposition.render(OPENMETRICS, True)
    exposition.render("")

    assert 2 == len(calls)


def test_prerender_renders_new_results_in_the_formats_scrapes_asked_for() -> None:
    """After prerender, the first scrape with new results renders nothing of them itself."""
    current = [replace(FULL, open_findings=CountedFindings({("r", "critical", "crm"): 1}))]
    calls: list[int] = []

    def source() -> Snapshot:
        calls.append(1)
        return current[0]

    exposition = Exposition(source)
    exposition.prerender()  # nothing asked for yet: not even the source is read
    assert [] == calls
    exposition.render("", True)
    exposition.render(OPENMETRICS)
    CountedFindings.reads = 0

    current[0] = replace(FULL, open_findings=CountedFindings({("r", "critical", "crm"): 4}))
    exposition.prerender()
    after_prerender = CountedFindings.reads
    _, packed = exposition.render("", True)
    _, om = exposition.render(OPENMETRICS)

    assert 2 == after_prerender == CountedFindings.reads  # one per format, none by the scrapes
    crm = (("integration", "crm"), ("rule", "r"), ("severity", "critical"))
    assert 4 == samples(gzip.decompress(packed).decode())[("gdpr_auditor_findings_open", crm)]
    assert 4 == samples(om.decode(), openmetrics=True)[("gdpr_auditor_findings_open", crm)]


def test_waiver_expiry_is_the_end_of_the_last_day_in_utc() -> None:
    """A waiver ending on 31 December counts until 1 January 00:00 UTC."""
    from datetime import date

    registry = registry_for(
        Snapshot(waiver_expiry={("contract-dpa-missing", "critical"): date(2026, 12, 31)})
    )

    expected = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
    assert expected == value(
        registry,
        "gdpr_auditor_waiver_expiry_timestamp_seconds",
        rule="contract-dpa-missing",
        severity="critical",
    )


def test_a_value_that_cannot_be_exported_skips_its_row_counts_it_and_logs_it_once() -> None:
    """One bad stored value (of the wrong type here) leaves out its row only: every other
    series is served, the row is counted by metric, and the first one is logged once."""
    from datetime import date

    from structlog.testing import capture_logs

    from auditor.service.exportable import Skipped

    Skipped._logged.clear()
    bad = replace(
        FULL,
        waiver_expiry={
            ("contract-dpa-missing", "critical"): "9999-99-99",  # type: ignore[dict-item]
            ("backup-outside-eea", "warning"): date(2026, 12, 31),
        },
    )
    exposition = Exposition(lambda: bad)

    with capture_logs() as logs:
        first = exposition.render("text/plain")[1].decode()
        exposition.prerender()
        registry = registry_for(bad)
        generate_latest(registry)

    expiry = "gdpr_auditor_waiver_expiry_timestamp_seconds"
    assert 1 == value(registry, "gdpr_auditor_metrics_rows_skipped", metric=expiry)
    assert value(registry, expiry, rule="backup-outside-eea", severity="warning") is not None
    assert value(registry, expiry, rule="contract-dpa-missing", severity="critical") is None
    assert 2 == open_findings(registry, "transfer-unsafeguarded", "critical", "crm")
    assert "gdpr_auditor_metrics_rows_skipped" in first
    skipped_logs = [e for e in logs if e["event"] == "metrics_row_skipped"]
    assert [("error", expiry)] == [(e["log_level"], e["metric"]) for e in skipped_logs]


def test_vendor_and_backup_findings_reach_the_metrics_through_the_store(tmp_path: Any) -> None:
    """A vendor-jurisdiction warning and info findings, recorded like the audit job records
    them, come back from the store with their facet and are exported by rule and severity."""
    entries = [
        minimal("cloud", vendor_country="US", hosting=["aws:eu-central-1"]),
        minimal("crm", backups={"regions": ["IE"], "retention": "P30D"}),
    ]
    integrations = integrations_from(yaml.safe_dump({"integrations": entries}))
    day = datetime(2026, 11, 22, 10, tzinfo=UTC)
    context = AuditContext({i.id: i for i in integrations}, {}, shipped_policies(), day.date())
    result = AuditResult(
        as_of=day.date(),
        started_at=day,
        finished_at=day,
        integrations=tuple(integrations),
        observations=(),
        places=(),
        findings=tuple(evaluate(context)),
        policy_digest="p",
        datasets=(),
    )
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    run_id = store.begin_run(day, tool_version="t", config_digest="c", policy_digest="p")
    store.finish_run(run_id, result, day)

    (stored,) = store.list_findings(status="open", integration="cloud")
    registry = registry_for(stored_snapshot(store.snapshot_counts(day.date())))

    assert ("vendor-foreign-jurisdiction", "vendor", "US") == (
        stored.rule,
        stored.facet.value if stored.facet else None,
        stored.place,
    )
    open_ = "gdpr_auditor_findings_open"
    assert 1 == value(
        registry, open_, rule="vendor-foreign-jurisdiction", severity="warning", integration="cloud"
    )
    for rule in ("backup-restore-untested", "backup-documentation-stale"):
        assert 1 == value(registry, open_, rule=rule, severity="info", integration="crm")


def test_web_third_parties_and_pages_by_site_id() -> None:
    """Third parties by site, consent state and verdict; pages by outcome; absent before the
    first web run since start; and promtool finds nothing to lint in them."""
    registry = registry_for(FULL)
    assert 3 == value(
        registry, "gdpr_auditor_web_third_parties", site="shop", state="accept",
        verdict="unsafeguarded",
    )  # fmt: skip
    assert 1 == value(registry, "gdpr_auditor_web_pages", site="shop", outcome="failed")
    empty = registry_for(Snapshot())
    assert None is value(empty, "gdpr_auditor_web_pages", site="shop", outcome="observed")
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("GDPR_AUDITOR_REQUIRE_SERVICES") == "1":
            pytest.fail("promtool is required (Debian package prometheus) but not on PATH")
        pytest.skip("promtool not on PATH (install Debian's prometheus package)")
    body = generate_latest(registry)
    lint = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


class GatedFindings(dict[tuple[str, str, str], int]):
    """Open findings whose rendering waits until the gate opens: a slow rendering, held open."""

    def __init__(self, counts: dict[tuple[str, str, str], int]) -> None:
        super().__init__(counts)
        self.rendering = threading.Event()
        self.gate = threading.Event()

    def items(self) -> Any:
        self.rendering.set()
        if not self.gate.wait(30):
            raise TimeoutError("the test never opened the gate")
        return super().items()


def test_a_scrape_during_a_slow_rendering_serves_the_previous_one_then_the_new_one() -> None:
    """While new results are being rendered, scrapes get the previous rendering without waiting;
    once it is done they get the new results, in every format asked for, rendered once."""
    crm = (("integration", "crm"), ("rule", "r"), ("severity", "critical"))
    current = [replace(FULL, open_findings={("r", "critical", "crm"): 2})]
    exposition = Exposition(lambda: current[0])
    exposition.render("")
    exposition.render(OPENMETRICS, True)
    slow = GatedFindings({("r", "critical", "crm"): 5})
    current[0] = replace(FULL, open_findings=slow, leader=True)
    prerender = threading.Thread(target=exposition.prerender)
    prerender.start()
    assert slow.rendering.wait(10)
    served: list[tuple[str, bytes]] = []

    def scrape() -> None:
        served.append(exposition.render(""))
        served.append(exposition.render(OPENMETRICS, True))
        served.append(exposition.render("text/plain; version=0.0.4", True))

    try:
        scraping = threading.Thread(target=scrape)
        scraping.start()
        scraping.join(10)
        assert not scraping.is_alive()  # done while the rendering still waits at the gate
        assert prerender.is_alive()
    finally:
        slow.gate.set()
        prerender.join(10)
    assert not prerender.is_alive()

    bodies = [
        served[0][1].decode(),
        gzip.decompress(served[1][1]).decode(),
        gzip.decompress(served[2][1]).decode(),
    ]
    for body, openmetrics in zip(bodies, (False, True, False), strict=True):
        previous = samples(body, openmetrics=openmetrics)
        assert 2 == previous[("gdpr_auditor_findings_open", crm)]
        assert 1 == previous[("gdpr_auditor_leader", ())]  # the live part is read anew
    assert 1 == gzip.decompress(served[1][1]).count(b"# EOF")
    _, text = exposition.render("")
    _, om = exposition.render(OPENMETRICS, True)
    assert 5 == samples(text.decode())[("gdpr_auditor_findings_open", crm)]
    new = samples(gzip.decompress(om).decode(), openmetrics=True)
    assert 5 == new[("gdpr_auditor_findings_open", crm)]


def test_results_changed_while_replacing_are_served_only_once_rendered() -> None:
    """Inside `replacing` a scrape of the new results serves the previous rendering; on leaving
    the block the new results are rendered, and scrapes then find them without rendering."""
    crm = (("integration", "crm"), ("rule", "r"), ("severity", "critical"))
    current = [replace(FULL, open_findings=CountedFindings({("r", "critical", "crm"): 2}))]
    exposition = Exposition(lambda: current[0])
    exposition.render(OPENMETRICS, True)
    CountedFindings.reads = 0

    with exposition.replacing():
        current[0] = replace(FULL, open_findings=CountedFindings({("r", "critical", "crm"): 7}))
        _, during = exposition.render(OPENMETRICS, True)
        reads_during = CountedFindings.reads
    after_block = CountedFindings.reads
    _, after = exposition.render(OPENMETRICS, True)

    assert 0 == reads_during
    assert 1 == after_block == CountedFindings.reads
    previous = samples(gzip.decompress(during).decode(), openmetrics=True)
    assert 2 == previous[("gdpr_auditor_findings_open", crm)]
    new = samples(gzip.decompress(after).decode(), openmetrics=True)
    assert 7 == new[("gdpr_auditor_findings_open", crm)]


def test_a_failure_inside_replacing_renders_nothing_and_releases_the_rendering() -> None:
    """An exception while replacing the results leaves them unrendered; the next scrape renders."""
    crm = (("integration", "crm"), ("rule", "r"), ("severity", "critical"))
    current = [replace(FULL, open_findings={("r", "critical", "crm"): 2})]
    exposition = Exposition(lambda: current[0])
    exposition.render("")

    with pytest.raises(RuntimeError), exposition.replacing():
        current[0] = replace(FULL, open_findings={("r", "critical", "crm"): 3})
        raise RuntimeError("the store read failed")
    _, text = exposition.render("")

    assert 3 == samples(text.decode())[("gdpr_auditor_findings_open", crm)]
