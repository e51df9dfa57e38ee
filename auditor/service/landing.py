"""The daemon's landing page at `/`: its status at a glance, in plain HTML that reads as well in a
text browser (no script, nothing fetched, every value escaped)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from html import escape

from auditor.config import Config, JobSchedule
from auditor.service.snapshot import JobHealth, Snapshot

SEVERITIES = ("critical", "warning", "info")


@dataclass(frozen=True, slots=True)
class Status:
    """What the page shows besides the stored results: the time, health and the schedule."""

    now: datetime
    healthy: bool
    health_reason: str
    schedules: Mapping[str, str]  # job id -> "every PT1H" or "cron 0 * * * *"
    max_data_age_days: int | None = None


def schedules(jobs: Mapping[str, JobSchedule]) -> dict[str, str]:
    """Each job's schedule in words: `every PT1H` or `cron 0 * * * *` (UTC)."""
    return {
        job: f"every {schedule.interval}"
        if schedule.interval is not None
        else f"cron {schedule.cron} (UTC)"
        for job, schedule in jobs.items()
    }


def landing_status(config: Config, now: datetime, health: tuple[bool, str]) -> Status:
    """The status the page shows besides the stored results, from the loaded configuration."""
    return Status(now, health[0], health[1], schedules(config.jobs), config.geoip_max_age_days)


def age_text(seconds: float) -> str:
    """A duration in words for people: `42 s`, `5 min`, `3 h 4 min`, `2 days`."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "never"
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{stamp} ({age_text((now - moment).total_seconds())} ago)"


def _table(headers: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>"


def _by_severity(counts: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Counts summed by severity, from (severity, count) pairs."""
    totals = dict.fromkeys(SEVERITIES, 0)
    for severity, count in counts:
        totals[severity] = totals.get(severity, 0) + count
    return totals


def _last_audit(snapshot: Snapshot, now: datetime) -> str:
    run = snapshot.last_run
    if run is None or snapshot.last_audit is None:
        return "<p>No audit has finished yet: the first runs at start-up, on the leader.</p>"
    facts = [
        ("Finished", _when(snapshot.last_audit, now)),
        ("Run", f"#{run.id}, as of {run.as_of.isoformat() if run.as_of else 'unknown'}"),
        ("Audited", f"{run.integrations} integrations, {run.hostnames} hostnames"),
        (
            "Findings",
            f"{run.findings} open after it: {run.new} new, {run.reopened} re-opened, "
            f"{run.resolved} resolved" + (f", {run.carried} carried" if run.carried else ""),
        ),
    ]
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    return f'<dl id="last-audit">{items}</dl>'


def _findings(snapshot: Snapshot) -> str:
    open_ = _by_severity((key[1], n) for key, n in snapshot.open_findings.items())
    waived = _by_severity((key[1], n) for key, n in snapshot.waived_findings.items())
    carried = _by_severity((key[1], n) for key, n in snapshot.carried_findings.items())
    rows = [(s, open_[s], waived[s], carried[s]) for s in SEVERITIES]
    rows.append(("all", sum(open_.values()), sum(waived.values()), sum(carried.values())))
    return _table(("Severity", "Open", "Waived", "Of the open, carried"), rows)


def _jobs(jobs: Iterable[JobHealth], status: Status) -> str:
    rows = [
        (
            job.job_id,
            status.schedules.get(job.job_id, "—"),
            _when(job.last_run, status.now),
            _when(job.last_success, status.now),
            job.runs,
            job.failures,
        )
        for job in sorted(jobs, key=lambda j: j.job_id)
    ]
    if not rows:
        return "<p>No job is scheduled here.</p>"
    headers = ("Job", "Schedule", "Last run", "Last success", "Runs", "Failures")
    return _table(headers, rows)


def _data(snapshot: Snapshot, status: Status) -> str:
    if not snapshot.data_built:
        return "<p>The last audit used no dated GeoIP or IP-range data.</p>"
    limit = status.max_data_age_days
    rows = []
    for (kind, name), built in sorted(snapshot.data_built.items()):
        days = (status.now - built).total_seconds() / 86400
        stale = limit is not None and days > limit
        rows.append(
            (kind, name, built.date().isoformat(), f"{days:.0f} days" + (" STALE" if stale else ""))
        )
    return _table(("Kind", "Name", "Built", "Age"), rows)


def render_landing(snapshot: Snapshot, status: Status) -> str:
    """The landing page: health, role, the last audit and its age, open findings by severity,
    jobs, data ages and links to `/metrics` and `/healthz`."""
    health = "healthy" if status.healthy else f"UNHEALTHY: {status.health_reason}"
    role = (
        "leader: this replica runs the jobs"
        if snapshot.leader
        else "standby: another replica holds the leader lock; this one serves the stored results"
    )
    reload = "succeeded" if snapshot.config_reload_ok else "FAILED (running on the last good one)"
    open_total = sum(snapshot.open_findings.values())
    title = f"gdpr-auditor: {'healthy' if status.healthy else 'unhealthy'}, {open_total} open"
    sections = [
        f"<h1>gdpr-auditor {escape(snapshot.version)}</h1>",
        (
            '<dl id="status">'
            f"<dt>Health</dt><dd>{escape(health)}</dd>"
            f"<dt>Role</dt><dd>{escape(role)}</dd>"
            f"<dt>Configuration</dt><dd>last load {escape(reload)}, "
            f"{escape(_when(snapshot.config_reload_at, status.now))}</dd>"
            f"<dt>Now</dt><dd>{escape(status.now.strftime('%Y-%m-%d %H:%M:%S UTC'))}</dd></dl>"
        ),
        "<h2>Last audit</h2>",
        _last_audit(snapshot, status.now),
        "<h2>Open findings</h2>",
        _findings(snapshot),
        "<p>List them with <code>gdpr-auditor finding list --config FILE</code>.</p>",
        "<h2>Jobs</h2>",
        _jobs(snapshot.jobs, status),
        "<h2>Data</h2>",
        _data(snapshot, status),
        "<h2>Endpoints</h2>",
        _ENDPOINTS,
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(sections)
        + "\n</body>\n</html>\n"
    )


_ENDPOINTS = (
    '<ul><li><a href="/metrics">/metrics</a>: Prometheus metrics (the stored results; no '
    'scrape runs an audit)</li><li><a href="/healthz">/healthz</a>: health check (503 when '
    "the scheduler is stuck or the state database is lost)</li></ul>"
)

_STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;"
    "color:#1a1a1a;background:#fff}dl{display:grid;grid-template-columns:max-content 1fr;"
    "gap:2px 16px}dt{font-weight:600}dd{margin:0}table{border-collapse:collapse}"
    "th,td{border:1px solid #c8ccd2;padding:3px 8px;text-align:left}"
)
