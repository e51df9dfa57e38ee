"""Starts Debian's Knot DNS (`knotd`) on loopback, serving generated zones from a temporary directory."""

# Used by the benchmarks (and usable by tests) as a real, fast, authoritative DNS server:
#
#     with KnotServer({".": zone_text(".", records)}) as server:
#         resolver = DnsResolver([server.address])
#
# knotd runs as a child process in the foreground, with its configuration, zone files, database
# and control socket in a temporary directory, listening on 127.0.0.1 at a free high port. It
# answers like an authoritative server: CNAME chains inside its zones are followed in the answer,
# names outside every zone get REFUSED. Serving the root zone (".") puts any name in one zone, so
# every chain is followed. `start` returns only once every zone answers its SOA query.

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Self

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

# The loopback server's shape and port finding are the test suite's (tests/dnsserver.py).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.dnsserver import LoopbackServer, bind_udp_and_tcp

APT_PACKAGE = "knot"
"""The Debian package that ships knotd."""

_SEARCH_PATH = (*os.get_exec_path(), "/usr/sbin", "/usr/local/sbin", "/sbin")
_PR_SET_PDEATHSIG = 1
_LOAD_FAILED = ("failed to load zone", "zone event 'load' failed")


class DnsServerError(RuntimeError):
    """The DNS server is not installed, did not start, or did not answer in time."""


def find_knotd() -> Path:
    """Return the path of knotd; raises DnsServerError naming the package to install."""
    found = shutil.which("knotd", path=os.pathsep.join(_SEARCH_PATH))
    if found is None:
        raise DnsServerError(
            f"knotd (Knot DNS) is not installed: install Debian's {APT_PACKAGE!r} package, "
            f"e.g. `apt-get install --no-install-recommends {APT_PACKAGE}`"
        )
    return Path(found)


def knot_version() -> str:
    """Return knotd's version ("3.2.6"); raises DnsServerError when it is missing."""
    output = subprocess.run(
        [str(find_knotd()), "--version"], capture_output=True, text=True, check=False
    ).stdout
    # "knotd (Knot DNS), version 3.2.6"
    return output.strip().rpartition(" ")[2] or "unknown"


def zone_text(
    origin: str,
    records: Iterable[tuple[str, str, str]],
    ttl: int = 300,
) -> str:
    """Return a master-format zone: SOA and NS at `origin`, then (owner, type, data) records.

    Owners are absolute names ("api.example.") or relative to the origin.
    """
    apex = origin if origin.endswith(".") else origin + "."
    lines = [
        f"$ORIGIN {apex}",
        f"$TTL {ttl}",
        f"{apex} SOA ns.loopback.invalid. hostmaster.loopback.invalid. 1 3600 600 86400 {ttl}",
        f"{apex} NS ns.loopback.invalid.",
    ]
    lines.extend(f"{owner} {rdtype} {data}" for owner, rdtype, data in records)
    return "\n".join(lines) + "\n"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a port that is free for both UDP and TCP on `host` right now."""
    try:
        udp, tcp = bind_udp_and_tcp(host, attempts=50)
    except OSError as exc:
        raise DnsServerError(f"no free port found on {host}") from exc
    with udp, tcp:
        port: int = udp.getsockname()[1]
    return port


class KnotServer(LoopbackServer):
    """knotd serving `zones` ({origin: zone text}) on `host` at `port` (a free one by default).

    Use it as a context manager, or call `start` and `stop` (stop is safe to call twice). The
    temporary directory is removed on stop unless `directory` was given.
    """

    def __init__(
        self,
        zones: Mapping[str, str],
        host: str = "127.0.0.1",
        port: int | None = None,
        udp_workers: int = 1,
        tcp_workers: int = 1,
        directory: Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if not zones:
            raise ValueError("at least one zone is needed")
        self.zones = {(o if o.endswith(".") else o + "."): text for o, text in zones.items()}
        self.host = host
        self.port = port or 0
        self.udp_workers = udp_workers
        self.tcp_workers = tcp_workers
        self.startup_timeout = startup_timeout
        self._given_directory = directory
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_text(self) -> str:
        """Return what knotd has logged so far (warnings and errors)."""
        if self._log is None or not self._log.exists():
            return ""
        return self._log.read_text(errors="replace")

    def start(self) -> Self:
        """Start knotd and wait until every zone answers; raises DnsServerError."""
        if self._process is not None:
            raise DnsServerError("the server is already running")
        knotd = find_knotd()
        if self._given_directory is not None:
            self.directory = self._given_directory
        else:
            self.directory = Path(tempfile.mkdtemp(prefix="knot-loopback-"))
        try:
            (self.directory / "db").mkdir(parents=True, exist_ok=True)
            self._write_zones()
            self._start_on_a_port(knotd)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_on_a_port(self, knotd: Path) -> None:
        # A port found free can be taken before knotd binds it: then try another one.
        attempts = 1 if self.port else 3
        for attempt in range(1, attempts + 1):
            if attempts > 1:
                self.port = free_port(self.host)
            self._launch(knotd)
            try:
                self._wait_until_answering()
                return
            except DnsServerError:
                retry = attempt < attempts and "bind" in self.log_text().lower()
                self._terminate()
                if not retry:
                    raise

    def stop(self) -> None:
        """Stop knotd (SIGTERM, then SIGKILL) and remove the temporary directory."""
        self._terminate()
        if self.directory is not None and self._given_directory is None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def _write_zones(self) -> None:
        assert self.directory is not None
        for index, text in enumerate(self.zones.values()):
            (self.directory / f"zone{index}.db").write_text(text)

    def _config(self) -> str:
        assert self.directory is not None
        directory = self.directory
        zones = "\n".join(
            f'  - domain: "{origin}"\n    file: "zone{index}.db"'
            for index, origin in enumerate(self.zones)
        )
        # No journal, no zone file flushing, no DNSSEC: knotd only reads the files it is given.
        return f"""\
server:
    rundir: "{directory}"
    listen: {self.host}@{self.port}
    udp-workers: {self.udp_workers}
    tcp-workers: {self.tcp_workers}
    background-workers: 1
database:
    storage: "{directory / "db"}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "{directory}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
{zones}
"""

    def _launch(self, knotd: Path) -> None:
        assert self.directory is not None
        config = self.directory / "knot.conf"
        config.write_text(self._config())
        self._log = self.directory / "knotd.log"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [str(knotd), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                # Its own session: a Ctrl-C at the terminal reaches only us, and we stop it.
                start_new_session=True,
                preexec_fn=_death_signal(),  # noqa: PLW1509
            )

    def _wait_until_answering(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        pending = list(self.zones)
        problem = "no answer yet"
        while pending:
            process = self._process
            assert process is not None
            if process.poll() is not None:
                raise DnsServerError(
                    f"knotd exited with status {process.returncode} while starting:\n"
                    + _tail(self.log_text())
                )
            log = self.log_text()
            if any(sign in log for sign in _LOAD_FAILED):
                raise DnsServerError(f"knotd could not load a zone:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise DnsServerError(
                    f"knotd did not answer on {self.address} within {self.startup_timeout:g} s "
                    f"({problem}):\n" + _tail(self.log_text())
                )
            answered, problem = self._soa_answered(pending[0])
            if answered:
                pending.pop(0)
            else:
                time.sleep(0.05)

    def _soa_answered(self, origin: str) -> tuple[bool, str]:
        query = dns.message.make_query(origin, dns.rdatatype.SOA)
        try:
            answer = dns.query.udp(query, self.host, port=self.port, timeout=0.5)
        except (dns.exception.DNSException, OSError) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        # Until the zone is loaded, knotd answers SERVFAIL (or REFUSED) for it.
        if answer.rcode() != dns.rcode.NOERROR or not answer.flags & dns.flags.AA:
            return False, f"{dns.rcode.to_text(answer.rcode())} for the SOA of {origin}"
        return True, ""

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _death_signal() -> Callable[[], None] | None:
    """Return what the child runs before exec so that the kernel stops it when we die (Linux).

    "We" is the thread that starts the server: start it from one that lives as long as the server.
    """
    if sys.platform != "linux":
        return None
    try:
        # Resolved here, in the parent: between fork and exec the child should only make the call.
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    return set_death_signal


def _tail(text: str, lines: int = 20) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "\n".join(kept) if kept else "(knotd logged nothing)"
