"""Benchmark of the vendor catalogue: loading it per check, and matching hosts against it."""

# Usage: python bench/catalogue.py [--loads 20] [--hosts 20000]
#
# Times load_catalogue() as every check calls it (the file parsed once per version, then
# reused) against parsing and validating the file afresh each time (the baseline: what every
# check paid before), in the same run; and times Catalogue.by_host over a mix of vendor and
# unknown hostnames against a bare scan of every vendor's every pattern (the matching the
# catalogue used to do). Prints the figures and both ratios; targets: a reused load under 50 ms,
# and the indexed match at least 10 times faster than the scan. Exit status: 0 targets met,
# 1 missed.

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auditor.discovery import catalogue as module
from auditor.discovery.catalogue import Catalogue, Vendor, load_catalogue, under


def timed(action: object, repeat: int) -> float:
    """The median seconds of `repeat` calls of `action`."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()  # type: ignore[operator]
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def hosts(catalogue: Catalogue, count: int) -> list[str]:
    """Hostnames below vendors' patterns (two thirds) and unknown ones (one third)."""
    rng = random.Random(7)
    patterns = [p for v in catalogue.vendors.values() for p in (*v.domains, *v.cname)]
    names = []
    for n in range(count):
        if n % 3 == 2:
            names.append(f"cdn{n}.shop{n % 97}.example")
        else:
            names.append(f"{rng.choice(['www', 'cdn', 'api', 'eu'])}{n}.{rng.choice(patterns)}")
    return names


def scan(vendors: list[Vendor], host: str) -> Vendor | None:
    """The former matching: every pattern of every vendor, the longest covering one wins."""
    best: tuple[int, Vendor] | None = None
    for vendor in vendors:
        for suffix in (*vendor.domains, *vendor.cname):
            if under(host, suffix) and (best is None or len(suffix) > best[0]):
                best = (len(suffix), vendor)
    return None if best is None else best[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=20_000)
    args = parser.parse_args()

    def fresh() -> None:
        module._parsed.cache_clear()
        load_catalogue()

    baseline_load = timed(fresh, args.loads)
    load_catalogue()
    reused_load = timed(load_catalogue, args.loads)
    catalogue = load_catalogue()
    names = hosts(catalogue, args.hosts)
    vendors = list(catalogue.vendors.values())
    indexed = timed(lambda: [catalogue.by_host(name) for name in names], 3)
    scanned = timed(lambda: [scan(vendors, name) for name in names], 1)
    assert [catalogue.by_host(n) for n in names[:500]] == [scan(vendors, n) for n in names[:500]]

    print(f"catalogue: {len(vendors)} vendors")
    print(f"load, parsed afresh (baseline): {baseline_load * 1000:8.2f} ms")
    print(f"load, reused per check:         {reused_load * 1000:8.2f} ms "
          f"(ratio {baseline_load / reused_load:.0f}x; target < 50 ms)")  # fmt: skip
    print(f"by_host, indexed: {args.hosts / indexed:10.0f} hosts/s")
    print(f"by_host, scan:    {args.hosts / scanned:10.0f} hosts/s (baseline)")
    ratio = scanned / indexed
    met = reused_load < 0.050 and ratio >= 10
    print(f"ratio {ratio:.1f} (target >= 10): {'PASS' if met else 'FAIL'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
