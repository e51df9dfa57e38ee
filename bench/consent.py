"""Benchmarks consent coverage on PostgreSQL against hand-written SQL for the same counts, same run."""

# Usage: python bench/consent.py [--url URL] [--schema NAME] [--subjects 1000000] [--repeat 3]
#                                [--chunk 10000] [--text-keys] [--reuse] [--keep] [--json]
#
# Loads, into a schema of its own (--schema, default gdpr_bench_consent) on the PostgreSQL
# server named by --url (default: the GDPR_AUDITOR_BENCH_PG or GDPR_AUDITOR_TEST_PG environment
# variable, else postgresql://postgres@127.0.0.1:5432/test), N shared customers (default
# 1,000,000; plus N/10 customers not shared) and N consent rows, with COPY:
#   - 90% of the shared subjects hold a valid consent (2% of all subjects also hold an older,
#     withdrawn one; 1% of the valid consents have a withdrawal dated after the audit date);
#   - 2% withdrew their only consent before the audit date (withdrawn, still shared);
#   - 4% consented to another purpose only, 2% hold a grant dated after the audit date, and 2%
#     have no consent at all: with the withdrawn, 10% missing.
# Subjects are numbered in a shuffled order (fixed seed), so no category is a contiguous range.
#
# The indexes a DPO is told to have (the script prints them too):
#   consents (subject, purpose, granted_at) INCLUDE (withdrawn_at)
#       the subjects with a valid consent in key order, from the index alone (the pushdown's
#       merge join, the merge path's grouped scan), and the anti-join's probe;
#   consents (withdrawn_at) INCLUDE (customer_id, purpose, granted_at)
#           WHERE withdrawn_at IS NOT NULL
#       lists the few withdrawn consents from the index alone, without reading the table;
#   customers: the primary key on the key column.
#
# Then it times, each in a fresh process (best of --repeat, rotating the order of the SQL runs):
#   - coverage (pushdown): auditor.consent.coverage(): shared, missing and withdrawn in one
#     statement, one pass over the shared subjects: each joined to the DISTINCT subjects with a
#     valid consent and to the DISTINCT withdrawn subjects; on PostgreSQL, the keys cut into
#     key ranges (as many as the server runs processes per query: 3 by default) at points
#     taken from the planner's statistics (pg_stats), one UNION ALL branch per range, with
#     SET LOCAL enable_hashjoin = off, min_parallel_table_scan_size and
#     min_parallel_index_scan_size at their maximum, jit = off (a parallel append: each worker
#     merges whole key ranges);
#   - the baseline, hand-written SQL computing the same three counts, in four ways (all
#     printed; the ratio is taken against the fastest of the four, run by run):
#       "one pass, GROUP BY": the shared subjects LEFT JOINed to a GROUP BY of their consents
#         with bool_or(still valid), counted with FILTER, on the server's settings;
#       "one pass, DISTINCT": the pushdown's statement for one key range (all keys), written
#         by hand, with the pushdown's settings and no parallel workers;
#       "one pass, 3 key ranges": the pushdown's statement written by hand, cut at the keys a
#         third and two thirds of the way through the shared subjects, with its settings;
#       "anti-join": two passes over the shared subjects, their count and a NOT EXISTS
#         anti-join for the missing joined to the DISTINCT withdrawn subjects, on the server's
#         settings (the fastest hand-written form before the pushdown became one pass);
#   - for reference only, the NOT EXISTS anti-join counting the missing alone (one count of
#     three: a floor, not a like-for-like baseline);
#   - coverage (merge): the same coverage with the merge path forced on this one server (two
#     connections, both key streams sorted and merged in Python), as subjects per second;
#   - an idle process: everything imported, the data source opened and the mapping bound (the
#     tables reflected), nothing counted: the baseline for memory.
# It prints seconds, subjects per second, peak RSS (VmHWM) of each process, the ratio
# pushdown / hand-written, and PASS/FAIL against the targets: ratio <= 1.15, merge >= 300,000
# subjects/s, peak RSS at most 50 MB above the idle process. A WRONG line says a path returned
# other counts than the data holds. Exit status: 0 every target met, 1 a target missed or a WRONG
# result, 3 the benchmark could not run.

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import resource
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SCHEMA = "gdpr_bench_consent"
PURPOSE = "newsletter-us"
AS_OF = date(2026, 11, 22)
TARGET_RATIO = 1.15
TARGET_RATE = 300_000.0
TARGET_GROWTH_MB = 50.0
SEED = 20261122
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"

INDEXES = (
    (
        "CREATE INDEX consents_subject_purpose ON consents (customer_id, purpose, granted_at)"
        " INCLUDE (withdrawn_at)"
    ),
    (
        "CREATE INDEX consents_withdrawn ON consents (withdrawn_at)"
        " INCLUDE (customer_id, purpose, granted_at) WHERE withdrawn_at IS NOT NULL"
    ),
)

_VALID = """c.customer_id = s.customer_id
      AND c.purpose = %(purpose)s
      AND c.granted_at < %(next_day)s
      AND (c.withdrawn_at IS NULL OR c.withdrawn_at >= %(next_day)s)"""

# One pass over the shared subjects, each joined to the DISTINCT subjects with a valid consent
# and to the DISTINCT withdrawn subjects; {s}, {c} and {w}: conditions on a key range, or TRUE.
_ONE_PASS = """
SELECT count(*) AS shared,
       count(*) FILTER (WHERE v.customer_id IS NULL) AS missing,
       count(*) FILTER (WHERE v.customer_id IS NULL AND w.customer_id IS NOT NULL) AS withdrawn
FROM customers s
LEFT JOIN (SELECT DISTINCT customer_id FROM consents
           WHERE purpose = %(purpose)s AND granted_at < %(next_day)s
             AND (withdrawn_at IS NULL OR withdrawn_at >= %(next_day)s) AND {c}) v
       ON v.customer_id = s.customer_id
LEFT JOIN (SELECT DISTINCT customer_id FROM consents
           WHERE purpose = %(purpose)s AND granted_at < %(next_day)s
             AND withdrawn_at < %(next_day)s AND {w}) w ON w.customer_id = s.customer_id
WHERE s.synced_to_mailchimp AND {s}"""

_RANGES = ("{0} < %(cut1)s", "{0} >= %(cut1)s AND {0} < %(cut2)s", "{0} >= %(cut2)s")
_PIECES = "\nUNION ALL".join(
    _ONE_PASS.format(
        s=r.format("s.customer_id"), c=r.format("customer_id"), w=r.format("customer_id")
    )
    for r in _RANGES
)

# The pushdown's planner settings (auditor.consent.counting), written out by hand.
_MERGE_SETTINGS = (
    "enable_hashjoin = off",
    "min_parallel_table_scan_size = 715827882",
    "min_parallel_index_scan_size = 715827882",
    "jit = off",
)

# The hand-written baselines: the same three counts (shared, missing, withdrawn) as the
# coverage check, as a person writes them by hand for PostgreSQL: (SET LOCAL settings, SQL).
BASELINES: dict[str, tuple[tuple[str, ...], str]] = {
    "one pass, GROUP BY": (
        (),
        """
SELECT count(*),
       count(*) FILTER (WHERE c.valid IS NOT TRUE),
       count(*) FILTER (WHERE NOT c.valid)
FROM customers s
LEFT JOIN (SELECT customer_id, bool_or(withdrawn_at IS NULL OR withdrawn_at >= %(next_day)s) AS valid
           FROM consents
           WHERE purpose = %(purpose)s AND granted_at < %(next_day)s
           GROUP BY customer_id) c ON c.customer_id = s.customer_id
WHERE s.synced_to_mailchimp
""",
    ),
    "one pass, DISTINCT": (
        ("max_parallel_workers_per_gather = 0", *_MERGE_SETTINGS),
        _ONE_PASS.format(s="TRUE", c="TRUE", w="TRUE"),
    ),
    "one pass, 3 key ranges": (
        _MERGE_SETTINGS,
        f"SELECT sum(shared), sum(missing), sum(withdrawn) FROM ({_PIECES}\n) AS pieces",
    ),
    "anti-join": (
        (),
        f"""
SELECT (SELECT count(*) FROM customers WHERE synced_to_mailchimp),
       count(*),
       count(w.customer_id)
FROM customers s
LEFT JOIN (SELECT DISTINCT customer_id FROM consents
           WHERE purpose = %(purpose)s AND granted_at < %(next_day)s
             AND withdrawn_at < %(next_day)s) w ON w.customer_id = s.customer_id
WHERE s.synced_to_mailchimp
  AND NOT EXISTS (SELECT 1 FROM consents c WHERE {_VALID})
""",
    ),
}

# For reference: the missing count alone (a third of the work).
NOT_EXISTS_SQL = f"""
SELECT count(*) FROM customers s
WHERE s.synced_to_mailchimp
  AND NOT EXISTS (SELECT 1 FROM consents c WHERE {_VALID})
"""


@dataclass(frozen=True, slots=True)
class Expected:
    shared: int
    missing: int
    withdrawn: int
    rows: int


# --- loading ---------------------------------------------------------------------------------


def psycopg_url(url: str) -> str:
    """The URL as libpq takes it (no SQLAlchemy driver suffix)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def sqlalchemy_url(url: str, schema: str) -> str:
    """The URL for the auditor's data source, with the benchmark schema on the search path."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def plan(subjects: int) -> tuple[list[tuple[int, str, str, str]], Expected]:
    """The consent rows (subject, purpose, granted, withdrawn as COPY text) and the counts."""
    rng = random.Random(SEED)
    order = list(range(1, subjects + 1))
    rng.shuffle(order)
    cut = [int(subjects * share) for share in (0.90, 0.92, 0.96, 0.98)]
    valid = order[: cut[0]]
    withdrawn = order[cut[0] : cut[1]]
    other = order[cut[1] : cut[2]]
    future = order[cut[2] : cut[3]]  # the rest, 2%, has no consent row at all
    days = [f"{date(2025, 1, 1) + timedelta(days=n)} 12:00:00+00" for n in range(600)]
    rows: list[tuple[int, str, str, str]] = []
    for index, subject in enumerate(valid):
        gone = r"\N" if index % 100 else "2027-03-01 00:00:00+00"  # 1%: withdrawal after D
        rows.append((subject, PURPOSE, days[index % len(days)], gone))
    history = valid[: max(0, subjects - len(rows) - len(withdrawn) - len(other) - len(future))]
    rows += [(s, PURPOSE, "2023-01-01 09:00:00+00", "2023-06-01 09:00:00+00") for s in history]
    rows += [(s, PURPOSE, "2024-02-01 09:00:00+00", "2026-10-01 09:00:00+00") for s in withdrawn]
    rows += [(s, "analytics", "2024-02-01 09:00:00+00", r"\N") for s in other]
    rows += [(s, PURPOSE, "2026-12-01 09:00:00+00", r"\N") for s in future]
    rng.shuffle(rows)
    return rows, Expected(subjects, subjects - len(valid), len(withdrawn), len(rows))


def load(url: str, schema: str, subjects: int, text_keys: bool) -> Expected:
    """Create the schema and its two tables, COPY the rows in, index and analyse them."""
    rows, expected = plan(subjects)
    key_type = "text" if text_keys else "bigint"

    def key(value: int) -> str:
        return key_of(value, text_keys)

    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        connection.execute(f"CREATE SCHEMA {schema}")
        connection.execute(f"SET search_path = {schema}")
        connection.execute(
            f"CREATE TABLE customers (customer_id {key_type} PRIMARY KEY, email text NOT NULL,"
            " synced_to_mailchimp boolean NOT NULL)"
        )
        connection.execute(
            f"CREATE TABLE consents (id bigserial PRIMARY KEY, customer_id {key_type} NOT NULL,"
            " purpose text NOT NULL, granted_at timestamptz NOT NULL, withdrawn_at timestamptz,"
            " notice_version text, method text)"
        )
        with connection.cursor() as cursor:
            with cursor.copy("COPY customers FROM STDIN") as copy:
                buffer = io.StringIO()
                for number in range(1, subjects + subjects // 10 + 1):
                    shared = "t" if number <= subjects else "f"
                    buffer.write(f"{key(number)}\tuser{number}@example.com\t{shared}\n")
                    if number % 100_000 == 0:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
            columns = "customer_id, purpose, granted_at, withdrawn_at, notice_version, method"
            with cursor.copy(f"COPY consents ({columns}) FROM STDIN") as copy:
                buffer = io.StringIO()
                for index, (subject, purpose, granted, withdrawn) in enumerate(rows, 1):
                    buffer.write(
                        f"{key(subject)}\t{purpose}\t{granted}\t{withdrawn}\tv3\tweb-form\n"
                    )
                    if index % 100_000 == 0:
                        copy.write(buffer.getvalue())
                        buffer = io.StringIO()
                copy.write(buffer.getvalue())
        for statement in INDEXES:
            connection.execute(statement)
        connection.execute("VACUUM ANALYZE customers")
        connection.execute("VACUUM ANALYZE consents")
    return expected


def key_of(number: int, text_keys: bool) -> str:
    """The key of subject `number`, as COPY writes it."""
    return f"C{number:09d}" if text_keys else str(number)


def thirds(subjects: int, text_keys: bool) -> list[str]:
    """The keys that cut the shared subjects into three key ranges of a third each: the cut
    points of the hand-written "3 key ranges" baseline."""
    return [key_of(subjects * piece // 3 + 1, text_keys) for piece in (1, 2)]


def loaded(url: str, schema: str, expected: Expected) -> bool:
    """Whether the schema already holds the data set (for --reuse)."""
    try:
        with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
            shared = connection.execute(
                f"SELECT count(*) FROM {schema}.customers WHERE synced_to_mailchimp"
            ).fetchone()
            rows = connection.execute(f"SELECT count(*) FROM {schema}.consents").fetchone()
    except psycopg.Error:
        return False
    return (shared, rows) == ((expected.shared,), (expected.rows,))


def drop(url: str, schema: str) -> None:
    with psycopg.connect(psycopg_url(url), autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


# --- the measured processes ------------------------------------------------------------------


def config_yaml() -> str:
    return textwrap.dedent(
        f"""
        data_sources:
          crm: {{url_env: GDPR_AUDITOR_BENCH_SOURCE}}
        consent:
          mailchimp:
            purpose: {PURPOSE}
            shared:
              source: crm
              table: customers
              key: customer_id
              filter: {{synced_to_mailchimp: true}}
            consents:
              source: crm
              table: consents
              subject: customer_id
              purpose: purpose
              granted_at: granted_at
              withdrawn_at: withdrawn_at
              notice_version: notice_version
              method: method
        """
    )


def child(mode: str, chunk: int) -> dict[str, Any]:
    """Run one measured thing in this process; return its time, result and peak RSS."""
    from sqlalchemy import text

    from auditor.consent.config import parse_consent
    from auditor.consent.coverage import bind_consent, coverage
    from auditor.core.yamlsource import parse_yaml
    from auditor.sources.config import parse_data_sources
    from auditor.sources.datasources import DataSources

    doc = parse_yaml(config_yaml(), "bench.yaml")
    data_sources, _ = parse_data_sources(doc, None)
    consent, _ = parse_consent(doc, data_sources)
    with DataSources(data_sources) as sources:
        bound = bind_consent(consent["mailchimp"], sources)
        result: dict[str, Any] = {}
        started = time.perf_counter()
        if mode == "pushdown":
            result = asdict(coverage(bound, AS_OF))
        elif mode == "merge":
            result = asdict(coverage(bound, AS_OF, merge=True, chunk_size=chunk))
        elif mode in BASELINES or mode == "not-exists":
            next_day = f"{AS_OF + timedelta(days=1)} 00:00:00+00"
            settings, sql = ((), NOT_EXISTS_SQL) if mode == "not-exists" else BASELINES[mode]
            # The hand-written query goes to the driver as written, as its author would send it.
            with sources["crm"].engine.connect() as connection:
                for setting in settings:
                    connection.exec_driver_sql(f"SET LOCAL {setting}")
                cut1, cut2 = json.loads(os.environ["GDPR_AUDITOR_BENCH_CUTS"])
                parameters = {
                    "purpose": PURPOSE,
                    "next_day": next_day,
                    "cut1": cut1,
                    "cut2": cut2,
                }
                row = connection.exec_driver_sql(sql, parameters).one()
            names = ("missing",) if mode == "not-exists" else ("shared", "missing", "withdrawn")
            result = dict(zip(names, map(int, row), strict=True))
        else:
            with sources["crm"].connect() as connection:
                connection.execute(text("SELECT 1"))
        seconds = time.perf_counter() - started
    result.pop("as_of", None)
    return {"mode": mode, "seconds": seconds, "result": result, "peak_kb": peak_rss_kb()}


def peak_rss_kb() -> int:
    """This process's peak resident set in KiB: VmHWM, which starts afresh at exec (ru_maxrss
    would report the benchmark's own peak, inherited across fork and exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_child(mode: str, url: str, chunk: int, cuts: list[str]) -> dict[str, Any]:
    """Run one measured thing in a fresh process; `url` names the benchmark's schema too."""
    environment = dict(
        os.environ, GDPR_AUDITOR_BENCH_SOURCE=url, GDPR_AUDITOR_BENCH_CUTS=json.dumps(cuts)
    )
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--chunk", str(chunk)],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} process failed:\n{done.stderr.strip()}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


# --- the report ------------------------------------------------------------------------------


def measure(
    url: str, schema: str, repeat: int, chunk: int, cuts: list[str]
) -> dict[str, list[dict[str, Any]]]:
    url = sqlalchemy_url(url, schema)
    sql_modes = ["pushdown", *BASELINES, "not-exists"]
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in ["idle", *sql_modes, "merge"]}
    # The machine's 1-minute load average before each round and at the end, to show the
    # figures' conditions.
    runs["load"] = [{"average": os.getloadavg()[0]}]
    runs["idle"].append(run_child("idle", url, chunk, cuts))
    for index in range(repeat):
        # Rotate which SQL runs first, so that none always finds the cache warmer.
        turn = index % len(sql_modes)
        for mode in sql_modes[turn:] + sql_modes[:turn]:
            runs[mode].append(run_child(mode, url, chunk, cuts))
            print(f"  {mode}: {runs[mode][-1]['seconds']:.3f} s", file=sys.stderr)
        runs["load"].append({"average": os.getloadavg()[0]})
    for _ in range(repeat):
        runs["merge"].append(run_child("merge", url, chunk, cuts))
        print(f"  merge: {runs['merge'][-1]['seconds']:.3f} s", file=sys.stderr)
    runs["load"].append({"average": os.getloadavg()[0]})
    # The baseline of each round: the fastest hand-written formulation of the three counts.
    runs["baseline"] = [
        min(pair, key=lambda run: float(run["seconds"]))
        for pair in zip(*(runs[name] for name in BASELINES), strict=True)
    ]
    return runs


def report(
    runs: dict[str, list[dict[str, Any]]], expected: Expected, args: argparse.Namespace
) -> tuple[int, dict[str, Any]]:
    def best(mode: str) -> float:
        return min(float(run["seconds"]) for run in runs[mode])

    def peak_mb(mode: str) -> float:
        return max(int(run["peak_kb"]) for run in runs[mode]) * 1024 / 1e6

    idle = peak_mb("idle")
    shared = expected.shared
    rows = {
        "pushdown": ("coverage (pushdown)", best("pushdown")),
        **{name: (f"hand-written, {name}", best(name)) for name in BASELINES},
        "not-exists": ("NOT EXISTS (missing only)", best("not-exists")),
        "merge": ("coverage (merge)", best("merge")),
    }
    ratio = rows["pushdown"][1] / best("baseline")
    rate = shared / rows["merge"][1]
    growth = {mode: peak_mb(mode) - idle for mode in ("pushdown", "merge")}
    server = server_version(args.url)
    print(
        f"consent coverage benchmark: {shared} shared subjects, {expected.rows} consent rows "
        f"({expected.missing / shared:.1%} missing, {expected.withdrawn / shared:.1%} withdrawn), "
        f"{'text' if args.text_keys else 'bigint'} keys, best of {args.repeat}"
    )
    loads = [float(load["average"]) for load in runs["load"]]
    print(
        f"{server}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"merge chunk {args.chunk} rows, load average {min(loads):.1f} to {max(loads):.1f}"
    )
    print()
    print(f"{'':36}{'seconds':>9}{'subjects/s':>13}{'peak RSS MB':>13}{'growth MB':>11}")
    print(f"{'idle process':36}{'-':>9}{'-':>13}{idle:>13.1f}{'-':>11}")
    for mode, (label, seconds) in rows.items():
        growth_text = f"{growth[mode]:+.1f}" if mode in growth else "-"
        print(
            f"{label:36}{seconds:>9.3f}{shared / seconds:>13,.0f}{peak_mb(mode):>13.1f}"
            f"{growth_text:>11}"
        )
    print()
    # Each pair ran back to back: their ratios show the spread a loaded machine adds.
    pairs = sorted(
        float(a["seconds"]) / float(b["seconds"])
        for a, b in zip(runs["pushdown"], runs["baseline"], strict=True)
    )
    print(
        f"ratio pushdown/hand-written (the fastest formulation): {ratio:.2f}x (best against best); run by run: "
        f"median {pairs[len(pairs) // 2]:.2f}x, from {pairs[0]:.2f}x to {pairs[-1]:.2f}x"
    )
    print(
        "all runs (s): "
        + ", ".join(
            f"{mode} {[round(float(r['seconds']), 3) for r in runs[mode]]}" for mode in rows
        )
    )
    status = 0
    for mode in ("pushdown", "merge", *BASELINES):
        for run in runs[mode]:
            got = {key: run["result"][key] for key in ("shared", "missing", "withdrawn")}
            want = {"shared": shared, "missing": expected.missing, "withdrawn": expected.withdrawn}
            if got != want:
                print(f"WRONG {mode} counted {got}, the data holds {want}")
                status = 1
    for run in runs["not-exists"]:
        if run["result"]["missing"] != expected.missing:
            print(f"WRONG hand-written query counted {run['result']['missing']} missing")
            status = 1
    checks = [
        (ratio <= TARGET_RATIO, f"pushdown <= {TARGET_RATIO}x hand-written", f"{ratio:.2f}x"),
        (rate >= TARGET_RATE, f"merge >= {TARGET_RATE:,.0f} subjects/s", f"{rate:,.0f}/s"),
        (
            max(growth.values()) < TARGET_GROWTH_MB,
            f"RSS growth < {TARGET_GROWTH_MB:.0f} MB over idle",
            f"pushdown {growth['pushdown']:+.1f} MB, merge {growth['merge']:+.1f} MB",
        ),
    ]
    for ok, label, value in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label:38}{value}")
        status = status or (0 if ok else 1)
    print()
    print("indexes used (what a DPO is told to have):")
    for statement in INDEXES:
        print(f"  {statement};")
    summary = {
        "shared": shared,
        "consent_rows": expected.rows,
        "seconds": {mode: seconds for mode, (_, seconds) in rows.items()},
        "ratio": ratio,
        "pair_ratios": pairs,
        "merge_subjects_per_second": rate,
        "peak_rss_mb": {mode: peak_mb(mode) for mode in runs if mode != "load"},
        "growth_mb": growth,
        "server": server,
        "load_average": loads,
    }
    return status, summary


def server_version(url: str) -> str:
    with psycopg.connect(psycopg_url(url)) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return f"PostgreSQL {row[0].split()[0] if row else '?'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    default = os.environ.get(
        "GDPR_AUDITOR_BENCH_PG", os.environ.get("GDPR_AUDITOR_TEST_PG", DEFAULT_URL)
    )
    parser.add_argument("--url", default=default, help="the PostgreSQL server (libpq URL)")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help="the scratch schema's name")
    parser.add_argument("--subjects", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=10_000, help="merge chunk size (rows)")
    parser.add_argument("--text-keys", action="store_true", help="text keys instead of bigint")
    parser.add_argument("--reuse", action="store_true", help="keep a schema already loaded")
    parser.add_argument("--keep", action="store_true", help="do not drop the schema afterwards")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.chunk)))
        return 0
    try:
        _, expected = plan(args.subjects)
        if not args.schema.isidentifier():
            raise ValueError(f"not a plain schema name: {args.schema!r}")
        if args.reuse and loaded(args.url, args.schema, expected):
            print("reusing the loaded schema", file=sys.stderr)
        else:
            started = time.perf_counter()
            expected = load(args.url, args.schema, args.subjects, args.text_keys)
            print(f"loaded in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        cuts = thirds(args.subjects, args.text_keys)
        runs = measure(args.url, args.schema, args.repeat, args.chunk, cuts)
    except KeyboardInterrupt:
        return 130
    except (psycopg.Error, RuntimeError, OSError, ValueError) as exc:
        print(f"benchmark could not run: {exc}", file=sys.stderr)
        return 3
    finally:
        if not args.keep and not args.child:
            try:
                drop(args.url, args.schema)
            except psycopg.Error as exc:
                print(f"could not drop the schema {args.schema}: {exc}", file=sys.stderr)
    status, summary = report(runs, expected, args)
    if args.json:
        print(json.dumps(summary, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
