"""sd_notify over a real Unix datagram socket: messages, abstract sockets, the watchdog's rules."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.service.sdnotify import Notifier, Watchdog


class Listener:
    """A bound SOCK_DGRAM socket standing in for systemd's notify socket."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(2)

    def receive(self) -> list[str]:
        return self.sock.recv(4096).decode().split("\n")

    def nothing_waiting(self) -> bool:
        self.sock.settimeout(0.05)
        try:
            self.sock.recv(4096)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(2)
        return False


@pytest.fixture(name="path_listener")
def _path_listener(tmp_path: Path) -> Iterator[tuple[str, Listener]]:
    path = str(tmp_path / "notify.sock")
    listener = Listener(path)
    yield path, listener
    listener.sock.close()


def test_ready_and_status_arrive_as_one_datagram(path_listener: tuple[str, Listener]) -> None:
    """READY=1 and STATUS= travel together, one assignment per line."""
    path, listener = path_listener
    notifier = Notifier({"NOTIFY_SOCKET": path})

    assert notifier.ready("auditing 3 integrations")

    assert ["READY=1", "STATUS=auditing 3 integrations"] == listener.receive()


def test_a_newline_in_a_status_cannot_forge_another_assignment(
    path_listener: tuple[str, Listener],
) -> None:
    """Status text is flattened to one line, so it cannot smuggle in `READY=1` or the like."""
    path, listener = path_listener

    Notifier({"NOTIFY_SOCKET": path}).status("one\nREADY=1")

    assert ["STATUS=one READY=1"] == listener.receive()


def test_stopping_reloading_and_watchdog_messages(path_listener: tuple[str, Listener]) -> None:
    """The lifecycle messages are the ones systemd expects; RELOADING carries MONOTONIC_USEC."""
    path, listener = path_listener
    notifier = Notifier({"NOTIFY_SOCKET": path})

    notifier.reloading()
    reloading = listener.receive()
    notifier.stopping()
    notifier.watchdog()

    assert "RELOADING=1" == reloading[0]
    assert reloading[1].startswith("MONOTONIC_USEC=") and reloading[1][15:].isdigit()
    assert ["STOPPING=1"] == listener.receive()
    assert ["WATCHDOG=1"] == listener.receive()


def test_abstract_namespace_socket() -> None:
    """A NOTIFY_SOCKET starting with @ names a socket in the abstract namespace."""
    name = f"gdpr-auditor-test-{uuid.uuid4().hex}"
    listener = Listener("\0" + name)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert ["READY=1"] == listener.receive()
    finally:
        listener.sock.close()


def test_without_notify_socket_every_call_is_a_harmless_no_op() -> None:
    """Outside systemd nothing is sent and nothing fails."""
    notifier = Notifier({})

    assert not notifier.enabled
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_a_vanished_socket_is_not_an_error(tmp_path: Path) -> None:
    """A service manager that went away must not take the daemon down: send returns False."""
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).ready()


def test_watchdog_period_is_for_this_process_only() -> None:
    """WATCHDOG_USEC counts only when WATCHDOG_PID is unset or names this process."""
    mine = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    other = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}

    assert 30.0 == Notifier(mine).watchdog_seconds
    assert 30.0 == Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_seconds
    assert Notifier(other).watchdog_seconds is None
    assert Notifier({"WATCHDOG_USEC": "0"}).watchdog_seconds is None
    assert Notifier({}).watchdog_seconds is None


def test_watchdog_pings_at_half_period_while_the_heartbeat_is_fresh(
    path_listener: tuple[str, Listener],
) -> None:
    """A fresh heartbeat gets a ping; the next tick within half a period sends nothing."""
    path, listener = path_listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "60000000"})
    watchdog = Watchdog(notifier, heartbeat_age=lambda: 1.0)

    assert watchdog.tick()
    assert not watchdog.tick()  # the next ping is due in 30 s

    assert ["WATCHDOG=1"] == listener.receive()
    assert listener.nothing_waiting()


def test_watchdog_withholds_pings_when_the_heartbeat_is_stale(
    path_listener: tuple[str, Listener],
) -> None:
    """A heartbeat older than the period means a stuck scheduler: no ping, so systemd restarts."""
    path, listener = path_listener
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    age = [5.0]
    watchdog = Watchdog(notifier, heartbeat_age=lambda: age[0])

    assert not watchdog.tick()
    assert watchdog.withheld
    assert listener.nothing_waiting()

    age[0] = 0.1  # the scheduler recovered
    assert watchdog.tick()
    assert not watchdog.withheld
    assert ["WATCHDOG=1"] == listener.receive()


def test_no_watchdog_configured_means_no_pings(path_listener: tuple[str, Listener]) -> None:
    """Without WatchdogSec= the watchdog never sends anything."""
    path, listener = path_listener
    watchdog = Watchdog(Notifier({"NOTIFY_SOCKET": path}), heartbeat_age=lambda: 0.0)

    assert not watchdog.tick()
    assert listener.nothing_waiting()
