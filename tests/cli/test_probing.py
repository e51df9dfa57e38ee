"""`check`'s endpoint probe spread over forked workers: the in-process probe's results, exactly."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from auditor.cli import probing
from auditor.cli.probing import parallel_probe
from auditor.config import load_config
from auditor.core.model import Location
from auditor.core.policies import load_policies
from auditor.core.results import probe_endpoints
from auditor.service.wiring import build_locator, build_resolver
from tests.cli.test_cli import ZONE, write_config
from tests.conftest import DnsServerFactory
from tests.helpers import entry

# Each name once with each outcome the resolver knows, and more names than slices, so that
# every worker gets several.
NAMES = [
    "api.crm.example",  # an address in the EEA
    "app.crm.example",  # two CNAMEs to a CDN edge
    "mail.vendor.example",  # a CNAME to a US address
    "broken.vendor.example",  # SERVFAIL
    "slow.vendor.example",  # no answer
    "missing.vendor.example",  # NXDOMAIN
    "192.0.2.99",  # an address literal
] + [f"h{number}.many.example" for number in range(40)]

MANY = "\n".join(f"h{number}.many.example. A 198.51.100.{number}" for number in range(40))


class _PidLocator:
    """The real geolocator, writing the process id of every call to a file."""

    def __init__(self, inner: object, log: Path) -> None:
        self.inner, self.log = inner, log

    def locate(self, address: str) -> Location:
        with self.log.open("a") as out:
            out.write(f"{os.getpid()}\n")
        return self.inner.locate(address)  # type: ignore[attr-defined, no-any-return]

    def datasets(self) -> object:
        return self.inner.datasets()  # type: ignore[attr-defined]

    def pids(self) -> set[int]:
        return {int(line) for line in self.log.read_text().split()}


@pytest.fixture(name="parts")
def _parts(tmp_path: Path, dns_server_factory: DnsServerFactory) -> tuple[object, ...]:
    from tests.mmdb import build_country_db

    build_country_db(tmp_path / "country.mmdb", {"192.0.2.0/24": "DE", "198.51.100.0/24": "US"})
    server = dns_server_factory(ZONE + MANY)
    server.set_behaviour("broken.vendor.example", "servfail")
    server.set_behaviour("slow.vendor.example", "timeout")
    config = load_config(
        write_config(tmp_path, [entry("crm", endpoints=NAMES)], nameservers=[server.address])
    )
    policies = load_policies(config.policies)
    return config, policies


def test_workers_return_what_the_process_itself_finds(
    parts: tuple[object, ...], tmp_path: Path
) -> None:
    config, policies = parts
    alone = build_resolver(config)  # type: ignore[arg-type]
    expected = probe_endpoints(alone, build_locator(config, policies))(NAMES, None)  # type: ignore[arg-type]

    resolver = build_resolver(config)  # type: ignore[arg-type]
    locator = _PidLocator(build_locator(config, policies), tmp_path / "pids")  # type: ignore[arg-type]
    calls: list[tuple[int, int]] = []
    parts = [[], NAMES[:5], NAMES[5:30], [], NAMES[30:], []]  # parts without hostnames too
    handed = probing._probe_in_workers(resolver, locator, parts, 2, lambda *c: calls.append(c))  # type: ignore[arg-type]
    got = {}
    for part, found in zip(parts, handed, strict=True):
        assert list(found) == part  # each part whole, in the order asked
        # Equal locations within a part are one object, as the in-process probe's cache makes
        # them (a part handed on is let go of with its own; the next may make them again).
        us = [loc for _, located in found.values() for loc in located if loc.country == "US"]
        assert len({id(loc) for loc in us}) == len(set(us))
        got.update(found)

    assert got == expected
    assert os.getpid() not in locator.pids() and len(locator.pids()) == 2  # in two workers
    done = [count for count, _ in calls]  # one call per slice, counting up to every name
    assert len(calls) > 2 and done == sorted(done) and calls[-1] == (len(NAMES), len(NAMES))
    # The resolver's totals are the workers' summed, as if this process had resolved them.
    assert (resolver.stats.hostnames, resolver.stats.queries, resolver.stats.timeouts) == (
        alone.stats.hostnames,
        alone.stats.queries,
        alone.stats.timeouts,
    )
    assert resolver.stats.statuses == alone.stats.statuses
    assert resolver.concurrency == alone.concurrency  # given back after the workers' share


def test_a_process_running_threads_probes_in_itself(
    parts: tuple[object, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forking a process with threads can copy a lock another thread holds: no workers then."""
    config, policies = parts
    monkeypatch.setattr(probing, "PARALLEL_HOSTNAMES", 1)
    locator = _PidLocator(build_locator(config, policies), tmp_path / "pids")  # type: ignore[arg-type]
    resolver = build_resolver(config)  # type: ignore[arg-type]
    assert threading.active_count() > 1  # the loopback DNS server's thread

    (got,) = parallel_probe(resolver, locator)([NAMES], None)  # type: ignore[arg-type]

    assert locator.pids() == {os.getpid()}
    assert got["mail.vendor.example"][1][0].country == "US"
    assert got["slow.vendor.example"][0].status == "timeout"


class _DyingLocator(_PidLocator):
    """Kills the worker process that is asked to locate `fatal` (this process it spares)."""

    def __init__(self, inner: object, log: Path, fatal: str) -> None:
        super().__init__(inner, log)
        self.parent, self.fatal = os.getpid(), fatal

    def locate(self, address: str) -> Location:
        if address == self.fatal and os.getpid() != self.parent:
            os._exit(1)
        return super().locate(address)


def test_parts_the_workers_cannot_probe_are_probed_here(
    parts: tuple[object, ...], tmp_path: Path
) -> None:
    """A worker that dies takes no hostname with it: every part not yet handed on is probed in
    this process, and the parts come out whole and in order all the same."""
    config, policies = parts
    expected = probe_endpoints(build_resolver(config), build_locator(config, policies))(NAMES, None)  # type: ignore[arg-type]
    locator = _DyingLocator(build_locator(config, policies), tmp_path / "pids", "198.51.100.30")
    calls: list[tuple[int, int]] = []
    chunks = [NAMES[:10], NAMES[10:], ["h35.many.example"]]  # h30: 198.51.100.30, in the second

    handed = list(
        probing._probe_in_workers(
            build_resolver(config), locator, chunks, 2, lambda *c: calls.append(c)
        )  # type: ignore[arg-type]
    )

    assert [list(found) for found in handed] == chunks
    assert {name: found[name] for found in handed for name in found} == {
        name: expected[name] for name in NAMES
    }
    assert os.getpid() in locator.pids()  # the rest probed here
    assert calls[-1][1] == len(NAMES) + 1  # counted over all the parts


def test_equal_facts_are_shared_but_never_across_types() -> None:
    """Values equal in Python but of other types (False and AS0, True and AS1) stay what they
    were: the sharing of equal facts across slices keys them by type too."""
    values = probing._Values()
    first = ("192.0.2.1", "US", "geoip", None, None, None, None, None, 1, "Lumen", False)
    second = ("192.0.2.2", "US", "geoip", None, None, None, None, None, 0, "Other", True)
    resolution = ("ok", ("192.0.2.1", "192.0.2.2"), (), None)

    _, (a, b) = values.probed("api.example.com", resolution, (first, second))

    assert (a.asn, a.edge, b.asn, b.edge) == (1, False, 0, True)
    assert type(a.asn) is int and type(b.asn) is int and type(b.edge) is bool
    _, (again,) = values.probed("www.example.com", resolution, (first,))
    assert again is a  # one object for one address
