"""A large inventory is audited a part at a time: the result is the same at every part size.

Each part is probed, evaluated and spooled before the next. What could go wrong is what crosses
a part boundary: a hostname several integrations share (probed once, in the first part that
needs it), a sub-processor declared in another part, equal evidence, the order of the findings,
places and endpoints, the probes that failed. A random inventory against a real DNS server,
audited whole and in parts of every size down to one integration, must come out identical.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from auditor.cli import load_run
from auditor.core import spool
from auditor.core.results import AuditResult
from auditor.service.wiring import build_locator, build_resolver
from auditor.transfers.audit import run_audit
from tests.conftest import DnsServerFactory
from tests.helpers import entry, write_config
from tests.mmdb import build_country_db

DAY = date(2026, 11, 22)
SHARED = [f"api{n}.shared.example" for n in range(6)]  # several integrations' endpoints
ZONE = "$ORIGIN .\n$TTL 60\n" + "\n".join(
    [f"{name}. A 198.51.100.{n + 1}" for n, name in enumerate(SHARED)]
    + [f"own{n}.eu.example. A 192.0.2.{n + 1}" for n in range(40)]
    + [f"own{n}.us.example. A 198.51.100.{n + 100}" for n in range(40)]
    + ["edge.shared.example. CNAME d1.cloudfront.net.", "d1.cloudfront.net. A 198.51.100.250"]
)


def _inventory(rng: random.Random, count: int) -> list[dict[str, object]]:
    ids = [f"app{n:02d}" for n in range(count)]
    entries = []
    for n, ident in enumerate(ids):
        names = rng.sample(
            [*SHARED, "edge.shared.example", "broken.shared.example", "missing.shared.example"],
            rng.randrange(0, 3),
        )
        names += [f"own{n}.{rng.choice(['eu', 'us'])}.example"] * rng.randrange(0, 2)
        overrides: dict[str, Any] = {
            "endpoints": names,
            "hosting": [rng.choice(["DE", "US", "IN", "CA", "aws:eu-central-1", "aws:us-east-1"])],
            "vendor_country": rng.choice(["DE", "US", "CN", "FR"]),
        }
        if rng.random() < 0.4:  # sub-processors before and after it in the inventory
            overrides["subprocessors"] = rng.sample([i for i in ids if i != ident], 2)
        if rng.random() < 0.3:
            overrides["transfer"] = {"safeguards": ["scc"]}
        if rng.random() < 0.3:
            overrides["backups"] = {"regions": ["US"], "retention": "P10Y"}
        if rng.random() < 0.2:
            overrides["contract"] = {"dpa_signed": None}
        entries.append(entry(ident, **overrides))
    return entries


def _snapshot(result: AuditResult) -> dict[str, object]:
    """Everything an audit's result says, as plain values (evidence and probes included)."""
    return {
        "findings": [(repr(f), f.evidence, f.probes) for f in result.findings],
        "places": [(repr(p), p.probes) for p in result.places],
        "observations": [repr(o) for o in result.observations],
        "failed": dict(result.failed_probes),
        "hostnames": result.hostnames,
        "integrations": [i.id for i in result.integrations],
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_part_size_gives_the_whole_inventorys_result(
    seed: int, tmp_path: Path, dns_server_factory: DnsServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_country_db(tmp_path / "country.mmdb", {"192.0.2.0/24": "DE", "198.51.100.0/24": "US"})
    server = dns_server_factory(ZONE)
    server.set_behaviour("broken.shared.example", "servfail")
    config_path = write_config(
        tmp_path,
        _inventory(random.Random(seed), 24),
        dns={"nameservers": [server.address], "timeout": 0.5, "concurrency": 8},
        geoip={"country_db": "country.mmdb"},
    )
    _, config, policies, integrations = load_run(config_path, DAY.isoformat())
    at = datetime(2026, 11, 22, 10, tzinfo=UTC)

    def audit(part_size: int) -> dict[str, object]:
        resolver = build_resolver(config)
        result = run_audit(
            integrations,
            policies,
            resolver,
            build_locator(config, policies),
            DAY,
            lambda: at,
            part_size=part_size,
        )
        assert resolver.stats.hostnames == result.hostnames  # each hostname probed once
        return _snapshot(result)

    whole = audit(10_000)
    monkeypatch.setattr(spool, "CHUNK", 7)  # observations and places spooled, several chunks
    assert whole["findings"] and whole["failed"] and len(whole["places"]) > 24  # type: ignore[arg-type]
    for part_size in (1, 2, 3, 5, 8, 13, 40):
        assert audit(part_size) == whole, f"part size {part_size}"


def test_a_part_holds_at_least_one_integration() -> None:
    with pytest.raises(ValueError, match="at least one integration"):
        run_audit([], None, None, None, DAY, lambda: datetime.now(UTC), part_size=0)  # type: ignore[arg-type]
