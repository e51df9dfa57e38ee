"""A daemon's scheduled job run once, in the test's process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from auditor.core.jobs import JobContext
from auditor.service.daemon import NEEDED, WORK, Daemon
from auditor.service.generation import Generation, load_generation
from auditor.service.leader import SingleReplica
from auditor.service.sdnotify import Notifier
from auditor.store import StateStore


def run_job_once(
    job: str,
    config: Path,
    open_store: Callable[[Generation], StateStore],
    at: datetime,
    check: Callable[[], None] = lambda: None,
) -> tuple[Daemon, StateStore]:
    """Build a daemon over `config` whose clock says `at` and run its `job` work once (the job
    must be configured); the store is closed when the work fails."""
    generation = load_generation(config)
    assert NEEDED[job](generation)
    store = open_store(generation)
    daemon = Daemon(config, generation, store, SingleReplica(), Notifier({}), clock=lambda: at)
    try:
        WORK[job](daemon)(JobContext(job, check))
    except BaseException:
        store.close()
        raise
    return daemon, store
