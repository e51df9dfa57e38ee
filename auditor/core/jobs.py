"""What a scheduled job sees of the runner that runs it: a context to ask whether to stop early."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


class JobCancelled(Exception):
    """Raised inside a job when it must stop early: the daemon is stopping or lost leadership."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running job may ask the runner: whether it must stop early."""

    job_id: str
    _should_stop: Callable[[], str | None]

    def check(self) -> None:
        """Raise JobCancelled when the job must stop; long jobs call this between steps."""
        reason = self._should_stop()
        if reason is not None:
            raise JobCancelled(reason)


Work = Callable[[JobContext], None]
"""A job's body. Raising means the job failed; it is logged, counted, and the daemon carries on."""
