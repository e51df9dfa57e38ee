"""The daemon's signals and reload: SIGHUP loads the configuration anew and keeps the last good
one if anything is invalid; SIGTERM and SIGINT stop it. A part of `Daemon` (main thread only)."""

from __future__ import annotations

import os
import queue
import signal
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType

import structlog

from auditor.config import Config
from auditor.core.errors import AuditUnavailableError, InvalidInputError, StoreError
from auditor.service.generation import load_generation
from auditor.service.log import configure_logging
from auditor.service.scheduling import Scheduling

log = structlog.get_logger("auditor.daemon")


class Reloading(Scheduling):
    """Signals, reload and the evidence of each reload."""

    config_path: Path
    reload_ok: bool
    reload_at: datetime | None
    _generation_lock: threading.Lock
    _signals: queue.SimpleQueue[int]
    _stopping: bool

    # -- signals and reload ---------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only queue it: the main loop does the work, outside the signal handler.
        if signum in (signal.SIGTERM, signal.SIGINT) and self._stopping:
            os.write(2, b"gdpr-auditor: second stop signal, exiting at once\n")
            os._exit(128 + signum)
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._stopping = True
        self._signals.put(signum)

    def reload(self) -> bool:
        """Reload config, policies and inventory; keep the last good ones if anything is invalid."""
        self.notifier.reloading("reloading the configuration")
        log.info("reload_requested", config=str(self.config_path))
        try:
            new = load_generation(self.config_path)
        except InvalidInputError as exc:
            self._reject_reload([str(issue) for issue in exc.issues])
            return False
        except AuditUnavailableError as exc:
            self._reject_reload([str(exc)])
            return False
        old = self.generation
        self._warn_restart_needed(old.config, new.config)
        with self._generation_lock:
            self.generation = new  # one swap: a job sees the old or the new, never a mix
        if (old.config.log_level, old.config.log_format) != (
            new.config.log_level,
            new.config.log_format,
        ):
            configure_logging(new.config.log_level, new.config.log_format)
        self._register_work()
        if self._active:
            self._schedule_work(old.config.jobs, run_now=False)
        self.reload_ok, self.reload_at = True, self.clock()
        log.info("reload_succeeded", integrations=len(new.integrations))
        self._evidence(
            "config-reload",
            {
                "accepted": True,
                "config_digest": new.config.digest,
                "previous_config_digest": old.config.digest,
                "policy_digest": new.policies.digest,
                "previous_policy_digest": old.policies.digest,
                "integrations": len(new.integrations),
            },
        )
        self.notifier.ready(self._status())
        return True

    def _reject_reload(self, issues: list[str]) -> None:
        self.reload_ok = False
        self._evidence("config-reload", {"accepted": False, "problems": len(issues)})
        log.error(
            "reload_rejected",
            issues=issues,
            message="keeping the last good configuration, inventory and policy data",
        )
        self.notifier.ready(self._status("reload rejected; running on the last good configuration"))

    def _evidence(self, kind: str, content: dict[str, object]) -> None:
        """Append to the evidence chain; a database hiccup is logged, never fatal to a reload."""
        try:
            self.store.append_evidence(kind, content, self.clock())
        except StoreError as exc:
            log.error("evidence_not_recorded", kind=kind, error=str(exc))

    def _warn_restart_needed(self, old: Config, new: Config) -> None:
        if old.metrics_listen != new.metrics_listen:
            log.warning("restart_needed", setting="metrics.listen")
        if old.database != new.database:
            log.warning("restart_needed", setting="database")
