"""Measures what reading a GeoIP database into memory costs against memory-mapping it."""

# Usage: python bench/geoip_memory.py [--networks 400000] [--json]
#
# Builds, once, a country mmdb of N networks (default 400,000 IPv4 /24s, about the size of a
# GeoLite2-Country file) with mmdb-writer, cached under bench/out/. Then, for each reader mode,
# in a fresh child process, it opens the file through auditor.probes.geo.MmdbGeoLocator (which
# reads it into memory), or through geoip2 memory-mapped (pure Python, MODE_MMAP, and the C
# extension, MODE_MMAP_EXT, which was the default before), looks up 20,000 addresses, and prints
# the file size, the resident memory added (RSS after minus RSS before opening, from
# /proc/self/status) and the lookups per second. The memory-mapped figure counts only the pages
# touched; the in-memory one holds the whole file in the process's own memory.

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "bench" / "out"

_CHILD = r"""
import ipaddress, json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0

import geoip2.database, maxminddb
from auditor.probes.geo import MmdbGeoLocator
path, mode = sys.argv[1], sys.argv[2]
addresses = [str(ipaddress.IPv4Address(0x0A000000 + i * 4093)) for i in range(20000)]
before = rss()
if mode == "memory":
    locator = MmdbGeoLocator(Path(path), cache_size=0)
    lookup = locator.locate
else:
    chosen = maxminddb.MODE_MMAP_EXT if mode == "mmap-ext" else maxminddb.MODE_MMAP
    reader = geoip2.database.Reader(path, mode=chosen)
    def lookup(address):
        try:
            return reader.country(address)
        except Exception:
            return None
started = time.perf_counter()
for address in addresses:
    lookup(address)
seconds = time.perf_counter() - started
print(json.dumps({"rss_added": rss() - before, "lookups_per_second": len(addresses) / seconds}))
"""


def build(networks: int) -> Path:
    from tests.mmdb import build_country_db

    path = OUT / f"country-{networks}.mmdb"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        countries = ["DE", "FR", "US", "NL", "IE", "GB", "JP", "BR", "CA", "SE"]
        mapping = {
            f"{10 + i // 65536}.{i // 256 % 256}.{i % 256}.0/24": countries[i % len(countries)]
            for i in range(networks)
        }
        build_country_db(path, mapping)
    return path


def measure(path: Path, mode: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), mode, str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--networks", type=int, default=400_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    path = build(args.networks)
    size = path.stat().st_size
    result = {
        "file_bytes": size,
        "memory": measure(path, "memory"),
        "mmap": measure(path, "mmap"),
        "mmap-ext": measure(path, "mmap-ext"),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"mmdb file: {size / 2**20:.1f} MiB, {args.networks} networks")
    for mode in ("memory", "mmap", "mmap-ext"):
        figures = result[mode]
        print(
            f"  {mode:8}  RSS added {figures['rss_added'] / 2**20:6.1f} MiB"
            f"  {figures['lookups_per_second']:9.0f} lookups/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
