"""The physical limit for bench/audit.py: the same names resolved by a C resolver, adnshost.

# Usage (as bench/audit.py runs it, timed as its own process):
#   python bench/adns_baseline.py HOSTNAMES_FILE NAMESERVER_ADDRESS [--window 128]
#
# adnshost (Debian's adns-tools, GNU adns) asks A and AAAA of every name, as the check does, with
# `--window` queries in flight: it reads its queries from a pipe, and this script writes the next
# one each time an answer comes back, so the server is never asked more at once than a real
# client would ask. adns cannot be told a port: the nameserver must listen on port 53 (which is
# why bench/audit.py serves the zone on a 127.x.y.z address at port 53 when it may bind there).
# Prints one JSON object: the outcomes per name (ok, nxdomain, no-answer, error) and the
# addresses received, in the bare dnspython loop's format, so both are checked the same way.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# adns's status abbreviations (the fifth field of an answer line) as the bench names outcomes.
# adns refuses a CNAME that points at another CNAME ("prohibitedcname": RFC 1034 advises against
# chains) once the answer is in; that answer carries the whole chain to the addresses, as the
# check reads it, so for what this baseline measures, the server's answers, it is a resolved name.
_OUTCOMES = {"ok": "ok", "prohibitedcname": "ok", "nxdomain": "nxdomain", "nodata": "no-answer"}


def find_adnshost() -> str | None:
    return shutil.which("adnshost")


def adns_version() -> str:
    """adnshost's version line, or "" when it is not installed."""
    path = find_adnshost()
    if path is None:
        return ""
    result = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    return (
        (result.stdout or result.stderr).strip().splitlines()[0] if result.returncode == 0 else ""
    )


def resolve(names: Sequence[str], nameserver: str, window: int) -> dict[str, Any]:
    """Resolve A and AAAA of every name through adnshost; at most `window` queries in flight."""
    path = find_adnshost()
    if path is None:
        raise SystemExit("adnshost not found: apt-get install --no-install-recommends adns-tools")
    command = [path, "--config", f"nameserver {nameserver}", "--asynch", "--pipe", "-Fa", "-Vq"]
    # Each query is two lines ("-ta", then the name): options in the pipe hold until changed.
    queries = [f"-t{kind}\n{name}\n" for name in names for kind in ("a", "aaaa")]
    results: list[list[str]] = [[] for _ in names]  # per name: the outcome of each query
    addresses = 0
    start = time.perf_counter()
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1 << 16
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        sent = min(window, len(queries))
        process.stdin.write("".join(queries[:sent]))
        process.stdin.flush()
        for _ in range(len(queries)):
            header = process.stdout.readline().split(" ", 5)
            if len(header) < 5:
                raise SystemExit(f"adnshost stopped answering: {header!r}")
            query_id, records = int(header[0]), int(header[1])
            for _ in range(records):
                process.stdout.readline()
            addresses += records
            results[query_id // 2].append(_OUTCOMES.get(header[4], "error"))
            if sent < len(queries):
                process.stdin.write(queries[sent])
                process.stdin.flush()
                sent += 1
        process.stdin.close()
    seconds = time.perf_counter() - start
    outcomes: Counter[str] = Counter()
    for both in results:
        failures = [outcome for outcome in both if outcome != "ok"]
        ok = len(failures) < len(both)
        outcomes["ok" if ok else "error" if "error" in failures else failures[0]] += 1
    return {
        "loop_seconds": seconds,
        "addresses": addresses,
        "outcomes": dict(sorted(outcomes.items())),
    }


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench/adns_baseline.py", description=__doc__)
    parser.add_argument("names", type=Path, help="a file of hostnames, one per line")
    parser.add_argument("nameserver", help="an IP address; adns asks it at port 53")
    parser.add_argument("--window", type=int, default=128, help="queries in flight (128)")
    args = parser.parse_args(argv)
    names = args.names.read_text().split()
    print(json.dumps(resolve(names, args.nameserver, args.window)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
