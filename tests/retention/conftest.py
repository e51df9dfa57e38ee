"""Fixtures of the retention tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from auditor.store import StateStore


@pytest.fixture(name="store")
def _store(tmp_path: Path) -> Iterator[StateStore]:
    """A state store in a SQLite file, for the evidence records."""
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()
