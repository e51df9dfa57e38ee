"""Benchmarks `gdpr-auditor check` on a synthetic inventory against a bare dnspython loop, same run."""

# Usage: python bench/audit.py [--integrations 5000] [--repeat 3] [--concurrency 64] [--json]
#                              [--profile] [--keep DIR]
#
# Generates N integrations with 3 endpoints each, a zone answering every endpoint (CNAME chains of
# 1-2 steps, CDN edges, A and AAAA, a few dead names), GeoIP mmdb files and cloud IP-range files
# for the addresses used, starts Knot DNS on loopback (bench/loopback_dns.py), and times as
# separate processes, alternating:
#   - the full `gdpr-auditor check --format json` (start-up, loading, resolving, locating, rules,
#     output): what a user waits for;
#   - a bare dnspython loop resolving the same hostnames, A and AAAA, with the same concurrency
#     against the same server: what resolving alone costs in plain dnspython.
# It prints hostnames per second and peak RSS of each (best time and highest RSS over --repeat
# runs), their ratio, and PASS/FAIL against the targets. Exit status: 0 every target met, 1 a
# target missed or a run resolved the wrong things, 3 the benchmark could not run.

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Self

from adns_baseline import adns_version, find_adnshost
from loopback_dns import DnsServerError, KnotServer, knot_version, zone_text

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2026-11-22"  # fixed, so that runs on different days apply the same rules
TARGET_RATIO = 0.5  # the check's hostnames/s at least half the bare dnspython loop's
TARGET_SECONDS = {5000: 5.0, 50000: 30.0}  # by inventory size: the whole check, wall time
TARGET_RSS_MB = {50000: 300.0}  # by inventory size: the check's peak RSS
SCALING = (1000, 5000, 20000, 50000)  # the sizes of --scaling
ADNS_WINDOW = 128  # the C resolver's queries in flight: the check's 64 names, A and AAAA each
ENDPOINTS = 3  # per integration
SHARED = 50  # the first integrations are infrastructure that others name as sub-processors
SEED = 20261122

# --- the synthetic world ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Block:
    """Addresses in one place: the index-th /20 of 198.18.0.0/15 (RFC 2544) and /48 of 2001:db8::.

    `place` is what an inventory declares for it, `country` what the GeoIP database says (empty:
    in no database), `ranges` the (provider, region, service) of the cloud range file listing it,
    `weight` how often integrations are hosted there.
    """

    index: int
    place: str
    country: str
    weight: int
    ranges: tuple[str, str, str] | None = None
    asn: tuple[int, str] | None = None

    @property
    def ipv4_network(self) -> str:
        return f"198.{18 + self.index // 16}.{(self.index % 16) * 16}.0/20"

    @property
    def ipv6_network(self) -> str:
        return f"2001:db8:{0x10 + self.index:x}::/48"

    def ipv4(self, rng: random.Random) -> str:
        third = (self.index % 16) * 16 + rng.randrange(16)
        return f"198.{18 + self.index // 16}.{third}.{rng.randrange(1, 255)}"

    def ipv6(self, rng: random.Random) -> str:
        return f"2001:db8:{0x10 + self.index:x}::{rng.randrange(1, 0xFFFF):x}:{rng.randrange(1, 0xFFFF):x}"


_AWS, _GCP = (16509, "AMAZON-02"), (396982, "GOOGLE-CLOUD-PLATFORM")
_SPECS: tuple[tuple[str, str, int, tuple[str, str, str] | None, tuple[int, str] | None], ...] = (
    ("aws:eu-central-1", "DE", 10, ("aws", "eu-central-1", "EC2"), _AWS),
    ("aws:eu-west-1", "IE", 7, ("aws", "eu-west-1", "EC2"), _AWS),
    ("aws:us-east-1", "US", 9, ("aws", "us-east-1", "EC2"), (14618, "AMAZON-AES")),
    ("aws:us-west-2", "US", 4, ("aws", "us-west-2", "EC2"), _AWS),
    ("gcp:europe-west3", "DE", 5, ("gcp", "europe-west3", "Google Cloud"), _GCP),
    ("gcp:europe-west1", "BE", 3, ("gcp", "europe-west1", "Google Cloud"), _GCP),
    ("gcp:us-central1", "US", 4, ("gcp", "us-central1", "Google Cloud"), _GCP),
    ("US", "US", 0, ("aws", "GLOBAL", "CLOUDFRONT"), _AWS),  # CDN edges
    ("US", "US", 0, ("cloudflare", "", ""), (13335, "CLOUDFLARENET")),  # anycast edges
    ("DE", "DE", 7, None, (24940, "Hetzner Online GmbH")),
    ("FR", "FR", 5, None, (16276, "OVH SAS")),
    ("NL", "NL", 4, None, (60781, "LeaseWeb Netherlands B.V.")),
    ("IE", "IE", 3, None, (5466, "Eircom Limited")),
    ("SE", "SE", 2, None, (8473, "Bahnhof AB")),
    ("FI", "FI", 1, None, (790, "Elisa Oyj")),
    ("US", "US", 5, None, (14061, "DIGITALOCEAN-ASN")),
    ("US", "US", 2, None, (63949, "Akamai Connected Cloud")),
    ("GB", "GB", 4, None, (20860, "Iomart Cloud Services Limited")),
    ("CH", "CH", 2, None, (13030, "Init7 (Switzerland) Ltd.")),
    ("CA", "CA", 2, None, (16276, "OVH SAS")),
    ("JP", "JP", 1, None, (2516, "KDDI CORPORATION")),
    ("SG", "SG", 1, None, (38001, "NewMedia Express Pte Ltd")),
    ("AU", "AU", 1, None, (1221, "Telstra Limited")),
    ("IN", "IN", 1, None, (55836, "Reliance Jio Infocomm Limited")),
    ("BR", "BR", 1, None, (28573, "Claro NXT Telecomunicacoes Ltda")),
    ("KR", "KR", 1, None, (4766, "Korea Telecom")),
    ("IL", "IL", 1, None, (8551, "Bezeq International Ltd.")),
    ("CN", "CN", 1, None, (4134, "CHINANET-BACKBONE")),
    ("PL", "PL", 1, None, (5617, "Orange Polska Spolka Akcyjna")),
    ("ES", "ES", 1, None, (3352, "TELEFONICA DE ESPANA")),
    ("IT", "IT", 1, None, (3269, "Telecom Italia S.p.A.")),
    ("US", "", 0, None, None),  # in no database: its addresses cannot be located
)
BLOCKS = tuple(Block(index, *spec) for index, spec in enumerate(_SPECS))
CLOUDFRONT, CLOUDFLARE, UNLOCATED = BLOCKS[7], BLOCKS[8], BLOCKS[31]
EEA = frozenset({"BE", "DE", "ES", "FI", "FR", "IE", "IT", "NL", "PL", "SE"})
# RFC 5737 ranges, mapped by the example GeoIP database: small, so many hostnames share an
# address, as they share a vendor's load balancers.
DOC_PREFIXES = ("192.0.2.", "198.51.100.", "203.0.113.")

PREFIXES = ("api", "app", "eu", "us1", "collect", "cdn", "hooks", "auth", "files", "track", "ws",
            "login", "ingest", "events", "static", "mail", "sync", "graph")  # fmt: skip
SYLLABLES = ("ka", "lo", "mi", "ra", "ve", "no", "ti", "sa", "bel", "dor", "fin", "gra", "hel",
             "jun", "kor", "lux", "mar", "nex", "ox", "pix", "quo", "ryn", "sol", "tav", "zen")  # fmt: skip
CATEGORIES = ("crm", "cdp", "email-marketing", "analytics", "support", "cms", "webshop", "backup",
              "payment", "other")  # fmt: skip
DATA_CATEGORIES = ("contact", "identity", "behavioural", "device", "payment", "communications",
                   "location", "financial")  # fmt: skip


@dataclass(slots=True)
class World:
    """The generated inventory entries and zone records, and what resolving should give."""

    integrations: list[dict[str, Any]] = field(default_factory=list)
    records: list[tuple[str, str, str]] = field(default_factory=list)
    hostnames: list[str] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)  # how many endpoints of each kind

    def add_addresses(self, owner: str, block: Block, rng: random.Random) -> None:
        """Give `owner` 1-4 A records and, often, AAAA records in `block`."""
        for _ in range(rng.choice((1, 1, 2, 2, 3, 4))):
            self.records.append((owner, "A", block.ipv4(rng)))
        if rng.random() < 0.55:
            for _ in range(rng.choice((1, 1, 2))):
                self.records.append((owner, "AAAA", block.ipv6(rng)))


def weighted_block(rng: random.Random) -> Block:
    return rng.choices(BLOCKS, [block.weight for block in BLOCKS])[0]


def add_endpoint(world: World, hostname: str, vendor: str, home: Block, rng: random.Random) -> None:
    """Write one endpoint's records: 40% direct, 30% one CNAME, 26% two (mostly to CDNs), 4% dead."""
    roll = rng.random()
    block = home if rng.random() > 0.08 else rng.choice(BLOCKS)  # some endpoints drift
    block = UNLOCATED if rng.random() < 0.01 else block
    label, owner = hostname.split(".")[0], f"{hostname}."
    if roll < 0.03:
        world.kinds["nxdomain"] += 1  # a decommissioned endpoint: the name is gone
    elif roll < 0.04:
        world.kinds["no-answer"] += 1  # the name holds only a verification token
        world.records.append((owner, "TXT", '"verification=7f3a9c"'))
    elif roll < 0.44:
        world.kinds["direct"] += 1
        if rng.random() < 0.05:
            world.records.append((owner, "A", f"{rng.choice(DOC_PREFIXES)}{rng.randrange(1, 255)}"))
        else:
            world.add_addresses(owner, block, rng)
    elif roll < 0.74:
        world.kinds["cname-1"] += 1
        target = f"{vendor}-{label}.lb-{rng.randrange(1, 9)}.{vendor}.example."
        world.records.append((owner, "CNAME", target))
        world.add_addresses(target, block, rng)
    else:
        world.kinds["cname-2"] += 1
        middle = f"{label}.edge.{vendor}.example."
        edge = rng.random()
        if edge < 0.5:
            target, block = f"d{rng.getrandbits(56):014x}.cloudfront.net.", CLOUDFRONT
        elif edge < 0.7:
            target, block = f"{label}.{vendor}.example.cdn.cloudflare.net.", CLOUDFLARE
        else:
            target = f"{vendor}-prod-{rng.randrange(100)}.{label}.pool.{vendor}.example."
        world.records += [(owner, "CNAME", middle), (middle, "CNAME", target)]
        world.add_addresses(target, block, rng)


def integration_entry(
    index: int, vendor: str, home: Block, shared: Sequence[str], rng: random.Random
) -> dict[str, Any]:
    """One inventory entry whose declared facts give every rule something to find, sometimes."""
    hosting = [home.place] + ([weighted_block(rng).place] if rng.random() < 0.15 else [])
    suffix = rng.choice(("GmbH", "Inc.", "Ltd", "SAS", "B.V.", "AB"))
    entry: dict[str, Any] = {
        "id": vendor,
        "name": vendor.capitalize(),
        "vendor": f"{vendor.capitalize()} {suffix}",
        "category": "infrastructure" if index < SHARED else rng.choice(CATEGORIES),
        "role": rng.choices(("processor", "controller", "joint-controller"), (85, 10, 5))[0],
        "data_categories": rng.sample(DATA_CATEGORIES, rng.randint(1, 3))
        + (["health"] if rng.random() < 0.03 else []),
        "endpoints": [],
        "hosting": list(dict.fromkeys(hosting)),
        "support": [home.country if rng.random() < 0.7 else rng.choice(("US", "IN", "PH", "DE"))],
        "retention": rng.choice(("P1Y", "P2Y", "P13M", "P3Y", "P5Y")),
    }
    if rng.random() < 0.85:  # the rest are backup-undocumented
        region = home.place if rng.random() < 0.1 else weighted_block(rng).place
        retention = rng.choice(("P30D", "P90D", "P1Y", "P7Y", "P10Y"))
        entry["backups"] = {"regions": [region], "retention": retention}
    if index >= len(shared) and rng.random() < 0.3:
        entry["subprocessors"] = sorted(rng.sample(shared, rng.randint(1, 2)))
    entry["transfer"] = {
        "safeguards": ["scc"] if home.country not in EEA and rng.random() < 0.55 else [],
        "dpf_certified": home.country == "US" and rng.random() < 0.4,
    }
    if rng.random() < 0.02:
        entry["transfer"]["consent_purpose"] = "newsletter tracking"
    signed = date(2021 + rng.randrange(5), rng.randint(1, 12), rng.randint(1, 28))
    entry["contract"] = {
        "dpa_signed": signed if rng.random() < 0.9 else None,
        "vendor_may_use_data": rng.random() < 0.05,
        "data_ownership": rng.choices(("customer", "shared", "vendor"), (95, 3, 2))[0],
    }
    return entry


def generate(integrations: int, seed: int = SEED) -> World:
    """Generate the inventory and zone of `integrations` integrations; the same seed, the same world."""
    rng = random.Random(seed)
    world = World()
    shared: list[str] = []
    for index in range(integrations):
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        vendor = f"{word}{index}"  # the index keeps ids and domains unique
        if index < SHARED:
            shared.append(vendor)
        home = weighted_block(rng)
        entry = integration_entry(index, vendor, home, shared, rng)
        for prefix in rng.sample(PREFIXES, ENDPOINTS):
            hostname = f"{prefix}.{vendor}.example"
            entry["endpoints"].append(hostname)
            world.hostnames.append(hostname)
            add_endpoint(world, hostname, vendor, home, rng)
        world.integrations.append(entry)
    return world


# --- files on disk ---------------------------------------------------------------------------


def fresh_directory(path: Path) -> Path:
    """Make `path` an empty directory (one kept from an earlier run is emptied)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def load_mmdb_builder() -> ModuleType:
    """Load geodb/build_example_mmdb.py (a tool script, not a package) by its path."""
    path = ROOT / "geodb" / "build_example_mmdb.py"
    spec = importlib.util.spec_from_file_location("build_example_mmdb", path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_geodata(directory: Path) -> None:
    """Write geoip/{country,asn}.mmdb and ip-ranges/ covering every block and RFC 5737 range."""
    builder = load_mmdb_builder()
    countries: dict[str, str] = dict(builder.EXAMPLE_COUNTRIES)
    asns: dict[str, tuple[int, str]] = dict(builder.EXAMPLE_ASNS)
    for block in BLOCKS:
        for network in (block.ipv4_network, block.ipv6_network):
            if block.country:
                countries[network] = block.country
            if block.asn:
                asns[network] = block.asn
    builder.build_country_db(directory / "geoip" / "country.mmdb", countries)
    builder.build_asn_db(directory / "geoip" / "asn.mmdb", asns)
    write_range_files(fresh_directory(directory / "ip-ranges"))


def write_range_files(directory: Path) -> None:
    """Write AWS, GCP and Cloudflare range files in their published formats."""
    aws: dict[str, list[dict[str, str]]] = {"prefixes": [], "ipv6_prefixes": []}
    gcp: list[dict[str, str]] = []
    cloudflare: list[str] = []
    for block in BLOCKS:
        if block.ranges is None:
            continue
        provider, region, service = block.ranges
        v4, v6 = block.ipv4_network, block.ipv6_network
        if provider == "aws":
            for name in ("AMAZON", service):  # AWS lists every prefix under AMAZON as well
                row = {"region": region, "service": name, "network_border_group": region}
                aws["prefixes"].append({"ip_prefix": v4, **row})
                aws["ipv6_prefixes"].append({"ipv6_prefix": v6, **row})
        elif provider == "gcp":
            gcp.append({"ipv4Prefix": v4, "service": service, "scope": region})
            gcp.append({"ipv6Prefix": v6, "service": service, "scope": region})
        else:
            cloudflare += [v4, v6]
    aws_doc = {"syncToken": "1793016000", "createDate": "2026-10-26-12-00-00", **aws}
    gcp_doc = {"syncToken": "1793005205237", "creationTime": "2026-10-26T09:00:05.237"}
    (directory / "ip-ranges.json").write_text(json.dumps(aws_doc, indent=1))
    (directory / "cloud.json").write_text(json.dumps({**gcp_doc, "prefixes": gcp}, indent=1))
    (directory / "ips-v4").write_text("".join(f"{n}\n" for n in cloudflare if ":" not in n))
    (directory / "ips-v6").write_text("".join(f"{n}\n" for n in cloudflare if ":" in n))


def write_inventory(directory: Path, world: World, files: int = 10) -> None:
    """Write the inventory as several team files, as an organisation would keep it."""
    import yaml

    fresh_directory(directory)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    size = max(1, -(-len(world.integrations) // files))
    for number, start in enumerate(range(0, len(world.integrations), size)):
        doc = {"integrations": world.integrations[start : start + size]}
        text = yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=None, width=100)
        (directory / f"team-{number:02d}.yaml").write_text(text)


def write_config(directory: Path, nameserver: str, concurrency: int) -> Path:
    """Write auditor.yaml pointing at the generated files and the loopback nameserver."""
    config = {
        "inventory": ["inventory/"],
        "dns": {"nameservers": [nameserver], "timeout": 2.0, "concurrency": concurrency},
        "geoip": {"country_db": "geoip/country.mmdb", "asn_db": "geoip/asn.mmdb"},
        "ip_ranges": "ip-ranges/",
    }
    path = directory / "auditor.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


# --- measuring -------------------------------------------------------------------------------


class BenchError(Exception):
    """The benchmark could not run."""


@dataclass(slots=True)
class Run:
    """One timed child process: wall time, its own peak RSS, and what it reported."""

    seconds: float
    peak_rss_mb: float
    exit_status: int
    report: dict[str, Any] = field(default_factory=dict)


# Runs the timed processes and reports each one's wall time and peak RSS. A child's ru_maxrss
# starts at its parent's peak RSS (Linux carries the high-water mark across fork and exec), so
# the timed processes are started by this small process, started before the benchmark grows,
# rather than by the benchmark itself.
_SPAWNER = """
import json, os, subprocess, sys, time
for line in sys.stdin:
    request = json.loads(line)
    with open(request["stdout"], "wb") as out, open(request["stderr"], "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(request["command"], stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    print(json.dumps([seconds, child.returncode, usage.ru_maxrss]), flush=True)
"""


class Spawner:
    """A small process that runs commands one at a time and measures them; a context manager."""

    def __init__(self) -> None:
        # Its own session: on Ctrl-C the benchmark kills it and the timed process, as a group.
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-c", _SPAWNER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run(self, command: Sequence[str], stdout: Path, stderr: Path) -> Run:
        """Run `command` to completion; return its wall time and its own peak RSS."""
        assert self._process.stdin is not None and self._process.stdout is not None
        request = {"command": list(command), "stdout": str(stdout), "stderr": str(stderr)}
        self._process.stdin.write(json.dumps(request) + "\n")
        self._process.stdin.flush()
        answer = self._process.stdout.readline()
        if not answer:
            raise BenchError(f"the process timing the runs exited ({self._process.wait()})")
        seconds, status, maxrss_kib = json.loads(answer)
        return Run(seconds, maxrss_kib * 1024 / 1e6, status)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
        else:  # interrupted: stop the timed process too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()


def check_command() -> list[str]:
    script = Path(sys.executable).parent / "gdpr-auditor"
    return [str(script)] if script.exists() else [sys.executable, "-m", "auditor"]


def run_json(
    spawner: Spawner,
    what: str,
    command: Sequence[str],
    out: Path,
    err: Path,
    ok: tuple[int, ...] = (0,),
) -> tuple[Run, Any]:
    """Run a child that writes JSON to `out`: its run and what it wrote; raises BenchError with
    the end of its stderr when it exits with a status not in `ok`."""
    run = spawner.run(command, out, err)
    if run.exit_status not in ok:
        raise BenchError(f"{what} exited with status {run.exit_status}:\n{err.read_text()[-3000:]}")
    return run, json.loads(out.read_text())


def run_check(spawner: Spawner, work: Path, config: Path, number: int) -> Run:
    """Time one `gdpr-auditor check --format json` and summarise its findings."""
    out, err = work / f"check-{number}.json", work / f"check-{number}.err"
    options = ["--config", str(config), "--format", "json", "--as-of", AS_OF]
    command = [*check_command(), "check", *options]
    run, doc = run_json(spawner, "check", command, out, err, ok=(0, 1))  # 1: findings exist
    unresolved = Counter(
        finding["evidence"]["status"]
        for finding in doc["findings"]
        if finding["rule"] == "location-unverified" and "status" in (finding["evidence"] or {})
    )
    run.report = {
        "integrations": doc["integrations"],
        "hostnames": doc.get("hostnames"),
        "findings": dict(sorted(Counter(f["rule"] for f in doc["findings"]).items())),
        "unresolved": dict(sorted(unresolved.items())),
    }
    return run


def run_baseline(
    spawner: Spawner, work: Path, names: Path, nameserver: str, concurrency: int, number: int
) -> Run:
    """Time one bare dnspython loop over the same names, in its own process."""
    out, err = work / f"baseline-{number}.json", work / f"baseline-{number}.err"
    worker = ["--baseline-worker", str(names), "--nameserver", nameserver]
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        *worker,
        "--concurrency",
        str(concurrency),
    ]
    run, report = run_json(spawner, "baseline", command, out, err)
    run.report = report
    return run


def run_adns(spawner: Spawner, work: Path, names: Path, host: str, number: int) -> Run:
    """Time one adnshost run over the same names (bench/adns_baseline.py), in its own process."""
    out, err = work / f"adns-{number}.json", work / f"adns-{number}.err"
    script = Path(__file__).resolve().parent / "adns_baseline.py"
    command = [sys.executable, str(script), str(names), host, "--window", str(ADNS_WINDOW)]
    run, report = run_json(spawner, "adnshost", command, out, err)
    run.report = report
    return run


async def bare_loop(names: list[str], host: str, port: int, concurrency: int) -> dict[str, Any]:
    """Resolve A and AAAA of every name with `concurrency` names in flight; count the outcomes.

    What a reasonable person writes with dnspython: one asyncresolver, a shared queue of names,
    `concurrency` workers, both address types at once (as the auditor asks them).
    """
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.timeout = resolver.lifetime = 2.0
    outcomes: Counter[str] = Counter()
    addresses = 0

    async def lookup(name: str, rdtype: str) -> list[str] | str:
        try:
            answer = await resolver.resolve(name, rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            return "nxdomain"
        except dns.resolver.NoAnswer:
            return "no-answer"
        except dns.exception.DNSException:
            return "error"
        return [rdata.address for rdata in answer]

    pending = iter(names)

    async def worker() -> None:
        nonlocal addresses
        for name in pending:  # the iterator is shared: each worker takes the next name
            results = await asyncio.gather(lookup(name, "A"), lookup(name, "AAAA"))
            found = [
                address for result in results if isinstance(result, list) for address in result
            ]
            addresses += len(found)
            failures = [result for result in results if isinstance(result, str)]
            outcomes["ok" if found else "error" if "error" in failures else failures[0]] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(names)))))
    seconds = time.perf_counter() - start
    return {
        "loop_seconds": seconds,
        "addresses": addresses,
        "outcomes": dict(sorted(outcomes.items())),
    }


def baseline_worker(names_file: Path, nameserver: str, concurrency: int) -> int:
    host, _, port = nameserver.rpartition(":")
    names = names_file.read_text().split()
    print(json.dumps(asyncio.run(bare_loop(names, host.strip("[]"), int(port), concurrency))))
    return 0


# --- where the check's time goes (in this process) -------------------------------------------


def check_phases(config_path: Path) -> dict[str, float]:
    """Do what `check` does, step by step, and return the seconds each step took."""
    import io

    from auditor.cli import load_all
    from auditor.cli.output import write_json
    from auditor.config import load_config
    from auditor.service.wiring import build_locator, build_resolver
    from auditor.transfers.audit import run_audit

    phases: dict[str, float] = {}
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    config = load_config(config_path)
    policies, integrations = load_all(config)
    lap("load config, policies, inventory")
    resolver = _Timed(build_resolver(config))
    locator = _Timed(build_locator(config, policies))
    lap("open resolver and geo data")
    result = run_audit(
        integrations,
        policies,
        resolver,
        locator,
        date.fromisoformat(AS_OF),
        lambda: datetime.now(UTC),
    )
    lap("run_audit")
    write_json(result, io.StringIO())
    lap("render json")
    phases["  run_audit: resolve"] = resolver.seconds
    phases["  run_audit: locate"] = locator.seconds
    phases["  run_audit: rules and the rest"] = (
        phases["run_audit"] - resolver.seconds - locator.seconds
    )
    return phases


class _Timed:
    """Wraps the resolver or the geolocator, adding up the time spent in its calls."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.seconds = inner, 0.0

    def resolve_many(self, hostnames: Sequence[str], progress: Any = None) -> Mapping[str, Any]:
        start = time.perf_counter()
        try:
            return self.inner.resolve_many(hostnames, progress)  # type: ignore[no-any-return]
        finally:
            self.seconds += time.perf_counter() - start

    def locate(self, address: str) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.locate(address)
        finally:
            self.seconds += time.perf_counter() - start

    def datasets(self) -> Any:
        return self.inner.datasets()


def profile_check(config_path: Path, top: int = 30) -> dict[str, float]:
    """Time the check's phases in this process, then print a cProfile of one more run (stderr)."""
    import cProfile
    import pstats

    phases = check_phases(config_path)
    profiler = cProfile.Profile()
    profiler.runcall(check_phases, config_path)
    print(f"\ncProfile of an in-process check, top {top} by own time:", file=sys.stderr)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(top)
    return phases


# --- the report ------------------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """The best of several runs: least seconds, highest peak RSS."""

    hostnames: int
    seconds: float
    hostnames_per_second: float
    peak_rss_mb: float
    all_seconds: list[float]

    @classmethod
    def of(cls, runs: Sequence[Run], hostnames: int) -> Figures | None:
        if not runs:
            return None
        best = min(run.seconds for run in runs)
        rss = max(run.peak_rss_mb for run in runs)
        return cls(hostnames, best, hostnames / best, rss, [round(r.seconds, 3) for r in runs])


Verdict = tuple[str, bool | None, str]  # target, met (None: does not apply), measured value


def verdicts(size: int, check: Figures, bare: Figures | None) -> list[Verdict]:
    """The targets that apply to an inventory of `size` integrations, met or not."""
    found: list[Verdict] = []
    if bare is not None:
        ratio = check.hostnames_per_second / bare.hostnames_per_second
        found.append((f"rate >= {TARGET_RATIO}x bare loop", ratio >= TARGET_RATIO, f"{ratio:.2f}x"))
    if size in TARGET_SECONDS:
        limit = TARGET_SECONDS[size]
        found.append((f"{size} integrations <= {limit:g} s", check.seconds <= limit,
                      f"{check.seconds:.2f} s"))  # fmt: skip
    if size in TARGET_RSS_MB:
        limit = TARGET_RSS_MB[size]
        found.append((f"peak RSS <= {limit:g} MB", check.peak_rss_mb <= limit,
                      f"{check.peak_rss_mb:.1f} MB"))  # fmt: skip
    return found


def sanity_problems(world: World, check: Run, baselines: dict[str, Run]) -> list[str]:
    """Say where a run did not resolve what the zone holds: a fast wrong run proves nothing."""
    problems = []
    hostnames = len(world.hostnames)
    dead = {"nxdomain": world.kinds["nxdomain"], "no-answer": world.kinds["no-answer"]}
    if check.report["hostnames"] not in (None, hostnames):
        problems.append(f"check audited {check.report['hostnames']} hostnames, not {hostnames}")
    if check.report["unresolved"] != {kind: n for kind, n in dead.items() if n}:
        problems.append(f"check could not resolve {check.report['unresolved']}; expected {dead}")
    expected = {"ok": hostnames - sum(dead.values())} | {k: n for k, n in dead.items() if n}
    for name, run in baselines.items():
        if run.report["outcomes"] != dict(sorted(expected.items())):
            problems.append(f"{name} got {run.report['outcomes']}; expected {expected}")
    return problems


_MARK = {True: "PASS", False: "FAIL", None: "n/a "}
_ROWS = (("check", "gdpr-auditor check"), ("baseline", "bare dnspython loop"),
         ("adns", "C resolver (adnshost)"))  # fmt: skip


def print_size(doc: dict[str, Any]) -> None:
    """The table of one inventory size."""
    print(
        f"gdpr-auditor check benchmark: {doc['integrations']} integrations, "
        f"{doc['check']['hostnames']} hostnames, concurrency {doc['concurrency']}, "
        f"best of {doc['repeat']}"
    )
    print(
        f"Knot DNS {doc['knot']} on loopback ({doc['zone_records']} records), "
        f"Python {doc['python']}, {doc['cpus']} CPUs; {doc['adns'] or 'adnshost: not run'}\n"
    )
    print(f"{'':<24}{'hostnames':>10}{'seconds':>10}{'hostnames/s':>13}{'peak RSS MB':>13}")
    for key, name in _ROWS:
        row = doc["adns_run" if key == "adns" else key]
        if row is None:
            print(f"{name:<24}{'—':>10}  {doc['skipped'].get(key, 'not run')}")
            continue
        print(
            f"{name:<24}{row['hostnames']:>10}{row['seconds']:>10.2f}"
            f"{row['hostnames_per_second']:>13.0f}{row['peak_rss_mb']:>13.1f}"
        )
    print()
    if doc["ratio"] is not None:
        print(f"ratio check/bare dnspython loop: {doc['ratio']:.2f}x")
    if doc["ratio_adns"] is not None:
        print(f"check's rate as a fraction of the C resolver's: {doc['ratio_adns']:.2f}")
    rows = {key: doc["adns_run" if key == "adns" else key] for key, _ in _ROWS}
    runs = ", ".join(f"{key} {row['all_seconds']}" for key, row in rows.items() if row)
    print(f"all runs (s): {runs}")
    for target in doc["targets"]:
        print(f"{_MARK[target['pass']]}  {target['target']:<32} {target['value']}")
    if doc["phases"]:
        print("\nphases of one in-process check (s):")
        for name, seconds in doc["phases"].items():
            print(f"  {name:<36}{seconds:>7.2f}")
    for problem in doc["problems"]:
        print(f"WRONG  {problem}")


def print_scaling(docs: Sequence[dict[str, Any]]) -> None:
    """One line per inventory size: the check, both baselines, and the ratios."""
    print("\nscaling (best of each; seconds, peak RSS MB, hostnames/s):\n")
    print(
        f"{'integrations':>12}{'hostnames':>10}{'check s':>9}{'RSS MB':>8}{'names/s':>9}"
        f"{'dnspython s':>12}{'adns s':>8}{'vs dnspython':>13}{'of adns':>9}"
    )

    def figure(value: float | None, width: int, suffix: str = "") -> str:
        """A figure, or a dash for a baseline that was not run."""
        return f"{value:.2f}{suffix}".rjust(width) if value is not None else "—".rjust(width)

    for doc in docs:
        check, bare, adns = doc["check"], doc["baseline"], doc["adns_run"]
        print(
            f"{doc['integrations']:>12,}{check['hostnames']:>10,}{check['seconds']:>9.2f}"
            f"{check['peak_rss_mb']:>8.0f}{check['hostnames_per_second']:>9.0f}"
            f"{figure(bare['seconds'] if bare else None, 12)}"
            f"{figure(adns['seconds'] if adns else None, 8)}"
            f"{figure(doc['ratio'], 13, 'x')}{figure(doc['ratio_adns'], 9)}"
        )


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/audit.py",
        description="Time `gdpr-auditor check` against a bare dnspython loop and a C resolver, "
        "on loopback Knot DNS.",
    )
    add = parser.add_argument
    add("--integrations", type=int, nargs="+", default=[5000],
        help="inventory sizes, 3 endpoints per integration (5000)")  # fmt: skip
    add("--scaling", action="store_true", help=f"the sizes {', '.join(map(str, SCALING))}")
    add(
        "--repeat",
        type=int,
        default=3,
        help="runs of each, alternating; best time, highest RSS (3)",
    )
    add("--bare-loop-up-to", type=int, default=20000, metavar="N",
        help="run the bare dnspython loop only for inventories up to N integrations (20000): "
        "it takes minutes beyond")  # fmt: skip
    add("--concurrency", type=int, default=64, help="hostnames in flight, for all three (64)")
    add("--json", action="store_true", help="print the figures as JSON")
    add("--profile", action="store_true", help="also time the check's phases in this process and "
        "print a cProfile to stderr")  # fmt: skip
    add("--keep", type=Path, metavar="DIR", help="generate into DIR and keep the files")
    add("--baseline-worker", type=Path, help=argparse.SUPPRESS)  # internal: the baseline process
    add("--nameserver", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.scaling:
        args.integrations = list(SCALING)
    if min(*args.integrations, args.repeat, args.concurrency) < 1:
        parser.error("--integrations, --repeat and --concurrency must be positive")
    return args


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through the finally blocks that stop knotd


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if args.baseline_worker is not None:
        return baseline_worker(args.baseline_worker, args.nameserver, args.concurrency)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with Spawner() as spawner:  # first, while this process is small
            docs = []
            for size in args.integrations:
                if args.keep is not None:
                    work = args.keep / str(size)
                    work.mkdir(parents=True, exist_ok=True)
                    docs.append(bench(args, size, work, spawner))
                else:
                    with tempfile.TemporaryDirectory(prefix="gdpr-auditor-bench-") as temp:
                        docs.append(bench(args, size, Path(temp), spawner))
                if not args.json:
                    print_size(docs[-1])
                    print(flush=True)
    except (BenchError, DnsServerError) as exc:
        log(f"bench/audit.py: {exc}")
        return 3
    except KeyboardInterrupt:
        log("bench/audit.py: interrupted; the DNS server is stopped")
        return 130
    if args.json:
        print(json.dumps({"sizes": docs}, indent=2))
    elif len(docs) > 1:
        print_scaling(docs)
    met = all(t["pass"] is not False for doc in docs for t in doc["targets"])
    return 0 if met and not any(doc["problems"] for doc in docs) else 1


def serve(zone: str) -> KnotServer:
    """Knot DNS serving `zone`: at port 53 of a 127.53.x.y address when adnshost can be run
    (adns asks port 53 only) and that port may be bound, else at a free port of 127.0.0.1."""
    if find_adnshost() is not None:
        rng = random.Random()
        for _ in range(3):
            host = f"127.53.{rng.randrange(256)}.{rng.randrange(1, 255)}"
            server = KnotServer({".": zone}, host=host, port=53)
            try:
                server.start()
                return server
            except DnsServerError as exc:
                log(f"cannot serve at {host}:53 ({str(exc).splitlines()[0]}); trying another")
    server = KnotServer({".": zone})
    server.start()
    return server


def bench(args: argparse.Namespace, size: int, work: Path, spawner: Spawner) -> dict[str, Any]:
    """Generate an inventory of `size` integrations, time the three in turn, report."""
    started = time.perf_counter()
    world = generate(size)
    write_inventory(work / "inventory", world)
    write_geodata(work)
    names = work / "hostnames.txt"
    names.write_text("\n".join(world.hostnames) + "\n")
    zone = zone_text(".", world.records)
    log(
        f"generated {len(world.integrations)} integrations, {len(world.hostnames)} hostnames, "
        f"{len(world.records)} records in {time.perf_counter() - started:.1f} s"
    )
    runs: dict[str, list[Run]] = {"check": [], "baseline": [], "adns": []}
    skipped: dict[str, str] = {}
    server = serve(zone)
    try:
        host = server.address.rpartition(":")[0]
        config = write_config(work, server.address, args.concurrency)
        order = ["check"]
        if size <= args.bare_loop_up_to:
            order.append("baseline")
        else:
            skipped["baseline"] = f"not run above {args.bare_loop_up_to} integrations"
        if server.port == 53:
            order.append("adns")
        else:
            skipped["adns"] = "not run (adnshost missing, or port 53 not available)"
        for number in range(args.repeat):
            # Rotate which goes first, so that none always runs on a warmer machine.
            for which in order[number % len(order) :] + order[: number % len(order)]:
                if which == "check":
                    run = run_check(spawner, work, config, number)
                elif which == "baseline":
                    run = run_baseline(
                        spawner, work, names, server.address, args.concurrency, number
                    )
                else:
                    run = run_adns(spawner, work, names, host, number)
                runs[which].append(run)
                log(f"{size}: run {number + 1}: {which} {run.seconds:.2f} s")
        phases = profile_check(config) if args.profile else None
    finally:
        server.stop()
    return report(args, size, world, runs, skipped, phases)


def report(
    args: argparse.Namespace,
    size: int,
    world: World,
    runs: dict[str, list[Run]],
    skipped: dict[str, str],
    phases: dict[str, float] | None,
) -> dict[str, Any]:
    """The figures of one inventory size, as printed with --json."""
    hostnames = len(world.hostnames)
    check = Figures.of(runs["check"], hostnames)
    bare = Figures.of(runs["baseline"], hostnames)
    adns = Figures.of(runs["adns"], hostnames)
    assert check is not None
    fastest = {
        name: min(runs[key], key=lambda run: run.seconds)
        for key, name in (("baseline", "bare loop"), ("adns", "adnshost"))
        if runs[key]
    }
    return {
        "integrations": size,
        "concurrency": args.concurrency,
        "repeat": args.repeat,
        "knot": knot_version(),
        "adns": adns_version() if adns else "",
        "zone_records": len(world.records),
        "endpoint_kinds": dict(sorted(world.kinds.items())),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "check": asdict(check),
        "baseline": asdict(bare) if bare else None,
        "adns_run": asdict(adns) if adns else None,
        "skipped": skipped,
        "ratio": check.hostnames_per_second / bare.hostnames_per_second if bare else None,
        "ratio_adns": check.hostnames_per_second / adns.hostnames_per_second if adns else None,
        "targets": [
            {"target": target, "pass": met, "value": value}
            for target, met, value in verdicts(size, check, bare)
        ],
        "check_findings": runs["check"][-1].report["findings"],
        "phases": phases,
        "problems": sanity_problems(world, runs["check"][-1], fastest),
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
