"""The DNS resolver adapter: hostnames to CNAME chains and addresses, over UDP/TCP or zone files."""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from auditor.core.errors import ResolverError
from auditor.core.model import Resolution
from auditor.probes.dnsengine import Answer, Query, UdpEngine, run_all
from auditor.probes.dnstransport import (
    Nameserver,
    QueryIds,
    parse_nameserver,
    system_nameservers,
    tcp_exchange,
)
from auditor.probes.dnswire import (
    AAAA,
    TYPE_TEXT,
    A,
    Labels,
    MalformedError,
    Outcome,
    address_literal,
    answers,
    hostname_labels,
    is_truncated,
    name_text,
    parse_answer,
    query_wire,
    question_wire,
)
from auditor.probes.zonefiles import load_zone_file

MAX_CNAME_CHAIN = 10
"""A longer chain is reported as an error; it also bounds the follow-up queries per hostname."""

FAILURE_STATUSES = frozenset({"timeout", "servfail", "refused", "error"})
"""Statuses that say the lookup could not be done, as opposed to a definite answer."""


@dataclass(slots=True)
class ResolverStats:
    """Running totals since the resolver was made, for metrics."""

    hostnames: int = 0
    failures: int = 0  # hostnames whose status is not "ok"
    queries: int = 0  # DNS messages sent, over UDP and TCP, retries included
    tcp_queries: int = 0
    timeouts: int = 0  # queries that got no answer in time
    statuses: Counter[str] = field(default_factory=Counter)

    def add(self, other: ResolverStats) -> None:
        """Add another resolver's totals (a worker process's) to these."""
        self.hostnames += other.hostnames
        self.failures += other.failures
        self.queries += other.queries
        self.tcp_queries += other.tcp_queries
        self.timeouts += other.timeouts
        self.statuses.update(other.statuses)


class DnsResolver:
    """Resolves hostnames (CNAME chain, A and AAAA) with bounded concurrency; never raises per name.

    `nameservers` are "host", "host:port" or "[IPv6]:port"; empty means the system resolver's,
    unless zone files are given: then the audit is air-gapped and names outside the zones are errors.
    """

    def __init__(
        self,
        nameservers: Sequence[str],
        timeout: float = 2.0,
        concurrency: int = 64,
        zone_files: Sequence[Path] = (),
        retries: int = 1,
    ) -> None:
        if timeout <= 0 or concurrency < 1 or retries < 0:
            settings = f"timeout={timeout}, concurrency={concurrency}, retries={retries}"
            reason = "timeout and concurrency must be positive, retries not negative"
            raise ResolverError(f"resolver settings ({settings})", reason)
        self.zones = [load_zone_file(Path(path)) for path in zone_files]
        # Most specific zone first, so a sub-zone file wins over its parent's.
        self.zones.sort(key=lambda zone: len(zone.origin), reverse=True)
        if nameservers:
            self.nameservers = [parse_nameserver(text) for text in nameservers]
        elif self.zones:
            self.nameservers = []
        else:
            self.nameservers = system_nameservers()
        self.timeout = float(timeout)
        self.concurrency = concurrency
        self.retries = retries
        self.stats = ResolverStats()
        self._query_ids = QueryIds()
        self._texts = {nameserver: str(nameserver) for nameserver in self.nameservers}

    def resolve_many(
        self, hostnames: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> dict[str, Resolution]:
        """Return one Resolution per distinct hostname; `progress(done, total)` ends at (total, total).

        At most `concurrency` hostnames are in flight, each with its A and AAAA lookups.
        """
        unique = list(dict.fromkeys(hostnames))
        results = self._resolve_all(unique, progress)
        for resolution in results.values():
            self.stats.hostnames += 1
            self.stats.statuses[resolution.status] += 1
            if not resolution.ok:
                self.stats.failures += 1
        return results

    def _resolve_all(
        self, hostnames: list[str], progress: Callable[[int, int], None] | None
    ) -> dict[str, Resolution]:
        results: dict[str, Resolution] = {}
        total = len(hostnames)
        step = max(1, -(-total // 100))  # at most ~100 progress calls

        def record(resolution: Resolution) -> None:
            results[resolution.hostname] = resolution
            if progress is not None and (len(results) % step == 0 or len(results) == total):
                progress(len(results), total)

        def job(hostname: str) -> Callable[[UdpEngine, Callable[[], None]], None]:
            def start(engine: UdpEngine, finished: Callable[[], None]) -> None:
                def done(resolution: Resolution) -> None:
                    record(resolution)
                    finished()

                self._start_one(engine, hostname, done)

            return start

        engine = UdpEngine(self.timeout)
        try:
            run_all(engine, map(job, hostnames), self.concurrency)
        finally:
            engine.close()
        if progress is not None and total == 0:
            progress(0, 0)
        return results

    def _start_one(
        self, engine: UdpEngine, hostname: str, done: Callable[[Resolution], None]
    ) -> None:
        """Resolve one hostname: its A and AAAA lookups at once, merged when both are in."""
        literal = address_literal(hostname)
        if literal is not None:  # as getaddrinfo does: an address resolves to itself
            done(Resolution(hostname, "ok", (literal,)))
            return
        try:
            name = hostname_labels(hostname)
        except ValueError as exc:
            done(Resolution(hostname, "error", reason=f"invalid hostname: {exc}"))
            return
        found: dict[int, _TypeResult] = {}

        def one(result: _TypeResult) -> None:
            found[result.rdtype] = result
            if len(found) == 2:
                done(_merge(hostname, name, found[A], found[AAAA]))

        engine.start(self._resolve_type(name, A), one)
        engine.start(self._resolve_type(name, AAAA), one)

    def _resolve_type(self, name: Labels, rdtype: int) -> Generator[Query, Answer, _TypeResult]:
        """Follow the CNAME chain from `name` to its addresses of one type, asking again as needed."""
        chain: list[Labels] = []
        seen = {name}
        current = name
        while True:
            outcome = yield from self._lookup(current, rdtype)
            if outcome.status in FAILURE_STATUSES:
                return _TypeResult(rdtype, outcome.status, outcome.reason, chain)
            advanced = False
            while (target := outcome.cnames.get(current)) is not None:
                if target in seen:
                    reason = f"CNAME loop at {name_text(target)}"
                    return _TypeResult(rdtype, "error", reason, chain)
                if len(chain) == MAX_CNAME_CHAIN:
                    reason = f"CNAME chain longer than {MAX_CNAME_CHAIN} at {name_text(current)}"
                    return _TypeResult(rdtype, "error", reason, chain)
                chain.append(target)
                seen.add(target)
                current = target
                advanced = True
            addresses = outcome.addresses.get(current)
            if addresses:
                return _TypeResult(rdtype, "ok", None, chain, addresses)
            if outcome.status == "nxdomain":
                reason = f"no such name: {name_text(current)} ({outcome.source})"
                return _TypeResult(rdtype, "nxdomain", reason, chain)
            if not advanced:
                reason = (
                    f"no {TYPE_TEXT[rdtype]} records for {name_text(current)} ({outcome.source})"
                )
                return _TypeResult(rdtype, "no-answer", reason, chain)
            # The answer ends in a CNAME whose target it does not cover: ask for the target.

    def _lookup(self, name: Labels, rdtype: int) -> Generator[Query, Answer, Outcome]:
        """Answer one question from the loaded zones or the nameservers."""
        for zone in self.zones:
            if zone.covers(name):
                return zone.lookup(name, rdtype)
        if not self.nameservers:
            return Outcome("error", "outside the loaded zone files", "zone files")
        question = question_wire(name, rdtype)
        outcome = Outcome("error", "no query sent", "")
        attempts = self.retries + 1
        for attempt in range(attempts):
            nameserver = self.nameservers[attempt % len(self.nameservers)]
            outcome = yield from self._query(nameserver, question, rdtype)
            retry = outcome.status == "timeout" or (
                outcome.status in ("servfail", "refused") and len(self.nameservers) > 1
            )
            if not retry:
                return outcome
        if outcome.status == "timeout":
            # The attempts went round the nameservers from the first: these are those tried.
            servers = ", ".join(self._texts[server] for server in self.nameservers[:attempts])
            outcome.reason = f"no answer from {servers} within {self.timeout} s"
        return outcome

    def _query(
        self, nameserver: Nameserver, question: bytes, rdtype: int
    ) -> Generator[Query, Answer, Outcome]:
        """Send one question to one nameserver over UDP, then TCP if the answer is truncated."""
        query_id = self._query_ids.next()
        wire = query_wire(query_id, question)
        source = self._texts[nameserver]
        self.stats.queries += 1
        data = yield Query(nameserver, wire, query_id, question)
        try:
            if isinstance(data, OSError):
                raise data
            if data is not None and is_truncated(data):
                self.stats.queries += 1
                self.stats.tcp_queries += 1
                data = tcp_exchange(nameserver, wire, self.timeout)
                if data is not None and not answers(data, query_id, question):
                    return Outcome("error", f"TCP answer from {source} does not match", source)
        except OSError as exc:
            return Outcome("error", f"cannot query {source}: {exc.strerror or exc}", source)
        if data is None:
            self.stats.timeouts += 1
            return Outcome("timeout", f"no answer from {source} within {self.timeout} s", source)
        try:
            return parse_answer(data, len(question), rdtype, source)
        except MalformedError as exc:
            return Outcome("error", f"malformed answer from {source}: {exc}", source)


@dataclass(slots=True)
class _TypeResult:
    """What one address type (A or AAAA) of one hostname resolved to."""

    rdtype: int
    status: str
    reason: str | None
    chain: list[Labels]
    addresses: list[str] = field(default_factory=list)


def _merge(hostname: str, name: Labels, ipv4: _TypeResult, ipv6: _TypeResult) -> Resolution:
    """Combine the A and AAAA results: any address makes it ok; a failure beats a definite answer."""
    chain = list(dict.fromkeys([*ipv4.chain, *ipv6.chain]))
    addresses = _in_order(ipv4.addresses) + _in_order(ipv6.addresses)
    failed = [result for result in (ipv4, ipv6) if result.status in FAILURE_STATUSES]
    if addresses:
        status = "ok"
        reason = _labelled(failed) or None  # say what failed next to the addresses found
    elif failed:
        status = failed[0].status
        reasons = list(dict.fromkeys(r.reason for r in failed))
        reason = reasons[0] if len(reasons) == 1 and len(failed) == 2 else _labelled(failed)
    elif "no-answer" in (ipv4.status, ipv6.status):
        status = "no-answer"
        reason = f"no A or AAAA records for {name_text(chain[-1] if chain else name)}"
    else:
        status, reason = "nxdomain", ipv4.reason
    return Resolution(hostname, status, tuple(addresses), tuple(map(name_text, chain)), reason)


def _in_order(addresses: list[str]) -> list[str]:
    """One family's addresses once each, in numeric order (most answers hold one)."""
    if len(addresses) < 2:
        return addresses
    family = socket.AF_INET6 if ":" in addresses[0] else socket.AF_INET
    return sorted(set(addresses), key=lambda text: socket.inet_pton(family, text))


def _labelled(results: Sequence[_TypeResult]) -> str:
    return "; ".join(f"{TYPE_TEXT[r.rdtype]}: {r.reason}" for r in results)
