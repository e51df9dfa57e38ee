"""The daemon's consent job: check every consent mapping and record the results and findings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from auditor.consent.check import run_consent_job
from auditor.consent.config import ConsentSettings
from auditor.core.jobs import JobContext, JobInputs
from auditor.store import StateStore


class ConsentConfig(Protocol):
    """What the job reads of the configuration (which the daemon composes)."""

    @property
    def consent_settings(self) -> ConsentSettings: ...


class ConsentJob:
    """Checks every consent mapping of the current inputs (Art. 49(1)(a)); `recorded` is called
    after every run, failed or not, since the stored results changed either way (fresh counts,
    or the failed mappings' last counts marked stale)."""

    def __init__(
        self,
        sources: Callable[[], JobInputs[ConsentConfig]],
        store: StateStore,
        clock: Callable[[], datetime],
        environ: Mapping[str, str],
        recorded: Callable[[], None],
    ) -> None:
        self._sources = sources
        self._store = store
        self._clock = clock
        self._environ = environ
        self._recorded = recorded

    def work(self, context: JobContext) -> None:
        """One consent check of every mapping, recorded with its findings.

        Raises:
            JobCancelled: the daemon is stopping or lost leadership; nothing is recorded.
            ConsentCheckError: some mappings could not be checked; the others are recorded, and
                the failed ones keep their last counts, marked stale.
        """
        inputs = self._sources()
        try:
            run_consent_job(
                inputs.config.consent_settings,
                inputs.integrations,
                inputs.policies,
                self._store,
                clock=self._clock,
                environ=self._environ,
                check=context.check,
            )
        finally:
            self._recorded()
