"""Loading a large inventory on every core: its files parsed and validated by worker processes.

Parsing YAML and validating entries is pure Python, one core's work; a large inventory kept as
several files (as organisations keep them, one per team) is read by up to `os.cpu_count()`
processes at once, each reading whole files and sending back the validated integrations. The
result is the sequential load's: the same integrations in file order, the same problems in the
same order. Small inventories, a single file, one core, or a process that already runs threads
(where fork is unsafe) are loaded in this process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from auditor.core.errors import Issue
from auditor.core.inventory import (
    combine_inventory,
    inventory_files,
    load_inventory_file,
)
from auditor.core.model import Integration
from auditor.core.policies import PolicyData

PARALLEL_BYTES = 2_000_000
"""Below this many bytes of inventory files (some 4,000 integrations), starting workers costs
more than it saves."""

_POLICIES: PolicyData | None = None  # set before the workers fork; they inherit it
_DISPLAY: Path | None = None


def load_inventory_parallel(
    paths: Sequence[Path], policies: PolicyData, display: Path | None = None
) -> list[Integration]:
    """As `auditor.core.inventory.load_inventory`, with the files spread over worker processes.

    Raises:
        InvalidInputError: with every problem in every file.
    """
    files, issues = inventory_files(paths)
    workers = min(len(files), os.cpu_count() or 1)
    loaded: list[tuple[list[Integration], list[Issue]]] | None = None
    if workers >= 2 and _size(files) >= PARALLEL_BYTES and threading.active_count() == 1:
        loaded = _load_in_workers(files, workers, policies, display)
    if loaded is None:  # small, single-core, threaded, or the workers could not run
        loaded = [load_inventory_file(path, policies, display) for path in files]
    return combine_inventory(files, loaded, issues, display)


def _load_in_workers(
    files: Sequence[Path], workers: int, policies: PolicyData, display: Path | None
) -> list[tuple[list[Integration], list[Issue]]] | None:
    """Each file's integrations and problems, loaded by forked workers; None if they cannot run."""
    global _POLICIES, _DISPLAY
    _POLICIES, _DISPLAY = policies, display
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            # Largest files first, so that no worker is left with a big one at the end.
            order = sorted(range(len(files)), key=lambda i: -_size(files[i : i + 1]))
            futures = {index: pool.submit(_load, files[index]) for index in order}
            return [futures[index].result() for index in range(len(files))]
    except (BrokenProcessPool, OSError, ValueError):
        return None
    finally:
        _POLICIES = _DISPLAY = None


def _load(path: Path) -> tuple[list[Integration], list[Issue]]:
    assert _POLICIES is not None
    return load_inventory_file(path, _POLICIES, _DISPLAY)


def _size(files: Sequence[Path]) -> int:
    total = 0
    for path in files:
        with contextlib.suppress(OSError):  # reported when it is read
            total += path.stat().st_size
    return total
