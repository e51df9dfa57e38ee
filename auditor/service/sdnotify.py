"""systemd's notify protocol without a dependency: datagrams to $NOTIFY_SOCKET, and the watchdog period."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping


class Notifier:
    """Sends state lines (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, ...) to the service manager.

    Without $NOTIFY_SOCKET (not started by systemd, or `Type=simple`) every call is a no-op that
    returns False. A socket name starting with `@` is in the abstract namespace. Sending never
    raises: a service manager that went away must not take the daemon down with it.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _socket_address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_seconds = _watchdog_seconds(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send the lines as one datagram; return whether it was sent."""
        if self.address is None or not lines:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode())
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        # MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match this to the reload request.
        monotonic = f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}"
        return self.notify("RELOADING=1", monotonic, *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.notify(*_status(text))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")


def _status(text: str | None) -> tuple[str, ...]:
    # One line per datagram field: a newline inside the text would start a new assignment.
    return () if text is None else ("STATUS=" + " ".join(text.splitlines()),)


def _socket_address(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # systemd also allows vsock: addresses, for VMs; not for a service like this one


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """The watchdog period systemd set for this process (WatchdogSec=), or None.

    WATCHDOG_PID names the process the period is meant for; a child that inherited the
    environment must not ping on its parent's behalf.
    """
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000


class Watchdog:
    """Decides when to send `WATCHDOG=1`: every half period, and only while the heartbeat is fresh.

    `heartbeat_age` says how long ago a scheduler job last beat; pings stop when the scheduler is
    stuck, so systemd restarts the service. A blind timer would keep a wedged daemon alive.
    """

    def __init__(self, notifier: Notifier, heartbeat_age: Callable[[], float]) -> None:
        self.notifier = notifier
        self.period = notifier.watchdog_seconds
        self.heartbeat_age = heartbeat_age
        self.withheld = False
        self._next_ping = 0.0

    def tick(self) -> bool:
        """Ping if a ping is due and the heartbeat is fresh; return whether a ping was sent."""
        if self.period is None:
            return False
        now = time.monotonic()
        if now < self._next_ping:
            return False
        if self.heartbeat_age() >= self.period:
            self.withheld = True
            return False
        self.withheld = False
        self._next_ping = now + self.period / 2
        return self.notifier.watchdog()
