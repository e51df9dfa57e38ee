"""Builds the Grafana dashboards in dashboards/grafana/ with grafana-foundation-sdk."""

# Usage: python dashboards/generate.py [OUT_DIR]
#
# Writes dpo-overview.json and operations.json into OUT_DIR (default: dashboards/grafana next to
# this script). The SDK's builders follow Grafana's own dashboard schema, so what they write is a
# dashboard Grafana reads as it is. Needs grafana-foundation-sdk (the `test` extra installs it).
# The committed JSON must be what this script writes: tests/service/test_dashboards.py checks it.
# A new panel goes here, never into the JSON by hand.

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import dashboard as board
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

GRAFANA = Path(__file__).resolve().parent / "grafana"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
HEIGHT = 8
SCOPE = 'job=~"$job", instance=~"$instance"'
"""Every selector is scoped to the dashboard's job and instance variables."""


def sel(metric: str, *matchers: str) -> str:
    """A selector of `metric` scoped to the job and instance, with further matchers."""
    return f"{metric}{{{', '.join((SCOPE, *matchers))}}}"


def rate(metric: str) -> str:
    return f"rate({sel(metric)}[$__rate_interval])"


@dataclass(frozen=True)
class Query:
    """One PromQL query of a panel: a range query, or an instant one shown as a table."""

    expr: str
    legend: str = ""
    instant: bool = False

    def build(self, ref_id: str) -> prometheus.Dataquery:
        query = prometheus.Dataquery().ref_id(ref_id).datasource(DATASOURCE).expr(self.expr)
        query = query.legend_format(self.legend)
        if self.instant:
            return query.instant().format(PromQueryFormat.TABLE)
        return query.range()


@dataclass(frozen=True)
class Panel:
    """A panel: its kind, title, description (what it shows, and the alert it relates to),
    unit, width on the 24-column grid, and queries."""

    kind: Callable[[], Any]
    title: str
    description: str
    unit: str
    width: int
    queries: Sequence[Query]

    def build(self, panel_id: int) -> Any:
        built = self.kind().id(panel_id).title(self.title).description(self.description)
        built = built.datasource(DATASOURCE).unit(self.unit).span(self.width).height(HEIGHT)
        for index, query in enumerate(self.queries):
            built = built.with_target(query.build(chr(ord("A") + index)))
        return built


def _variables() -> list[Any]:
    job_query = "label_values(gdpr_auditor_build_info, job)"
    instance_query = 'label_values(gdpr_auditor_build_info{job=~"$job"}, instance)'
    return [
        board.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        board.QueryVariable("job")
        .label("Job")
        .datasource(DATASOURCE)
        .query({"query": job_query, "refId": "job"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .include_all(False)
        .multi(False),
        board.QueryVariable("instance")
        .label("Instance")
        .datasource(DATASOURCE)
        .query({"query": instance_query, "refId": "instance"})
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .include_all(True)
        .all_value(".*")
        .multi(True),
    ]


def dashboard(uid: str, title: str, description: str, tags: list[str], panels: list[Panel]) -> Any:
    """A read-only dashboard over the last week, with the datasource, job and instance
    variables, and the panels laid out left to right, top to bottom."""
    built = (
        board.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(tags)
        .timezone("utc")
        .readonly()
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .version(1)
        .refresh("1m")
        .time("now-7d", "now")
    )
    for variable in _variables():
        built = built.with_variable(variable)
    for panel_id, panel in enumerate(panels, start=1):
        built = built.with_panel(panel.build(panel_id))
    return built.build()


def _open(severity: str) -> str:
    return (
        f"sum(max by (rule, integration) ({sel('gdpr_auditor_findings_open', severity)}))"
        " or vector(0)"
    )


def _places(verdict: str) -> str:
    return f"sum(max by (verdict, country) ({sel('gdpr_auditor_places', verdict)})) or vector(0)"


def dpo_overview() -> Any:
    """What a DPO looks at: open findings, where personal data goes, consent and retention."""
    findings = sel("gdpr_auditor_findings_open")
    missing = sel("gdpr_auditor_consent_missing_subjects")
    return dashboard(
        "gdpr-auditor-dpo",
        "GDPR auditor: DPO overview",
        "Compliance posture from the last audit runs: open findings, where personal data goes, "
        "consent and retention.",
        ["gdpr", "compliance"],
        [
            Panel(stat.Panel, "Critical findings open",
                  "Open, unwaived critical findings from the last audit, all rules and "
                  "integrations. Anything above 0 has a GdprAuditorCriticalFinding ticket.",
                  "short", 6, [Query(_open('severity="critical"'), "critical")]),
            Panel(stat.Panel, "Warnings open",
                  "Open, unwaived findings of severity warning from the last audit.",
                  "short", 6, [Query(_open('severity="warning"'), "warning")]),
            Panel(stat.Panel, "Unsafeguarded places",
                  "Places personal data reaches outside the EEA with neither adequacy in scope "
                  "nor a safeguard (verdict unsafeguarded), and places whose only cover is a "
                  "limited-scope adequacy decision the DPO has not confirmed (verdict "
                  "scope-unconfirmed).",
                  "short", 6, [Query(_places('verdict="unsafeguarded"'), "unsafeguarded"),
                               Query(_places('verdict="scope-unconfirmed"'), "scope unconfirmed")]),
            Panel(stat.Panel, "Last audit",
                  "How long ago the audit run the figures on this dashboard come from finished.",
                  "s", 6, [Query(f"time() - max({sel('gdpr_auditor_last_audit_timestamp_seconds')}"
                                 " > 0)", "age")]),
            Panel(timeseries.Panel, "Posture over time",
                  "Open, unwaived findings by severity over time; the critical line is the one "
                  "to bring to zero.",
                  "short", 24, [Query(f"sum by (severity) (max by (rule, severity, integration) "
                                      f"({findings}))", "{{severity}}")]),
            Panel(table.Panel, "Open findings by rule, severity and integration",
                  "Every rule, severity and integration with open, unwaived findings in the last "
                  "audit, and how many. `gdpr-auditor finding list` shows them.",
                  "short", 12, [Query(f"max by (rule, severity, integration) ({findings} > 0)",
                                      instant=True)]),
            Panel(table.Panel, "Places by country and verdict",
                  "Places personal data reaches (hosting, backups, support, endpoints, "
                  "sub-processors), by ISO country code and transfer verdict.",
                  "short", 12, [Query(f"max by (verdict, country) "
                                      f"({sel('gdpr_auditor_places')} > 0)", instant=True)]),
            Panel(timeseries.Panel, "Consent coverage",
                  "Share of the data subjects shared with a consent-based integration who have "
                  "a valid consent for its purpose (1 = everyone).",
                  "percentunit", 12,
                  [Query(f"1 - max by (integration) ({missing}) / max by (integration) "
                         f"({sel('gdpr_auditor_consent_subjects_shared')} > 0)",
                         "{{integration}}")]),
            Panel(timeseries.Panel, "Subjects without consent",
                  "Data subjects shared with an integration without a valid consent (withdrawn "
                  "included), per integration; GdprAuditorConsentGaps fires above 0.",
                  "short", 12,
                  [Query(f"max by (integration) ({missing})", "missing {{integration}}"),
                   Query(f"max by (integration) "
                         f"({sel('gdpr_auditor_consent_withdrawn_subjects')})",
                         "withdrawn {{integration}}")]),
            Panel(timeseries.Panel, "Retention backlog",
                  "Records past their retention deadline per retention policy: overdue (to act "
                  "on) and held (kept under a legal hold).",
                  "short", 12,
                  [Query(f"max by (policy) ({sel('gdpr_auditor_retention_overdue_records')})",
                         "overdue {{policy}}"),
                   Query(f"max by (policy) ({sel('gdpr_auditor_retention_held_records')})",
                         "held {{policy}}")]),
            Panel(table.Panel, "Waived findings",
                  "Findings a DPO has waived, by rule and severity. Waivers end on their expiry "
                  "date; `gdpr-auditor finding list --status waived` shows when each one "
                  "expires.",
                  "short", 12, [Query(f"max by (rule, severity) "
                                      f"({sel('gdpr_auditor_findings_waived')} > 0)",
                                      instant=True)]),
            Panel(bargauge.Panel, "Integrations by category",
                  "Integrations in the audited inventory, by category.",
                  "short", 12, [Query(f"max by (category) ({sel('gdpr_auditor_integrations')})",
                                      "{{category}}", instant=True)]),
            Panel(table.Panel, "Waivers about to expire",
                  "Time left until the soonest-ending active waiver of an open finding ends, by "
                  "rule and severity: when it ends the finding counts as open again. "
                  "`gdpr-auditor finding list --status waived` names each waiver.",
                  "s", 12, [Query(f"min by (rule, severity) "
                                  f"({sel('gdpr_auditor_waiver_expiry_timestamp_seconds')}) - "
                                  "time()", instant=True)]),
        ],
    )  # fmt: skip


def operations() -> Any:
    """What ops look at: scrapes, the leader, jobs, DNS, geolocation data, memory."""
    last_success = sel("gdpr_auditor_job_last_success_timestamp_seconds")
    return dashboard(
        "gdpr-auditor-ops",
        "GDPR auditor: operations",
        "Health of the gdpr-auditor daemon: scrapes, scheduled jobs, DNS, geolocation data, "
        "replicas and configuration.",
        ["gdpr", "operations"],
        [
            Panel(stat.Panel, "Up",
                  "Whether Prometheus can scrape each instance (1) or not (0); GdprAuditorDown "
                  "fires after 5 minutes at 0.",
                  "bool", 6, [Query(sel("up"), "{{instance}}")]),
            Panel(stat.Panel, "Leader",
                  "Replicas holding the leader lock and running the jobs; exactly one should. "
                  "GdprAuditorNoActiveReplica fires at 0.",
                  "short", 6, [Query(f"sum({sel('gdpr_auditor_leader')})", "leaders")]),
            Panel(stat.Panel, "Config reload",
                  "Whether each instance's last configuration load or reload succeeded (1) or "
                  "was rejected (0).",
                  "bool", 6, [Query(sel("gdpr_auditor_config_last_reload_successful"),
                                    "{{instance}}")]),
            Panel(table.Panel, "Version",
                  "The gdpr-auditor version each instance runs.",
                  "short", 6, [Query(sel("gdpr_auditor_build_info"), instant=True)]),
            Panel(timeseries.Panel, "Job last success age",
                  "Time since each job last finished without error; jobs that never succeeded "
                  "are left out. GdprAuditorJobNotSucceeding fires past 2.5 intervals.",
                  "s", 12, [Query(f"time() - ({last_success} > 0)", "{{instance}} {{job_id}}")]),
            Panel(timeseries.Panel, "Job age relative to interval",
                  "Time since the last success divided by the job's schedule interval; the "
                  "alert threshold is 2.5.",
                  "short", 12, [Query(f"(time() - {last_success}) / "
                                      f"{sel('gdpr_auditor_job_interval_seconds')}",
                                      "{{instance}} {{job_id}}")]),
            Panel(timeseries.Panel, "Job runs and failures",
                  "Runs and failed runs per second of each job, over the rate interval.",
                  "ops", 12,
                  [Query(f"sum by (job_id) ({rate('gdpr_auditor_job_runs_total')})",
                         "runs {{job_id}}"),
                   Query(f"sum by (job_id) ({rate('gdpr_auditor_job_failures_total')})",
                         "failures {{job_id}}")]),
            Panel(timeseries.Panel, "Job durations",
                  "How long each job's last run took.",
                  "s", 12, [Query(sel("gdpr_auditor_job_last_duration_seconds"),
                                  "{{instance}} {{job_id}}")]),
            Panel(timeseries.Panel, "DNS queries and failures",
                  "DNS queries sent by audits and hostname lookups that failed (timeout, "
                  "SERVFAIL, REFUSED), per second; NXDOMAIN is an answer, not a failure.",
                  "ops", 12,
                  [Query(f"sum by (instance) ({rate('gdpr_auditor_dns_queries_total')})",
                         "queries {{instance}}"),
                   Query(f"sum by (instance) ({rate('gdpr_auditor_dns_failures_total')})",
                         "failures {{instance}}")]),
            Panel(timeseries.Panel, "Geolocation data age",
                  "Age of each GeoIP database and cloud IP-range data set in use; "
                  "GdprAuditorGeoDataStale fires past 45 days.",
                  "s", 12, [Query(f"time() - {sel('gdpr_auditor_data_build_timestamp_seconds')}",
                                  "{{kind}} {{name}}")]),
            Panel(timeseries.Panel, "Resident memory",
                  "Resident memory of each daemon process.",
                  "bytes", 12, [Query(sel("process_resident_memory_bytes"), "{{instance}}")]),
            Panel(timeseries.Panel, "Scrape duration",
                  "How long Prometheus takes to scrape /metrics; the default timeout is 10 s.",
                  "s", 12, [Query(sel("scrape_duration_seconds"), "{{instance}}")]),
        ],
    )  # fmt: skip


DASHBOARDS: dict[str, Callable[[], Any]] = {
    "dpo-overview.json": dpo_overview,
    "operations.json": operations,
}


def render() -> dict[str, str]:
    """Each dashboard file's name and the JSON text to write into it."""
    return {
        name: json.dumps(build(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def main(argv: list[str]) -> int:
    """Write the dashboards into the directory named by the one argument, or dashboards/grafana."""
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: python dashboards/generate.py [OUT_DIR]", file=sys.stderr)
        return 2
    out = Path(argv[0]) if argv else GRAFANA
    out.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
