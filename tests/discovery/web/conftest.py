"""The web audit's test world, started once per module: the loopback sites, the auditor's DNS
server, the GeoIP databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.discovery.web.scenario import ROUTES, SITES, ZONE, write_world
from tests.dnsserver import LoopbackDnsServer
from tests.mmdb import build_example_dbs
from tests.webserver import TEST_SWITCHES, LoopbackSites, require_browser


@dataclass(frozen=True)
class World:
    """The servers and databases; `configure` writes a configuration using them."""

    sites: LoopbackSites
    dns: LoopbackDnsServer
    country_db: Path
    asn_db: Path

    def configure(self, directory: Path, sites: str = SITES, jobs: str = "") -> Path:
        return write_world(
            directory, self.sites.port, self.dns.address, self.country_db, self.asn_db,
            json.dumps(list(TEST_SWITCHES)), sites, jobs,
        )  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_browser()
    directory = tmp_path_factory.mktemp("world")
    country_db, asn_db = build_example_dbs(directory)
    with LoopbackSites(ROUTES, directory) as sites, LoopbackDnsServer(ZONE) as dns:
        yield World(sites, dns, country_db, asn_db)
