"""Benchmarks the daemon's audit job over ten cycles: memory growth, store writes, /metrics scrapes."""

# Usage: python bench/daemon.py [--integrations 5000] [--cycles 10] [--scrapes 30] [--json]
#                               [--keep DIR]
#
# Generates the same synthetic world as bench/audit.py (N integrations, 3 endpoints each, GeoIP
# and IP-range data), serves its zone with Knot DNS on loopback (bench/loopback_dns.py), and
# builds the daemon in this process exactly as `gdpr-auditor run` does (config, policies,
# inventory, resolver, geolocator, a SQLite state store, the metrics endpoint on loopback). It
# then runs the daemon's audit job through its job runner `--cycles` times back to back, rather
# than waiting on the scheduler, and prints:
#   - the process's RSS after cycle 2 and after the last cycle, and the growth between them;
#   - per cycle: the audit's wall time and the time spent writing to the store (begin_run,
#     finish_run, expire_waivers, prune_observations);
#   - the time to scrape /metrics over HTTP from another process (median of --scrapes, gzip
#     accepted as Prometheus does), in the OpenMetrics format Prometheus asks for by default and
#     in the classic text format, against the bare prometheus-client exposition (its own
#     start_http_server and one labelled Gauge) of the same number of series, scraped the same
#     way in the same run.
#   - the scrape latency while an audit runs: from the second cycle on, another process scrapes
#     /metrics (OpenMetrics, gzip) every 50 ms for as long as the cycle lasts; median and p99.
#     One scrape before the first cycle stands for Prometheus's first scrape after the start.
# The process runs on the allocator `gdpr-auditor run` runs on (`auditor/launch.py`: it executes
# itself again with PYTHONMALLOC=malloc unless PYTHONMALLOC is set; set it to compare).
# The endpoint serves the daemon's own exposition object, as `gdpr-auditor run` does (the one
# the audit job prerenders after each store read), never a second one of the bench's making.
# Targets: RSS growth under 5%, RSS at most 400 MB, idle scrape median under 100 ms, scrape p99
# during an audit under 100 ms. Exit status: 0 every
# target met, 1 a target missed, 3 the benchmark could not run, 130 interrupted.

from __future__ import annotations

import argparse
import gc
import gzip
import http.client
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The synthetic world and Knot DNS come from the other benchmark's modules, so both measure the
# same thing; `audit` here is bench/audit.py, not auditor.transfers.audit.
from audit import _interrupt, generate, log, write_config, write_geodata, write_inventory
from loopback_dns import DnsServerError, KnotServer, knot_version, zone_text

TARGET_GROWTH = 0.05
TARGET_RSS_MB = 400.0
TARGET_SCRAPE_MS = 100.0
STORE_WRITES = ("begin_run", "finish_run", "fail_run", "expire_waivers", "prune_observations")


class BenchError(Exception):
    """The benchmark could not run."""


@dataclass(slots=True)
class Cycle:
    number: int
    seconds: float
    store_seconds: float
    rss_mb: float
    findings: int
    ok: bool


@dataclass(slots=True)
class TimedStore:
    """Wraps the state store and adds up the time its write calls take."""

    inner: Any
    seconds: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in STORE_WRITES:
            return attribute

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return attribute(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls[name] = self.calls.get(name, 0) + 1

        return timed


def rss_mb() -> float:
    """This process's resident set now (not its peak), in 10^6 bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise BenchError("cannot read VmRSS from /proc/self/status")


FORMATS = {
    # What Prometheus 2.x asks for by default: OpenMetrics first, which prometheus-client honours.
    "openmetrics": "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    # The classic text format, which Prometheus gets when told `scrape_protocols: [PrometheusText0.0.4]`.
    "text": "text/plain;version=0.0.4",
}


def scrape_times(port: int, scrapes: int, accept: str) -> tuple[list[float], int, int]:
    """Scrape /metrics from a separate process, as Prometheus would, `scrapes` times.

    A client thread in this process would compete with the server for the GIL and make both
    endpoints look slower than they are. Returns the times in seconds, the uncompressed body
    size and the number of samples in it.
    """
    command = [sys.executable, __file__, "--scrape-worker", str(port), "--scrapes", str(scrapes)]
    command += ["--accept", accept]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"scraping port {port} failed: {done.stderr.strip()[-500:]}")
    doc = json.loads(done.stdout)
    return doc["times"], doc["bytes"], doc["samples"]


def scrape_worker(port: int, scrapes: int, accept: str) -> int:
    """The scraping process: one new connection per scrape, gzip accepted, body read in full.

    `scrapes` 0: every 50 ms until stdin is closed (while an audit runs)."""
    import select

    times: list[float] = []
    body = b""
    count = 0
    while count < scrapes or scrapes == 0:
        count += 1
        if scrapes == 0 and select.select([sys.stdin], [], [], 0.05)[0]:
            break  # stdin closed: the audit is over
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Accept": accept, "Accept-Encoding": "gzip"}  # Prometheus always asks for gzip
        connection.request("GET", "/metrics", headers=headers)
        response = connection.getresponse()
        raw = response.read()
        encoding = response.getheader("Content-Encoding", "")
        connection.close()
        times.append(time.perf_counter() - started)
        if response.status != 200:
            raise BenchError(f"/metrics on port {port} answered {response.status}")
        body = gzip.decompress(raw) if encoding == "gzip" else raw
    samples = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))
    print(json.dumps({"times": times, "bytes": len(body), "samples": samples}))
    return 0


def start_scraping(port: int) -> subprocess.Popen[str]:
    """Start scraping /metrics every 50 ms from another process, until its stdin is closed."""
    command = [sys.executable, __file__, "--scrape-worker", str(port), "--scrapes", "0"]
    command += ["--accept", FORMATS["openmetrics"]]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def stop_scraping(process: subprocess.Popen[str]) -> list[float]:
    """Stop the scraping process; return its scrape times in seconds."""
    output, _ = process.communicate("", timeout=60)
    if process.returncode != 0:
        raise BenchError("scraping during the audit failed")
    times: list[float] = json.loads(output)["times"]
    return times


def measure_scrapes(port: int, scrapes: int) -> dict[str, dict[str, Any]]:
    """Scrape the daemon and the bare exposition of as many series, in both formats, alternating."""
    figures: dict[str, dict[str, Any]] = {}
    for name, accept in FORMATS.items():
        ours, size, samples = scrape_times(port, scrapes, accept)
        bare_server, stop_bare = bare_exposition(samples)
        try:
            bare, bare_size, bare_samples = scrape_times(
                bare_server.server_address[1], scrapes, accept
            )
        finally:
            stop_bare()
        figures[name] = {
            "samples": samples,
            "bytes": size,
            "median_ms": round(statistics.median(ours) * 1000, 2),
            "max_ms": round(max(ours) * 1000, 2),
            "bare_samples": bare_samples,
            "bare_bytes": bare_size,
            "bare_median_ms": round(statistics.median(bare) * 1000, 2),
            "bare_max_ms": round(max(bare) * 1000, 2),
            "scrapes": scrapes,
        }
    return figures


def bare_exposition(samples: int) -> tuple[Any, Callable[[], None]]:
    """Serve `samples` series of one labelled Gauge with prometheus-client's own HTTP server."""
    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    registry = CollectorRegistry()
    gauge = Gauge(
        "bench_findings_open",
        "Series standing in for the daemon's.",
        ["rule", "severity", "integration"],
        registry=registry,
    )
    for number in range(samples):
        gauge.labels("transfer-unsafeguarded", "critical", f"vendor{number}").set(number % 7)
    server, thread = start_http_server(0, "127.0.0.1", registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return server, stop


def build_daemon(work: Path, config_path: Path) -> tuple[Any, TimedStore, Any]:
    """The daemon as `gdpr-auditor run` builds it, without its scheduler: (daemon, store, server)."""
    from auditor.service.daemon import Daemon
    from auditor.service.generation import load_generation
    from auditor.service.httpserver import MetricsServer
    from auditor.service.leader import SingleReplica
    from auditor.service.log import configure_logging
    from auditor.service.sdnotify import Notifier
    from auditor.store import StateStore

    configure_logging("warning", "json")
    generation = load_generation(config_path)
    store = TimedStore(StateStore.open(f"sqlite:///{work / 'state.db'}"))
    daemon = Daemon(config_path, generation, store, SingleReplica(), Notifier({}))  # type: ignore[arg-type]
    daemon.refresh_snapshot()
    # The daemon's own exposition, which its audit job prerenders after each store read.
    server = MetricsServer("127.0.0.1", 0, daemon.exposition.render, daemon.health)
    server.start()
    schedule = generation.config.jobs["audit"]
    daemon.runner.add("audit", daemon.audit, schedule.interval_seconds)
    return daemon, store, server


def bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    started = time.perf_counter()
    world = generate(args.integrations)
    write_inventory(work / "inventory", world)
    write_geodata(work)
    zone = zone_text(".", world.records)
    hostnames, records = len(world.hostnames), len(world.records)
    del world
    log(
        f"generated {args.integrations} integrations, {hostnames} hostnames, {records} records "
        f"in {time.perf_counter() - started:.1f} s"
    )
    cycles: list[Cycle] = []
    during: list[float] = []  # scrape times while an audit runs
    with KnotServer({".": zone}) as knot:
        del zone
        config_path = write_config(work, knot.address, 64)
        config = json.loads(config_path.read_text())
        config["database"] = {"url": "sqlite:///state.db"}
        config["jobs"] = {"audit": {"interval": "PT1H"}}
        config_path.write_text(json.dumps(config, indent=2))
        daemon, store, server = build_daemon(work, config_path)
        # Prometheus scrapes a daemon from its start: its first scrape, of the empty store's
        # results, tells the exposition which format to render ahead after each store read.
        scrape_times(server.port, 1, FORMATS["openmetrics"])
        gc.collect()
        try:
            for number in range(1, args.cycles + 1):
                store.seconds = 0.0
                failures_before = daemon.runner.health()[0].failures
                scraper = start_scraping(server.port) if number >= 2 else None
                began = time.perf_counter()
                daemon.runner.run("audit")
                seconds = time.perf_counter() - began
                if scraper is not None:
                    during += stop_scraping(scraper)
                job = daemon.runner.health()[0]
                cycle = Cycle(
                    number=number,
                    seconds=seconds,
                    store_seconds=store.seconds,
                    rss_mb=rss_mb(),
                    findings=sum(daemon.snapshot().open_findings.values()),
                    ok=job.failures == failures_before,
                )
                cycles.append(cycle)
                log(
                    f"cycle {number}: {seconds:.2f} s, store writes {store.seconds:.2f} s, "
                    f"RSS {cycle.rss_mb:.1f} MB, {cycle.findings} open findings"
                    + ("" if cycle.ok else "  (the job FAILED: see the log above)")
                )
            scrapes = measure_scrapes(server.port, args.scrapes)
        finally:
            server.stop()
            store.inner.close()
        knot_text = f"Knot DNS {knot_version()}"
    return {
        "integrations": args.integrations,
        "hostnames": hostnames,
        "dns": knot_text,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cycles": [
            {
                "cycle": c.number,
                "seconds": round(c.seconds, 3),
                "store_write_seconds": round(c.store_seconds, 3),
                "rss_mb": round(c.rss_mb, 1),
                "open_findings": c.findings,
                "ok": c.ok,
            }
            for c in cycles
        ],
        "scrape": scrapes,
        "scrape_during_audit": {
            "scrapes": len(during),
            "median_ms": round(statistics.median(during) * 1000, 2) if during else None,
            "p99_ms": round(_percentile(during, 0.99) * 1000, 2) if during else None,
            "max_ms": round(max(during) * 1000, 2) if during else None,
        },
    }


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def targets(doc: dict[str, Any]) -> list[tuple[str, bool, str]]:
    cycles = doc["cycles"]
    early = cycles[min(1, len(cycles) - 1)]["rss_mb"]
    late = cycles[-1]["rss_mb"]
    growth = (late - early) / early
    peak = max(c["rss_mb"] for c in cycles)
    text = doc["scrape"]["text"]["median_ms"]
    openmetrics = doc["scrape"]["openmetrics"]["median_ms"]
    return [
        (f"RSS growth cycle 2 -> {len(cycles)} < 5%", growth < TARGET_GROWTH, f"{growth:+.1%}"),
        (f"RSS <= {TARGET_RSS_MB:.0f} MB", peak <= TARGET_RSS_MB, f"{peak:.1f} MB"),
        (
            f"/metrics scrape (text) < {TARGET_SCRAPE_MS:.0f} ms",
            text < TARGET_SCRAPE_MS,
            f"{text} ms",
        ),
        (
            f"/metrics scrape (OpenMetrics) < {TARGET_SCRAPE_MS:.0f} ms",
            openmetrics < TARGET_SCRAPE_MS,
            f"{openmetrics} ms",
        ),
        (
            f"scrape p99 during an audit < {TARGET_SCRAPE_MS:.0f} ms",
            (doc["scrape_during_audit"]["p99_ms"] or 0) < TARGET_SCRAPE_MS,
            f"{doc['scrape_during_audit']['p99_ms']} ms",
        ),
        ("every cycle succeeded", all(c["ok"] for c in cycles), ""),
    ]


def print_table(doc: dict[str, Any]) -> None:
    cycles = doc["cycles"]
    print(
        f"gdpr-auditor daemon benchmark: {doc['integrations']} integrations, "
        f"{doc['hostnames']} hostnames, {len(cycles)} audit cycles"
    )
    print(f"{doc['dns']} on loopback, Python {doc['python']}, {doc['cpus']} CPUs, SQLite store\n")
    print("cycle   audit s   store writes s   RSS MB   open findings")
    for c in cycles:
        print(
            f"{c['cycle']:>5}{c['seconds']:>10.2f}{c['store_write_seconds']:>17.2f}"
            f"{c['rss_mb']:>9.1f}{c['open_findings']:>16}"
        )
    early = cycles[min(1, len(cycles) - 1)]
    print(
        f"\nRSS after cycle {early['cycle']}: {early['rss_mb']:.1f} MB, "
        f"after cycle {cycles[-1]['cycle']}: {cycles[-1]['rss_mb']:.1f} MB"
    )
    for name, scrape in doc["scrape"].items():
        print(
            f"\n/metrics scrape, {name} format, gzip, median of {scrape['scrapes']} (from another "
            f"process):\n"
            f"  gdpr-auditor            {scrape['median_ms']:>8.2f} ms  (max {scrape['max_ms']:.2f}) "
            f"{scrape['samples']} samples, {scrape['bytes']} bytes\n"
            f"  bare prometheus-client  {scrape['bare_median_ms']:>8.2f} ms  "
            f"(max {scrape['bare_max_ms']:.2f}) {scrape['bare_samples']} samples, "
            f"{scrape['bare_bytes']} bytes\n"
            f"  ratio                   {scrape['median_ms'] / scrape['bare_median_ms']:>8.2f}x"
        )
    during = doc["scrape_during_audit"]
    print(
        f"\n/metrics scrape while an audit runs (OpenMetrics, gzip, every 50 ms from another "
        f"process, cycles 2-{len(cycles)}): {during['scrapes']} scrapes, median "
        f"{during['median_ms']} ms, p99 {during['p99_ms']} ms, max {during['max_ms']} ms"
    )
    print()
    for name, passed, figure in targets(doc):
        print(f"{'PASS' if passed else 'FAIL'}  {name:<42}{figure}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/daemon.py",
        description="Ten audit cycles of the daemon's job: RSS, store write time, scrape time.",
    )
    add = parser.add_argument
    add("--integrations", type=int, default=5000, help="integrations, 3 endpoints each (5000)")
    add("--cycles", type=int, default=10, help="audit cycles, back to back (10)")
    add("--scrapes", type=int, default=30, help="scrapes of each endpoint; the median counts (30)")
    add("--json", action="store_true", help="print the figures as JSON")
    add("--keep", type=Path, metavar="DIR", help="generate into DIR and keep the files")
    add("--scrape-worker", type=int, metavar="PORT", help=argparse.SUPPRESS)  # internal
    add("--accept", default=FORMATS["text"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scrape_worker is not None:
        return args  # the internal scraping process: --scrapes 0 scrapes until stdin closes
    if min(args.integrations, args.scrapes) < 1 or args.cycles < 2:
        parser.error("--integrations and --scrapes must be positive, --cycles at least 2")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.scrape_worker is not None:
        return scrape_worker(args.scrape_worker, args.scrapes, args.accept)
    from auditor.launch import use_c_allocator

    use_c_allocator(True)  # as `gdpr-auditor run` does (the daemon's memory is measured here)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            doc = bench(args, args.keep)
        else:
            with tempfile.TemporaryDirectory(prefix="gdpr-auditor-bench-daemon-") as work:
                doc = bench(args, Path(work))
    except (BenchError, DnsServerError) as exc:
        log(f"bench/daemon.py: {exc}")
        return 3
    except KeyboardInterrupt:
        log("bench/daemon.py: interrupted; the DNS server is stopped")
        return 130
    doc["targets"] = [
        {"name": name, "pass": passed, "figure": figure} for name, passed, figure in targets(doc)
    ]
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)
    return 0 if all(target["pass"] for target in doc["targets"]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
