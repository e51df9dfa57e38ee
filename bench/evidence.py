"""Benchmarks verifying a year's evidence chain and rendering a quarter's report against bare reads."""

# Usage: python bench/evidence.py [--integrations 500] [--days 365] [--rebuild] [--json]
#
# Builds, once, a SQLite state database of a year of hourly audits (8,760 runs) of 500
# integrations, through the store's own functions as the daemon calls them: begin_run and
# finish_run with a synthesised AuditResult (no DNS), and a daily prune of place checks older
# than 30 days (the default keep_observations). Every integration has a hosting place; 40
# integrations keep an unsafeguarded-transfer finding all year, and ten more carry one in a
# window that moves by three integrations each hour (three findings resolved and three opened
# or reopened per run). The evidence chain is HMAC-keyed. The database is cached under
# bench/out/ and reused while the parameters match (--rebuild makes it again).
#
# Then, in one process, it times:
#   - verifying the whole chain (auditor.store.reporting.check_chain, with the key), against a
#     bare SELECT of every evidence row;
#   - the last quarter's HTML report (read_period, check_chain, build_report, render_html, as
#     `gdpr-auditor report` does), against bare SELECTs of the quarter's runs, finding events
#     and evidence rows;
# and prints the figures with PASS/FAIL against the targets: both under 30 s. Exit status: 0
# targets met, 1 a target missed or the chain did not verify.

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from auditor import __version__
from auditor.core.inventory import load_inventory
from auditor.core.model import Facet, Finding, Integration, PlaceCheck, Severity, Verdict
from auditor.core.policies import PolicyData, load_policies
from auditor.core.results import AuditResult
from auditor.evidence.render import render
from auditor.evidence.report import ReportInputs, build_report, period_bounds
from auditor.store import StateStore
from auditor.store.reporting import check_chain, read_period
from auditor.store.schema import audit_runs, evidence, finding_events
from tests.helpers import entry

OUT = ROOT / "bench" / "out"
KEY = b"bench-evidence-key-0123456789abcdef"
START = datetime(2025, 1, 1, tzinfo=UTC)
QUARTER = (date(2025, 10, 1), date(2025, 12, 31))
ALWAYS_OPEN = 40
WINDOW = 10
STEP = 3
TARGET_SECONDS = 30.0
KEEP = timedelta(days=30)


def write_inventory(path: Path, count: int) -> None:
    entries = [entry(f"app-{n:03d}", name=f"App {n:03d}", hosting=["US"]) for n in range(count)]
    path.write_text(yaml.safe_dump({"integrations": entries}))


def unlawful(integration: str) -> Finding:
    return Finding(
        rule="transfer-unsafeguarded",
        integration=integration,
        severity=Severity.CRITICAL,
        article="Art. 44",
        message=f"{integration} is hosted in US without a safeguard",
        facet=Facet.HOSTING,
        place="US",
        country="US",
    )


def hour_result(
    hour: int, integrations: list[Integration], policies: PolicyData, at: datetime
) -> AuditResult:
    """One hour's audit: every integration's place, the steady findings and the moving window."""
    ids = [integration.id for integration in integrations]
    movable = ids[ALWAYS_OPEN:]
    window = (
        {movable[(hour * STEP + j) % len(movable)] for j in range(WINDOW)} if movable else set()
    )
    flagged = [i for i in ids if i in window or ids.index(i) < ALWAYS_OPEN]
    places = tuple(
        PlaceCheck(
            integration=i,
            facet=Facet.HOSTING,
            place="US",
            country="US",
            verdict=Verdict.UNSAFEGUARDED if i in flagged else Verdict.SAFEGUARDED,
            basis="none" if i in flagged else "standard contractual clauses (Art. 46(2)(c))",
        )
        for i in ids
    )
    return AuditResult(
        as_of=at.date(),
        started_at=at,
        finished_at=at + timedelta(seconds=20),
        integrations=tuple(integrations),
        observations=(),
        places=places,
        findings=tuple(unlawful(i) for i in flagged),
        policy_digest=policies.digest,
    )


def build(path: Path, count: int, days: int) -> None:
    """Record `days` of hourly audits into a new database at `path`."""
    path.unlink(missing_ok=True)
    inventory = path.with_suffix(".inventory.yaml")
    write_inventory(inventory, count)
    policies = load_policies()
    integrations = load_inventory([inventory], policies)
    store = StateStore.open(f"sqlite:///{path}", evidence_key=KEY)
    began = time.perf_counter()
    try:
        for hour in range(days * 24):
            at = START + timedelta(hours=hour)
            run_id = store.begin_run(
                at, tool_version=__version__, config_digest="bench", policy_digest=policies.digest
            )
            store.finish_run(
                run_id, hour_result(hour, integrations, policies, at), at + timedelta(seconds=20)
            )
            if hour % 24 == 23:  # the daemon prunes after every run; daily is enough here
                store.prune_observations(at - KEEP)
            if hour % 720 == 719:
                print(
                    f"  built {hour + 1} runs in {time.perf_counter() - began:.0f} s",
                    file=sys.stderr,
                )
    finally:
        store.close()
    path.with_suffix(".json").write_text(json.dumps({"integrations": count, "days": days}))


def timed(action: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    value = action()
    return time.perf_counter() - began, value


def measure(path: Path, count: int) -> dict[str, Any]:
    store = StateStore.open(f"sqlite:///{path}", evidence_key=KEY)
    policies = load_policies()
    integrations = load_inventory([path.with_suffix(".inventory.yaml")], policies)
    start, end = period_bounds(*QUARTER)
    try:
        with store.engine.connect() as conn:
            bare_chain, rows = timed(lambda: conn.execute(select(evidence)).all())
            runs = len(conn.execute(select(audit_runs.c.id)).all())
        verify_seconds, chain = timed(lambda: check_chain(store))

        def bare_period() -> int:
            with store.engine.connect() as conn:
                return sum(
                    len(conn.execute(query).all())
                    for query in (
                        select(audit_runs).where(
                            audit_runs.c.started_at >= start, audit_runs.c.started_at < end
                        ),
                        select(finding_events).where(
                            finding_events.c.at >= start, finding_events.c.at < end
                        ),
                        select(evidence).where(evidence.c.at >= start, evidence.c.at < end),
                    )
                )

        bare_quarter, quarter_rows = timed(bare_period)

        def report() -> str:
            records = read_period(store.engine, start, end)
            document = build_report(
                ReportInputs(
                    first_day=QUARTER[0], last_day=QUARTER[1], as_of=QUARTER[1], generated_at=None,
                    tool_version=__version__, config_digest="bench", policies=policies,
                    integrations=integrations, records=records, chain=check_chain(store),
                )
            )  # fmt: skip
            return render(document, "html")

        report_seconds, page = timed(report)
    finally:
        store.close()
    return {
        "integrations": count,
        "runs": runs,
        "evidence_records": len(rows),
        "chain_verified": chain.verification.ok,
        "verify_seconds": round(verify_seconds, 3),
        "bare_select_evidence_seconds": round(bare_chain, 3),
        "quarter_rows": quarter_rows,
        "report_html_seconds": round(report_seconds, 3),
        "report_html_bytes": len(page.encode()),
        "bare_select_quarter_seconds": round(bare_quarter, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--integrations", type=int, default=500)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"evidence-{args.integrations}x{args.days}d.db"
    marker = path.with_suffix(".json")
    if args.rebuild or not path.exists() or not marker.exists():
        print(
            f"building {args.days * 24} hourly runs of {args.integrations} integrations into {path.name}",
            file=sys.stderr,
        )
        seconds, _ = timed(lambda: build(path, args.integrations, args.days))
        print(f"  built in {seconds:.0f} s", file=sys.stderr)
    figures = measure(path, args.integrations)
    ok = (
        figures["chain_verified"]
        and figures["verify_seconds"] < TARGET_SECONDS
        and figures["report_html_seconds"] < TARGET_SECONDS
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for name, value in figures.items():
            print(f"{name:32} {value}")
        verdict = "PASS" if ok else "FAIL"
        print(f"{verdict}: verify and quarter report each under {TARGET_SECONDS:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
