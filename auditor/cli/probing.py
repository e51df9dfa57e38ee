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

_RESOLUTION_FIELDS = attrgetter(*(field.name for field in fields(Resolution)))
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
    slices = [hostnames[start : start + size] for start in range(0, len(hostnames), size)]
    concurrency = resolver.concurrency
    _RESOLVER, _LOCATOR = resolver, locator
    resolver.concurrency = max(1, concurrency // workers)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(_probe_slice, list(part)) for part in slices]
            done = 0
            for future in as_completed(futures):
                done += len(future.result()[0])
                if progress is not None:
                    progress(done, len(hostnames))
            results = [future.result() for future in futures]
    except (BrokenProcessPool, OSError):
        return None
    finally:
        resolver.concurrency = concurrency
        _RESOLVER = _LOCATOR = None
    probed: dict[str, Probed] = {}
    locations: dict[tuple[object, ...], Location] = {}
    for flat, stats in results:
        resolver.stats.add(stats)
        for resolution, located in flat:
            probed[resolution[0]] = (  # type: ignore[index]
                Resolution(*resolution),  # type: ignore[arg-type]
                tuple(_location(locations, fields) for fields in located),
            )
    return probed


def _probe_slice(hostnames: list[str]) -> tuple[list[_Flat], ResolverStats]:
    """In a worker: resolve and locate a slice, as plain tuples (a fifth of the pickling)."""
    assert _RESOLVER is not None and _LOCATOR is not None
    _RESOLVER.stats = ResolverStats()
    probed = probe_endpoints(_RESOLVER, _LOCATOR)(hostnames, None)
    flat = [
        (_RESOLUTION_FIELDS(resolution), tuple(map(_LOCATION_FIELDS, located)))
        for resolution, located in (probed[hostname] for hostname in hostnames)
    ]
    return flat, _RESOLVER.stats


def _location(known: dict[tuple[object, ...], Location], fields: tuple[object, ...]) -> Location:
    location = known.get(fields)
    if location is None:
        location = known[fields] = Location(*fields)  # type: ignore[arg-type]
    return location
