"""Benchmarks batched retention enforcement on PostgreSQL against one bulk DELETE, same run."""

# Usage: python bench/retention.py [--url URL] [--rows 5000000] [--overdue 1000000]
#                                  [--batch 50000] [--layout spread|oldest|shuffled]
#                                  [--ts-index] [--repeat 3] [--schema NAME] [--keep] [--json]
#
# Loads, into a schema of its own (--schema, default gdpr_bench_retention) on the PostgreSQL
# server named by --url (default: the GDPR_AUDITOR_BENCH_PG or GDPR_AUDITOR_TEST_PG environment
# variable, else postgresql://postgres@127.0.0.1:5432/test), a table of N records (default
# 5,000,000) with `generate_series`: a bigint primary key, an e-mail address, a status, a
# last-activity timestamp and a legal-hold flag. Every (N / overdue)-th record is past the
# deadline (default 1,000,000), spread evenly over the whole table, so that each batch reads
# five records for every one it deletes (--layout spread, the default: a last-activity column);
# or the records with the lowest keys are (--layout oldest: a creation date, keys in time order);
# or every (N / overdue)-th key is, with the keys in no relation to the rows' physical order
# (--layout shuffled: as with random keys, or a table updated for years). 1% of the others are
# on legal hold. --ts-index adds an index on the timestamp. Then --repeat times (default 3), on
# two fresh copies of it (the same rows in the same physical order, vacuumed and analysed, then
# a CHECKPOINT), each side first in turn:
#   - bulk DELETE: `DELETE FROM records_bulk WHERE last_activity_at < deadline AND NOT legal_hold`
#     in one transaction (psycopg), what a person would run by hand;
#   - batched enforcement: auditor.retention.enforce_policy() on `records_batched` in a fresh
#     process, as `gdpr-auditor retention enforce` runs one policy: a plan (one pass counting the
#     table and the overdue), and batches of at most --batch records (the policy's batch_size),
#     each its own transaction that re-checks the deadline and the hold: on PostgreSQL, for this
#     plain table, the two halves of the table walked at once, each on its own connection, one
#     statement per batch deleting the eligible records of a range of row addresses (a TID Range
#     Scan, the table read in physical order; each next range sized toward the batch size and a
#     0.5 s transaction; the statement returns how many, the intent names its transaction), the
#     plan counted meanwhile (no batch committed before it), one intent (committed before the
#     data source commits) and one evidence record per batch in a SQLite state database.
# Once: the same enforcement on a table a tenth the size, and an idle process (imported, bound,
# planned, nothing processed): the baselines for memory.
# It prints each round, the records per second of the best run of each side, their ratio (and
# the median of the rounds' ratios), the longest single enforcement transaction, and the peak
# RSS (VmHWM) of each process, with PASS/FAIL against the targets: ratio >= 0.7 best against
# best, longest transaction < 1 s, peak RSS of the full run at most 10 MB above the tenth-size
# run (flat in table size). A WRONG line says a table holds other records afterwards than it
# should. Exit status: 0 every target met, 1 a target missed or a WRONG result, 3 the benchmark
# could not run.

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SCHEMA = "gdpr_bench_retention"
SCHEMA = DEFAULT_SCHEMA  # --schema sets it
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DEADLINE = datetime(2024, 11, 22, 12, 0, tzinfo=UTC)  # NOW - P2Y
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_RATIO = 0.7
TARGET_LONGEST = 1.0
TARGET_GROWTH_MB = 10.0


def psycopg_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlalchemy_url(url: str) -> str:
    base = psycopg_url(url)
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}options=-csearch_path%3D{SCHEMA}"


def load(url: str, table: str, rows: int, every: int, layout: str, ts_index: bool) -> None:
    """Create `table` and fill it in SQL: no row passes through Python."""
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute(f"SET search_path = {SCHEMA}")
        connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.execute(
            f"""CREATE TABLE {table} (
                id bigint PRIMARY KEY,
                email text NOT NULL,
                status text NOT NULL,
                last_activity_at timestamptz NOT NULL,
                legal_hold boolean NOT NULL)"""
        )
        # Overdue: every `every`-th id (or the first rows/every ids), up to 700 days before the
        # deadline. The others: after it, 1% of them on legal hold. The rows go in in key order,
        # or (shuffled) in the order of a permutation of the keys: g times a multiplier prime
        # to the row count, modulo the row count.
        overdue = "mod(g, %(every)s) = 0" if layout != "oldest" else "g <= %(rows)s / %(every)s"
        keys = "generate_series(1, %(rows)s) AS g"
        if layout == "shuffled":
            keys = (
                "(SELECT mod((n - 1) * %(step)s, %(rows)s) + 1 AS g"
                " FROM generate_series(1::bigint, %(rows)s) AS n) AS shuffled"
            )
        connection.execute(
            f"""INSERT INTO {table}
                SELECT g,
                       'person' || g || '@example.org',
                       CASE WHEN mod(g, 3) = 0 THEN 'active' ELSE 'inactive' END,
                       CASE WHEN {overdue}
                            THEN %(deadline)s - (1 + mod(g, 700)) * interval '1 day'
                            ELSE %(deadline)s + mod(g, 700) * interval '1 day'
                                 + interval '1 second'
                       END,
                       NOT ({overdue}) AND mod(g, 100) = 1
                FROM {keys}""",
            {"rows": rows, "every": every, "deadline": DEADLINE, "step": step(rows)},
        )
        if ts_index:
            connection.execute(f"CREATE INDEX {table}_ts ON {table} (last_activity_at)")
        connection.execute(f"VACUUM ANALYZE {table}")


def step(rows: int) -> int:
    """A multiplier prime to `rows` (so that multiplying permutes 0..rows-1), near rows / e."""
    candidate = max(2, int(rows / 2.718281828))
    while math.gcd(candidate, rows) != 1:
        candidate += 1
    return candidate


def policy_yaml(table: str, batch: int, max_rows: int) -> str:
    return f"""
policies:
  - id: bench
    source: org
    table: {table}
    key: id
    timestamp: last_activity_at
    keep_for: P2Y
    legal_hold: {{column: legal_hold}}
    action: delete
    batch_size: {batch}
    max_rows_per_run: {max_rows}
    max_share: 0.25
"""


def child(mode: str, url: str, table: str, batch: int, max_rows: int, state: str) -> dict[str, Any]:
    """Run in a fresh process: bind and plan (idle), or enforce; print the figures as JSON."""
    from auditor.core.yamlsource import parse_yaml
    from auditor.retention import (
        bind_policy,
        enforce_policy,
        parse_retention,
        plan_policy,
    )
    from auditor.sources.config import ConfigRef, DataSourceSettings
    from auditor.sources.datasources import DataSources
    from auditor.store import StateStore

    policies, issues = parse_retention(parse_yaml(policy_yaml(table, batch, max_rows), "bench"))
    assert not issues, issues
    ref = ConfigRef("bench", "data_sources.org")
    settings = {"org": DataSourceSettings("org", sqlalchemy_url(url), None, False, ref)}
    store = StateStore.open(f"sqlite:///{state}")
    result: dict[str, Any] = {"mode": mode, "table": table}
    with DataSources(settings) as sources:
        bound = bind_policy(policies[0], sources)
        started = time.perf_counter()
        if mode == "idle":
            plan = plan_policy(bound, NOW)
            result.update(eligible=plan.eligible, processed=0)
        else:
            done = enforce_policy(bound, lambda: NOW, store)
            result.update(
                processed=done.processed,
                batches=done.batches,
                outcome=done.outcome,
                longest_transaction_seconds=done.longest_transaction_seconds,
            )
        result["seconds"] = time.perf_counter() - started
    store.close()
    result["peak_rss_kb"] = peak_rss_kb()
    return result


def peak_rss_kb() -> int:
    """This process's peak resident set in KiB (VmHWM, which starts afresh at exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def run_child(
    mode: str, url: str, table: str, batch: int, max_rows: int, state: Path
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", mode, "--url", url, "--table", table]
    command += ["--schema", SCHEMA]
    command += ["--batch", str(batch), "--max-rows", str(max_rows), "--state", str(state)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} run failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def bulk_delete(url: str, table: str) -> tuple[int, float]:
    with psycopg.connect(psycopg_url(url)) as connection:
        connection.execute(f"SET search_path = {SCHEMA}")
        started = time.perf_counter()
        cursor = connection.execute(
            f"DELETE FROM {table} WHERE last_activity_at < %s AND NOT legal_hold", (DEADLINE,)
        )
        connection.commit()
        return cursor.rowcount, time.perf_counter() - started


def checkpoint(url: str) -> None:
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute("CHECKPOINT")


def left(url: str, table: str) -> tuple[int, int]:
    """(records, records still overdue and not held) in the table."""
    with psycopg.connect(psycopg_url(url)) as connection:
        connection.execute(f"SET search_path = {SCHEMA}")
        row = connection.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE last_activity_at < %s AND NOT legal_hold)
                FROM {table}""",
            (DEADLINE,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    default_url = os.environ.get("GDPR_AUDITOR_BENCH_PG") or os.environ.get(
        "GDPR_AUDITOR_TEST_PG", DEFAULT_URL
    )
    parser.add_argument("--url", default=default_url)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--overdue", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--layout", choices=["spread", "oldest", "shuffled"], default="spread")
    parser.add_argument("--ts-index", action="store_true")
    parser.add_argument(
        "--schema", default=DEFAULT_SCHEMA, help="the schema to load the tables into"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of both, on fresh copies (default 3)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", choices=["idle", "enforce"], help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    parser.add_argument("--max-rows", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global SCHEMA  # one setting every function of this script reads
    SCHEMA = args.schema
    if args.child:
        result = child(args.child, args.url, args.table, args.batch, args.max_rows, args.state)
        print(json.dumps(result))
        return 0
    try:
        return bench(args)
    except (psycopg.Error, RuntimeError) as exc:
        print(f"bench/retention.py: could not run: {exc}", file=sys.stderr)
        return 3


def copy(url: str, source: str, table: str, ts_index: bool) -> None:
    """`table` afresh: the rows of `source` in the same physical order, its key (and index on
    the timestamp), vacuumed and analysed."""
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute(f"SET search_path = {SCHEMA}")
        connection.execute(f"DROP TABLE IF EXISTS {table}")
        connection.execute(f"CREATE TABLE {table} AS TABLE {source}")
        connection.execute(f"ALTER TABLE {table} ADD PRIMARY KEY (id)")
        if ts_index:
            connection.execute(f"CREATE INDEX {table}_ts ON {table} (last_activity_at)")
        connection.execute(f"VACUUM ANALYZE {table}")


def bench(args: argparse.Namespace) -> int:
    every = args.rows // args.overdue
    small = args.rows // 10
    with psycopg.connect(psycopg_url(args.url), autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.execute(f"CREATE SCHEMA {SCHEMA}")
        version = connection.execute("SHOW server_version").fetchone()
    rounds: list[dict[str, Any]] = []
    wrong: list[str] = []
    try:
        started = time.perf_counter()
        print(f"loading {args.rows} records ...", file=sys.stderr)
        load(args.url, "records_template", args.rows, every, args.layout, args.ts_index)
        load(args.url, "records_small", small, every, args.layout, args.ts_index)
        loaded = time.perf_counter() - started
        eligible = left(args.url, "records_template")[1]
        small_eligible = left(args.url, "records_small")[1]
        with tempfile.TemporaryDirectory() as temp:
            state = Path(temp)
            idle = run_child(
                "idle", args.url, "records_template", args.batch, eligible, state / "idle.db"
            )
            print("batched enforcement, a tenth of the table ...", file=sys.stderr)
            checkpoint(args.url)
            tenth = run_child(
                "enforce", args.url, "records_small", args.batch, small_eligible, state / "s.db"
            )
            for number in range(args.repeat):
                print(f"round {number + 1} of {args.repeat} ...", file=sys.stderr)
                for table in ("records_bulk", "records_batched"):
                    copy(args.url, "records_template", table, args.ts_index)
                checkpoint(args.url)
                figures_of: dict[str, Any] = {}
                # Alternately first: neither always finds the other's pages in the cache.
                order = ("bulk", "batched") if number % 2 == 0 else ("batched", "bulk")
                for which in order:
                    if which == "bulk":
                        figures_of["bulk"] = bulk_delete(args.url, "records_bulk")
                    else:
                        figures_of["batched"] = run_child(
                            "enforce",
                            args.url,
                            "records_batched",
                            args.batch,
                            eligible,
                            state / f"full-{number}.db",
                        )
                    checkpoint(args.url)
                rows, seconds = figures_of["bulk"]
                rounds.append(
                    {"bulk": {"rows": rows, "seconds": seconds}, "batched": figures_of["batched"]}
                )
                for table in ("records_bulk", "records_batched"):
                    count, overdue = left(args.url, table)
                    if (count, overdue) != (args.rows - eligible, 0):
                        wrong.append(
                            f"round {number + 1}, {table}: {count} records ({overdue} overdue),"
                            f" expected {args.rows - eligible}"
                        )
                if figures_of["batched"]["processed"] != eligible:
                    processed = figures_of["batched"]["processed"]
                    wrong.append(f"round {number + 1}: enforcement processed {processed}")
        count, overdue = left(args.url, "records_small")
        if (count, overdue) != (small - small_eligible, 0):
            wrong.append(f"records_small: {count} records ({overdue} overdue)")
    finally:
        if not args.keep:
            with psycopg.connect(psycopg_url(args.url), autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    # Best against best, as the other benchmarks compare: the least disturbed run of each.
    bulk = min((r["bulk"] for r in rounds), key=lambda b: b["seconds"])
    full = min((r["batched"] for r in rounds), key=lambda b: b["seconds"])
    ratios = sorted(r["bulk"]["seconds"] / r["batched"]["seconds"] for r in rounds)
    figures = {
        "rows": args.rows,
        "overdue": eligible,
        "batch": args.batch,
        "layout": args.layout,
        "ts_index": args.ts_index,
        "load_seconds": loaded,
        "rounds": rounds,
        "median_round_ratio": ratios[len(ratios) // 2],
        "bulk": {**bulk, "rate": bulk["rows"] / bulk["seconds"]},
        "batched": {**full, "rate": full["processed"] / full["seconds"]},
        "tenth": {**tenth, "rate": tenth["processed"] / tenth["seconds"]},
        "idle": idle,
    }
    figures["ratio"] = figures["batched"]["rate"] / figures["bulk"]["rate"]
    peak = max(r["batched"]["peak_rss_kb"] for r in rounds)
    longest = max(r["batched"]["longest_transaction_seconds"] for r in rounds)
    growth = (peak - tenth["peak_rss_kb"]) / 1024
    checks = [
        (
            figures["ratio"] >= TARGET_RATIO,
            f"rate >= {TARGET_RATIO}x bulk DELETE",
            f"{figures['ratio']:.2f}x",
        ),
        (
            longest < TARGET_LONGEST,
            f"longest transaction < {TARGET_LONGEST:g} s",
            f"{longest:.3f} s",
        ),
        (
            growth <= TARGET_GROWTH_MB,
            f"peak RSS growth 10x table <= {TARGET_GROWTH_MB:g} MB",
            f"{growth:+.1f} MB",
        ),
    ]
    if args.json:
        figures["checks"] = [{"ok": ok, "target": t, "value": v} for ok, t, v in checks]
        figures["wrong"] = wrong
        print(json.dumps(figures, indent=2))
    else:
        report(figures, checks, wrong, version[0] if version else "?")
    return 0 if all(ok for ok, _, _ in checks) and not wrong else 1


def report(
    figures: dict[str, Any], checks: list[tuple[bool, str, str]], wrong: list[str], version: str
) -> None:
    bulk, batched, tenth, idle = (figures[k] for k in ("bulk", "batched", "tenth", "idle"))
    print(
        f"retention enforcement benchmark: {figures['rows']} records, {figures['overdue']} "
        f"overdue ({figures['layout']}), batches of {figures['batch']}"
        + (", index on the timestamp" if figures["ts_index"] else "")
    )
    print(
        f"PostgreSQL {version}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"loaded in {figures['load_seconds']:.1f} s"
    )
    print()
    print(f"{'round':>5}{'bulk DELETE s':>15}{'batched s':>11}{'ratio':>8}{'transactions':>14}")
    for number, one in enumerate(figures["rounds"], 1):
        done = one["batched"]
        print(
            f"{number:>5}{one['bulk']['seconds']:>15.2f}{done['seconds']:>11.2f}"
            f"{one['bulk']['seconds'] / done['seconds']:>7.2f}x{done['batches']:>14}"
        )
    print()
    print(
        f"{'the best of each':26}{'records':>9}{'seconds':>10}{'records/s':>11}{'peak RSS MB':>13}"
    )
    print(
        f"{'bulk DELETE':26}{bulk['rows']:>9}{bulk['seconds']:>10.2f}{bulk['rate']:>11.0f}{'':>13}"
    )
    for name, run in (("batched enforcement", batched), ("  on a tenth of the table", tenth)):
        print(
            f"{name:26}{run['processed']:>9}{run['seconds']:>10.2f}{run['rate']:>11.0f}"
            f"{run['peak_rss_kb'] / 1024:>13.1f}"
        )
    print(
        f"{'idle (bound and planned)':26}{0:>9}{idle['seconds']:>10.2f}{'':>11}{idle['peak_rss_kb'] / 1024:>13.1f}"
    )
    print()
    print(
        f"ratio batched/bulk, best against best: {figures['ratio']:.2f}x (round by round, the "
        f"median {figures['median_round_ratio']:.2f}x); {batched['batches']} transactions, the "
        f"longest {batched['longest_transaction_seconds'] * 1000:.0f} ms (bulk: one of "
        f"{bulk['seconds'] * 1000:.0f} ms)"
    )
    for ok, target, value in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {target:36}{value}")
    for line in wrong:
        print(f"WRONG {line}")


if __name__ == "__main__":
    sys.exit(main())
