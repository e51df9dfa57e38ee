"""Probing a large inventory's endpoints on every core: resolved and located by worker processes.

Reading DNS answers and locating their addresses is pure Python, one core's work per process,
while the DNS server answers in a fraction of that time. `check` on a large inventory forks one
worker per core; each takes slices of the hostname list, resolves them with its share of the
configured concurrency (the total in flight stays what the configuration says), locates every
address and sends back plain tuples, which this process turns back into the same values the
in-process probe returns, one `Location` object for equal locations. As with loading
(`auditor.cli.loading`), a process that already runs threads, where fork is unsafe, a small
inventory or a single core probe in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from operator import attrgetter

from auditor.core.model import Location, Resolution
from auditor.core.ports import GeoLocator
from auditor.core.results import EndpointProbe, Probed, probe_endpoints
from auditor.probes.dns import DnsResolver, ResolverStats

PARALLEL_HOSTNAMES = 20_000
"""Below this many hostnames, starting workers costs more than it saves."""

SLICES_PER_WORKER = 16
"""Slices of the hostname list per worker: progress to report, and no worker idle at the end."""

_RESOLUTION_FIELDS = attrgetter(*(field.name for field in fields(Resolution)[1:]))
_LOCATION_FIELDS = attrgetter(*(field.name for field in fields(Location)))
_Flat = tuple[tuple[object, ...], tuple[tuple[object, ...], ...]]
_RESOLVER: DnsResolver | None = None  # set before the workers fork; they inherit them
_LOCATOR: GeoLocator | None = None


def parallel_probe(resolver: DnsResolver, locator: GeoLocator) -> EndpointProbe:
    """The probe `check` runs: spread over worker processes when that pays, else in-process."""
    in_process = probe_endpoints(resolver, locator)

    def probe(
        hostnames: Sequence[str], progress: Callable[[int, int], None] | None
    ) -> Mapping[str, Probed]:
        workers = min(os.cpu_count() or 1, resolver.concurrency)
        if workers < 2 or len(hostnames) < PARALLEL_HOSTNAMES or threading.active_count() > 1:
            return in_process(hostnames, progress)
        probed = _probe_in_workers(resolver, locator, hostnames, workers, progress)
        return probed if probed is not None else in_process(hostnames, progress)

    return probe


def _probe_in_workers(
    resolver: DnsResolver,
    locator: GeoLocator,
    hostnames: Sequence[str],
    workers: int,
    progress: Callable[[int, int], None] | None,
) -> dict[str, Probed] | None:
    """Every hostname probed by forked workers; None when they cannot run."""
    global _RESOLVER, _LOCATOR
    size = -(-len(hostnames) // (workers * SLICES_PER_WORKER))
    concurrency = resolver.concurrency
    _RESOLVER, _LOCATOR = resolver, locator
    resolver.concurrency = max(1, concurrency // workers)
    probed: dict[str, Probed] = {}
    values = _Values()
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            # Each slice is turned into values as it arrives and then let go of: the workers'
            # tuples of all slices are never held at once beside the values made of them.
            pending = {
                pool.submit(_probe_slice, start, list(hostnames[start : start + size]))
                for start in range(0, len(hostnames), size)
            }
            for future in as_completed(pending):
                pending.discard(future)
                start, flat, stats = future.result()
                del future
                resolver.stats.add(stats)
                for hostname, (resolution, located) in zip(
                    hostnames[start : start + len(flat)], flat, strict=True
                ):
                    probed[hostname] = values.probed(hostname, resolution, located)
                if progress is not None:
                    progress(len(probed), len(hostnames))
    except (BrokenProcessPool, OSError):
        return None
    finally:
        resolver.concurrency = concurrency
        _RESOLVER = _LOCATOR = None
    return {hostname: probed[hostname] for hostname in hostnames}  # in the order asked


def _probe_slice(start: int, hostnames: list[str]) -> tuple[int, list[_Flat], ResolverStats]:
    """In a worker: resolve and locate a slice, as plain tuples (a fifth of the pickling), each
    resolution without its hostname (the receiving process has it)."""
    assert _RESOLVER is not None and _LOCATOR is not None
    _RESOLVER.stats = ResolverStats()
    probed = probe_endpoints(_RESOLVER, _LOCATOR)(hostnames, None)
    flat = [
        (_RESOLUTION_FIELDS(resolution), tuple(map(_LOCATION_FIELDS, located)))
        for resolution, located in (probed[hostname] for hostname in hostnames)
    ]
    return start, flat, _RESOLVER.stats


class _Values:
    """Turns the workers' tuples back into values, one object for equal values across slices:
    equal locations, and equal strings and numbers within them (each slice arrives with its own
    copies)."""

    def __init__(self) -> None:
        self._locations: dict[object, Location] = {}  # by address: it locates the same all run
        self._atoms: dict[tuple[type, object], object] = {}

    def probed(
        self, hostname: str, resolution: tuple[object, ...], located: tuple[tuple[object, ...], ...]
    ) -> Probed:
        status, addresses, chain, reason = resolution
        return (
            Resolution(hostname, self._atom(status), addresses, chain, reason),  # type: ignore[arg-type]
            tuple(map(self._location, located)),
        )

    def _atom(self, value: object) -> object:
        # By type and value: False and 0, True and AS1, are equal as keys but not as facts.
        return self._atoms.setdefault((type(value), value), value)

    def _location(self, fields: tuple[object, ...]) -> Location:
        location = self._locations.get(fields[0])
        if location is None:
            address, *facts = fields
            location = Location(address, *map(self._atom, facts))  # type: ignore[arg-type]
            self._locations[address] = location
        return location
