"""Shared pytest fixtures: loopback servers started on demand and stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.dnsserver import LoopbackDnsServer

DnsServerFactory = Callable[..., LoopbackDnsServer]


@pytest.fixture
def dns_server_factory() -> Iterator[DnsServerFactory]:
    """Start loopback DNS servers: `factory(zone_text, origin=".", host="127.0.0.1")`."""
    servers: list[LoopbackDnsServer] = []

    def start(zone_text: str, origin: str = ".", host: str = "127.0.0.1") -> LoopbackDnsServer:
        server = LoopbackDnsServer(zone_text, origin=origin, host=host).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
