"""What a scheduled job sees of the runner that runs it: a context to ask whether to stop early."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from auditor.core.durations import Duration
from auditor.core.model import Integration
from auditor.core.policies import PolicyData

Config_co = TypeVar("Config_co", covariant=True)


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


class JobInputs(Protocol[Config_co]):
    """What a capability's job reads of one loaded, valid set of inputs: the part of the
    configuration it declares (`Config_co`, a protocol the composed configuration satisfies), the
    policy data and the inventory."""

    @property
    def config(self) -> Config_co: ...

    @property
    def policies(self) -> PolicyData: ...

    @property
    def integrations(self) -> Sequence[Integration]: ...


class KeepSettings(Protocol):
    """What a job that prunes its old observations reads of the `database:` section."""

    @property
    def keep_observations(self) -> Duration: ...
