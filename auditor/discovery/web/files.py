"""The web audit's evidence files: one directory per run under the state directory, a JSON record,
a screenshot and a HAR per page and consent state, each hashed; old runs pruned."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_RUN_NAME = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One evidence file: its path relative to the evidence root, its size and SHA-256."""

    name: str
    sha256: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "sha256": self.sha256, "size": self.size}


def run_directory(root: Path, started: datetime) -> Path:
    """A new directory for one run's files, named by its start (UTC); created."""
    base = started.astimezone(UTC).strftime(_RUN_NAME)
    for attempt in range(1000):
        candidate = root / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            candidate.mkdir(parents=True)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"{root / base}: too many runs started in the same second")


def hashed(path: Path, root: Path) -> FileRecord | None:
    """The record of a written file (None when it was not written)."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return FileRecord(path.relative_to(root).as_posix(), digest.hexdigest(), path.stat().st_size)


def write_json(path: Path, content: dict[str, Any], root: Path) -> FileRecord:
    """Write a JSON document (sorted keys, UTF-8) and return its record."""
    data = json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    path.write_bytes(data)
    return FileRecord(
        path.relative_to(root).as_posix(), hashlib.sha256(data).hexdigest(), len(data)
    )


def prune_runs(root: Path, before: datetime, keep: Path | None = None) -> int:
    """Remove the run directories started before `before` (never `keep`); return how many.

    Only directories named like a run are touched: anything else under the root is left alone.
    """
    if not root.is_dir():
        return 0
    removed = 0
    for entry in sorted(root.iterdir()):
        if not entry.is_dir() or entry == keep:
            continue
        try:
            started = datetime.strptime(entry.name.split("-")[0], _RUN_NAME).replace(tzinfo=UTC)
        except ValueError:
            continue
        if started < before:
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
