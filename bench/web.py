"""Benchmark of the web audit against a bare Playwright loop doing the same browser work."""

# Usage: python bench/web.py [--pages 50] [--third-parties 20] [--settle 1.0] [--json]
#
# Serves, on loopback (HTTPS), a site of N pages, each loading T third parties (scripts, images
# and fetches, half of them injected by a tag manager script after load) behind a consent banner
# whose "accept" adds two more; the auditor's DNS server answers for every host with documentation
# addresses a generated GeoIP database places in the US or Germany. Then, in two child processes
# one after the other (alternating which goes first over --repeat rounds):
#
# - web audit: auditor.discovery.web visiting every page in the three consent states (before any
#   choice, after reject, after accept), writing each state's JSON record, screenshot and HAR,
#   then attributing, resolving, locating and judging the third parties;
# - bare Playwright loop: the same browser (same executable, switches and throwaway profile),
#   the same pages and states, a fresh context each with the same HAR and screenshot and the same
#   waits (load, settle, click, settle), and nothing else.
#
# Prints pages per minute (a page is all its states), the ratio of the two, and the peak RSS of
# each Python process and of its browser (the Chromium processes and Playwright's driver), with
# the RSS sampled after each quarter of the pages: memory should stay flat as pages go by.
# Target: the web audit at >= 0.7x the bare loop's rate. Exit status: 0 met, 1 missed.

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SWITCHES = (
    "--host-resolver-rules=MAP * 127.0.0.1, EXCLUDE localhost",
    "--ignore-certificate-errors",
)
BANNER = '<div><button id="reject">Reject</button><button id="accept">Accept</button></div>'


def host(k: int) -> str:
    return f"cdn{k}.vendor{k}.test"


def routes(pages: int, parties: int) -> dict[str, dict[str, Any]]:
    """The site and its third parties (tests.webserver.Reply values)."""
    from tests.webserver import Reply

    half = parties // 2
    direct = "".join(
        f'<img src="https://{host(k)}:PORT/p.gif?page={{n}}">' if k % 2 else
        f'<script src="https://{host(k)}:PORT/lib.js"></script>'
        for k in range(half)
    )  # fmt: skip
    injected = ";".join(
        f'fetch("https://{host(k)}:PORT/collect", {{mode: "no-cors"}})'
        for k in range(half, parties)
    )
    accept = (
        'document.getElementById("accept").onclick = () => {'
        f'new Image().src = "https://{host(parties)}:PORT/a.gif";'
        f'new Image().src = "https://{host(parties + 1)}:PORT/b.gif"; }};'
    )
    site = {
        f"/p{n}": Reply(
            f"<html><head>{direct.format(n=n)}"
            '<script src="https://tags.tagmgr.test:PORT/tm.js"></script></head>'
            f"<body>{BANNER}<p>Page {n}</p>"
            + "".join(f'<a href="/p{m}">page {m}</a> ' for m in range(n + 1, min(n + 4, pages)))
            + f"<script>{accept}</script></body></html>"
        )
        for n in range(pages)
    }
    tags = f"setTimeout(() => {{ {injected} }}, 50);"
    return {
        "www.bench-site.test": site,
        "tags.tagmgr.test": {"/tm.js": Reply(tags, "application/javascript")},
    }


def zone(parties: int) -> str:
    lines = ["$TTL 300", "tags.tagmgr.test. IN A 198.51.100.5"]
    for k in range(parties + 2):
        address = f"198.51.100.{10 + k}" if k % 3 else f"192.0.2.{10 + k}"
        lines.append(f"{host(k)}. IN A {address}")
    return "\n".join(lines) + "\n"


def urls(port: int, pages: int) -> list[str]:
    return [f"https://www.bench-site.test:{port}/p{n}" for n in range(pages)]


def _pss(pid: int) -> int:
    """A process's proportional set size in bytes (shared pages divided among their users, so
    that the browser's processes add up), or its resident set where smaps_rollup is unreadable."""
    try:
        for line in (Path("/proc") / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        pages = int((Path("/proc") / str(pid) / "statm").read_text().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def tree_rss(pid: int) -> int:
    """The memory, in bytes, of every descendant of `pid` (the browser and Playwright's driver),
    as the sum of their proportional set sizes."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, list(children.get(pid, []))
    while todo:
        child = todo.pop()
        todo += children.get(child, [])
        total += _pss(child)
    return total


def self_rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Sampler:
    """RSS of this process and of its browser tree, after each page."""

    def __init__(self, pages: int) -> None:
        self.pages = pages
        self.samples: list[tuple[int, int, int]] = []
        self.browser_peak = 0

    def page_done(self, done: int) -> None:
        browser = tree_rss(os.getpid())
        self.browser_peak = max(self.browser_peak, browser)
        self.samples.append((done, self_rss(), browser))

    def quarters(self) -> list[tuple[int, float, float]]:
        marks = {max(1, round(self.pages * q / 4)) for q in (1, 2, 3, 4)}
        return [(n, own / 1e6, browser / 1e6) for n, own, browser in self.samples if n in marks]


# -- the two sides, each run in a child process ----------------------------------------------------


def side_auditor(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from auditor.core.policies import load_policies
    from auditor.discovery.catalogue import load_catalogue
    from auditor.discovery.web.audit import judge_websites, visit_websites
    from auditor.discovery.web.config import SiteSettings, WebsiteSettings
    from auditor.discovery.web.parties import Attribution
    from auditor.probes.browser import BrowserSettings, Chromium
    from auditor.probes.dns import DnsResolver
    from auditor.probes.geo import MmdbGeoLocator

    sampler = Sampler(args.pages)
    settings = WebsiteSettings(
        BrowserSettings(args=SWITCHES, settle=args.settle, timeout=30),
        (
            SiteSettings(
                "bench",
                tuple(urls(args.port, args.pages)),
                max_pages=args.pages,
                reject="#reject",
                accept="#accept",
            ),
        ),
    )
    policies = load_policies()
    attribution = Attribution(load_catalogue(), [])

    def clock() -> datetime:
        return datetime.now(UTC)

    started = time.perf_counter()
    with Chromium(settings.browser, clock) as chromium:
        browser = _Counting(chromium, len(settings.sites[0].states), sampler)
        visited = visit_websites(settings, attribution, browser=browser, root=work, clock=clock)
    resolver = DnsResolver([args.dns], timeout=2.0)
    locator = MmdbGeoLocator(country_db=Path(args.country_db), asn_db=None, ip_ranges=None,
                             region_country=policies.region_country)  # fmt: skip
    audit = judge_websites(
        visited, attribution, policies=policies, resolver=resolver, locator=locator,
        as_of=date(2026, 11, 22), clock=clock, root=work,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "pages": sum(len(v.pages) for v in audit.visits),
        "failed": len(audit.failed_probes),
        "findings": len(audit.findings),
        "third_parties": len(audit.parties),
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "browser_peak": sampler.browser_peak,
        "quarters": sampler.quarters(),
    }


class _Counting:
    """The browser, counting pages (all their states) for the memory samples."""

    def __init__(self, inner: Any, states: int, sampler: Sampler) -> None:
        self.inner, self.states, self.sampler, self.captures = inner, states, sampler, 0

    def capture(self, *args: Any, **kwargs: Any) -> Any:
        result = self.inner.capture(*args, **kwargs)
        self.captures += 1
        if self.captures % self.states == 0:
            self.sampler.page_done(self.captures // self.states)
        return result


def side_bare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from playwright.sync_api import Error, sync_playwright

    from auditor.probes.browser import PREFERENCES, find_executable
    from auditor.probes.browser import SWITCHES as OWN

    sampler = Sampler(args.pages)
    profile = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    (profile / "Default").mkdir()
    (profile / "Default" / "Preferences").write_text(json.dumps(PREFERENCES))
    started = time.perf_counter()
    with sync_playwright() as playwright:
        persistent = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(find_executable(None)), headless=True,
            args=[*OWN, *SWITCHES],
        )  # fmt: skip
        browser = persistent.browser
        assert browser is not None
        for n, url in enumerate(urls(args.port, args.pages), start=1):
            for state, selector in (("before", None), ("reject", "#reject"), ("accept", "#accept")):
                stem = work / f"p{n}-{state}"
                context = browser.new_context(record_har_path=str(stem.with_suffix(".har")),
                                              record_har_content="omit",
                                              viewport={"width": 1280, "height": 800})  # fmt: skip
                page = context.new_page()
                page.goto(url, wait_until="load", timeout=30_000)
                page.wait_for_timeout(args.settle * 1000)
                if selector is not None:
                    page.click(selector, timeout=10_000)
                    page.wait_for_timeout(args.settle * 1000)
                with contextlib.suppress(Error):
                    page.screenshot(path=str(stem.with_suffix(".png")), timeout=10_000)
                context.close()
            sampler.page_done(n)
        persistent.close()
    return {
        "seconds": time.perf_counter() - started,
        "pages": args.pages,
        "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "browser_peak": sampler.browser_peak,
        "quarters": sampler.quarters(),
    }


# -- the parent: servers, children, figures ----------------------------------------------------------


def child(
    side: str, args: argparse.Namespace, port: int, dns: str, country_db: Path
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--side", side, "--port", str(port), "--dns", dns,
               "--country-db", str(country_db), "--pages", str(args.pages),
               "--third-parties", str(args.third_parties), "--settle", str(args.settle)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--third-parties", type=int, default=20)
    parser.add_argument("--settle", type=float, default=1.0, help="seconds (the default is 3)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--side", choices=["auditor", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dns", help=argparse.SUPPRESS)
    parser.add_argument("--country-db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side is not None:
        with tempfile.TemporaryDirectory(prefix=f"bench-web-{args.side}-") as work:
            run = side_auditor if args.side == "auditor" else side_bare
            print(json.dumps(run(args, Path(work))))
        return 0

    from tests.dnsserver import LoopbackDnsServer
    from tests.mmdb import EXAMPLE_COUNTRIES, build_country_db
    from tests.webserver import LoopbackSites

    results: dict[str, list[dict[str, Any]]] = {"auditor": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        country_db = build_country_db(Path(tmp) / "country.mmdb", EXAMPLE_COUNTRIES)
        served = routes(args.pages, args.third_parties)
        with (
            LoopbackSites(served, Path(tmp)) as sites,
            LoopbackDnsServer(zone(args.third_parties)) as dns,
        ):
            for round_ in range(args.repeat):
                order = ("auditor", "bare") if round_ % 2 == 0 else ("bare", "auditor")
                for side in order:
                    print(f"round {round_ + 1}: {side} ...", file=sys.stderr, flush=True)
                    results[side].append(child(side, args, sites.port, dns.address, country_db))
    return report(args, results)


def report(args: argparse.Namespace, results: dict[str, list[dict[str, Any]]]) -> int:
    best = {side: min(runs, key=lambda r: r["seconds"]) for side, runs in results.items()}
    rate = {side: 60 * r["pages"] / r["seconds"] for side, r in best.items()}
    ratio = rate["auditor"] / rate["bare"]
    if args.json:
        print(json.dumps({"results": results, "pages_per_minute": rate, "ratio": ratio}, indent=2))
    else:
        print(f"web audit benchmark: {args.pages} pages x 3 consent states, "
              f"{args.third_parties} third parties per page, settle {args.settle:g} s, "
              f"best of {args.repeat}; {os.cpu_count()} CPUs\n")  # fmt: skip
        print(f"{'':22}{'pages/min':>10}{'seconds':>10}{'peak RSS MB':>13}{'browser PSS MB':>16}")
        for side, label in (("auditor", "web audit"), ("bare", "bare Playwright loop")):
            r = best[side]
            print(f"{label:22}{rate[side]:10.1f}{r['seconds']:10.1f}"
                  f"{r['peak_rss'] / 1e6:13.1f}{r['browser_peak'] / 1e6:16.1f}")  # fmt: skip
        audit = best["auditor"]
        print(f"\nweb audit: {audit['third_parties']} third parties, {audit['findings']} findings, "
              f"{audit['failed']} failed probes")  # fmt: skip
        for side in ("auditor", "bare"):
            marks = ", ".join(
                f"{n}: {own:.0f}/{browser:.0f}" for n, own, browser in best[side]["quarters"]
            )
            print(f"RSS/PSS MB (python/browser) after N pages, {side}: {marks}")
        print(f"\nratio web audit / bare loop: {ratio:.2f}x  "
              f"{'PASS' if ratio >= 0.7 else 'FAIL'} (target >= 0.7x)")  # fmt: skip
    return 0 if ratio >= 0.7 else 1


if __name__ == "__main__":
    sys.exit(main())
