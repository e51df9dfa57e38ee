"""Sends DNS queries over UDP and hands each answer to the lookup that asked, in one thread.

A lookup is a generator (see `auditor.probes.dns`): it yields the `Query` it needs answered and
is sent back the answer's wire, None when no answer came in time, or the OSError that stopped
the exchange; it returns its result. The engine keeps at most `concurrency` hostnames in flight
(each with its A and AAAA lookups), sends each query on a UDP socket of its own (at most one
query outstanding per socket, so an answer is matched by its socket; the socket is connected, so
the kernel delivers only the nameserver's datagrams, and the answer is checked against the query
ID and the question: anything else is dropped as spoofed or late), and waits for answers and deadlines with the operating system's selector. No event loop,
task, future or timer per query: per query it costs a send, a receive and a generator step, a
third of what the same exchange costs through asyncio.
"""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any

from auditor.probes.dnstransport import Nameserver
from auditor.probes.dnswire import answers

Answer = bytes | OSError | None
"""What a lookup is sent back: the answer's wire, the error that stopped the exchange, or None
when no answer came in time."""


@dataclass(frozen=True, slots=True)
class Query:
    """One question for one nameserver, as a lookup yields it."""

    nameserver: Nameserver
    wire: bytes
    query_id: int
    question: bytes


Lookup = Generator[Query, Answer, Any]
"""A lookup: yields queries, is sent their answers, returns its result."""


@dataclass(slots=True)
class _Waiting:
    query: Query
    lookup: Lookup
    done: Callable[[Any], None]
    sequence: int


class UdpEngine:
    """Runs lookups to completion with a pool of reused, non-blocking UDP sockets."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._selector = selectors.DefaultSelector()
        self._idle: dict[Nameserver, list[socket.socket]] = {}
        self._waiting: dict[socket.socket, _Waiting] = {}  # the query each socket waits for
        self._deadlines: deque[tuple[float, socket.socket, int]] = deque()  # in sending order
        self._sequence = 0
        self._sockets: list[socket.socket] = []

    def start(self, lookup: Lookup, done: Callable[[Any], None]) -> None:
        """Begin a lookup; `done(result)` is called when it returns (maybe before this returns)."""
        self._advance(lookup, done, None, first=True)

    def busy(self) -> bool:
        """Whether queries are outstanding."""
        return bool(self._waiting)

    def wait(self) -> None:
        """Wait for answers or the next deadline; hand what came to the lookups that asked."""
        timeout = max(0.0, self._deadlines[0][0] - time.monotonic()) if self._deadlines else None
        for key, _ in self._selector.select(timeout):
            self._receive(key.fileobj)  # type: ignore[arg-type]
        now = time.monotonic()
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, sock, sequence = deadlines.popleft()
            waiting = self._waiting.get(sock)
            if waiting is not None and waiting.sequence == sequence:
                self._settle(sock, waiting, None)

    def close(self) -> None:
        """Close every socket the engine opened."""
        for sock in self._sockets:
            self._selector.unregister(sock)
            sock.close()
        self._selector.close()
        self._sockets.clear()

    def _advance(
        self, lookup: Lookup, done: Callable[[Any], None], answer: Answer, first: bool = False
    ) -> None:
        try:
            query = next(lookup) if first else lookup.send(answer)
        except StopIteration as stop:
            done(stop.value)
            return
        self._send(query, lookup, done)

    def _send(self, query: Query, lookup: Lookup, done: Callable[[Any], None]) -> None:
        nameserver = query.nameserver
        try:
            sock = self._socket(nameserver)
            sock.send(query.wire)
        except OSError as exc:
            self._advance(lookup, done, exc)
            return
        self._sequence += 1
        self._waiting[sock] = _Waiting(query, lookup, done, self._sequence)
        self._deadlines.append((time.monotonic() + self.timeout, sock, self._sequence))

    def _socket(self, nameserver: Nameserver) -> socket.socket:
        """An idle socket connected to the nameserver: the kernel then delivers only datagrams
        from that address and port, and sending needs no address lookup."""
        idle = self._idle.get(nameserver)
        if idle:
            return idle.pop()
        if idle is None:
            self._idle[nameserver] = []
        sock = socket.socket(nameserver.family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.connect((nameserver.host, nameserver.port))
        except OSError:
            sock.close()
            raise
        self._selector.register(sock, selectors.EVENT_READ)
        self._sockets.append(sock)
        return sock

    def _receive(self, sock: socket.socket) -> None:
        """Read the socket's datagrams until the answer to its query is among them.

        The socket is connected, so every datagram comes from the nameserver; one that does
        not answer our question (a late answer to a query that timed out, or a guess at the
        query ID) is dropped. With one query outstanding per socket, the answer ends the read:
        no further receive that would only find the socket empty.
        """
        while True:
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            except OSError as exc:
                waiting = self._waiting.get(sock)
                if waiting is not None:
                    self._settle(sock, waiting, exc)
                return
            waiting = self._waiting.get(sock)
            if waiting is None:
                continue  # a late answer to a query that already timed out
            query = waiting.query
            if answers(data, query.query_id, query.question):
                self._settle(sock, waiting, data)
                return

    def _settle(self, sock: socket.socket, waiting: _Waiting, answer: Answer) -> None:
        del self._waiting[sock]
        self._idle[waiting.query.nameserver].append(sock)
        self._advance(waiting.lookup, waiting.done, answer)


Job = Callable[[UdpEngine, Callable[[], None]], None]
"""A job starts its lookups on the engine and calls the callback once, when it is finished
(perhaps before it returns)."""


def run_all(engine: UdpEngine, jobs: Iterable[Job], concurrency: int) -> None:
    """Start jobs while fewer than `concurrency` are in flight, until all are finished."""
    in_flight = 0
    pending = iter(jobs)
    more = True

    def finished() -> None:
        nonlocal in_flight
        in_flight -= 1

    while True:
        while more and in_flight < concurrency:
            job = next(pending, None)
            if job is None:
                more = False
                break
            in_flight += 1
            job(engine, finished)
        if in_flight == 0 and not more:
            return
        if not engine.busy():
            raise RuntimeError("a DNS job is in flight without a query outstanding")
        engine.wait()
