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
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import fields
from operator import attrgetter

from auditor.core.model import Location, Resolution
from auditor.core.ports import GeoLocator
from auditor.core.results import (
    EndpointProbe,
    Probed,
    ProbeProgress,
    after,
    probe_endpoints,
    probe_in_parts,
)
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
        parts: Sequence[Sequence[str]], progress: ProbeProgress | None
    ) -> Iterator[Mapping[str, Probed]]:
        workers = min(os.cpu_count() or 1, resolver.concurrency)
        total = sum(map(len, parts))
        if workers < 2 or total < PARALLEL_HOSTNAMES or threading.active_count() > 1:
            return probe_in_parts(in_process)(parts, progress)
        return _probe_in_workers(resolver, locator, parts, workers, progress)

    return probe


def _probe_in_workers(
    resolver: DnsResolver,
    locator: GeoLocator,
    parts: Sequence[Sequence[str]],
    workers: int,
    progress: ProbeProgress | None,
) -> Iterator[Mapping[str, Probed]]:
    """Every part probed by forked workers, yielded in order as soon as it is whole; the parts
    the workers cannot probe (they could not start, or died) are probed in this process."""
    global _RESOLVER, _LOCATOR
    total = sum(map(len, parts))
    size = -(-total // (workers * SLICES_PER_WORKER))
    concurrency = resolver.concurrency
    probed: list[dict[str, Probed]] = [{} for _ in parts]
    slices = [-(-len(part) // size) for part in parts]  # each part's slices still out
    done = next_part = 0
    facts: dict[tuple[type, object], object] = {}
    values = [_Values(facts) for _ in parts]  # a location table per part, let go of with it
    _RESOLVER, _LOCATOR = resolver, locator
    resolver.concurrency = max(1, concurrency // workers)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            # Slices never span two parts. Each is turned into values as it arrives and let go
            # of; a part is handed on whole, in order, and let go of before the next is.
            pending = {
                pool.submit(_probe_slice, (index, start), list(part[start : start + size]))
                for index, part in enumerate(parts)
                for start in range(0, len(part), size)
            }
            try:
                for future in as_completed(pending):
                    pending.discard(future)
                    (index, start), flat, stats = future.result()
                    del future
                    resolver.stats.add(stats)
                    mine, part = probed[index], parts[index]
                    for hostname, (resolution, located) in zip(
                        part[start : start + len(flat)], flat, strict=True
                    ):
                        mine[hostname] = values[index].probed(hostname, resolution, located)
                    slices[index] -= 1
                    done += len(flat)
                    if progress is not None:
                        progress(done, total)
                    while next_part < len(parts) and slices[next_part] == 0:
                        whole, probed[next_part] = probed[next_part], {}
                        next_part += 1
                        values[next_part - 1].forget_locations()
                        yield {hostname: whole[hostname] for hostname in parts[next_part - 1]}
                        del whole
            finally:
                pool.shutdown(cancel_futures=True)  # stopped early: the rest is not wanted
    except (BrokenProcessPool, OSError):
        pass  # the parts not yet handed on are probed below, in this process
    finally:
        resolver.concurrency = concurrency
        _RESOLVER = _LOCATOR = None
    if next_part < len(parts):
        rest = parts[next_part:]
        before = sum(map(len, parts[:next_part]))
        in_process = probe_in_parts(probe_endpoints(resolver, locator))
        yield from in_process(rest, None if progress is None else after(progress, before, total))


def _probe_slice(
    start: tuple[int, int], hostnames: list[str]
) -> tuple[tuple[int, int], list[_Flat], ResolverStats]:
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

    def __init__(self, facts: dict[tuple[type, object], object] | None = None) -> None:
        self._locations: dict[object, Location] = {}  # by address: it locates the same all run
        self._atoms = {} if facts is None else facts  # may be shared with other tables

    def forget_locations(self) -> None:
        """Let go of the locations made so far (their part is handed on and holds them)."""
        self._locations = {}

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
