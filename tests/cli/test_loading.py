"""A large inventory is loaded by worker processes: the same integrations and the same problems,
in the same order, as the sequential load."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.cli import loading
from auditor.core.errors import InvalidInputError
from auditor.core.inventory import load_inventory
from tests.helpers import minimal, shipped_policies


def dump(*entries: dict[str, object]) -> str:
    return yaml.safe_dump({"integrations": list(entries)}, sort_keys=False)


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Workers for any size on two cores; yields the worker counts of the pools started."""
    monkeypatch.setattr(loading, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(loading.os, "cpu_count", lambda: 2)
    pools: list[int] = []
    real = loading.ProcessPoolExecutor

    def counted(workers: int, **options: Any) -> ProcessPoolExecutor:
        pools.append(workers)
        return real(workers, **options)

    monkeypatch.setattr(loading, "ProcessPoolExecutor", counted)
    yield pools


def write_team_files(directory: Path, broken: bool) -> None:
    for team in range(5):
        entries = [minimal(f"t{team}-{n}") for n in range(20)]
        if broken and team in (1, 3):
            entries[5] = {**entries[5], "hosting": ["XX"], "colour": "blue"}
        (directory / f"team-{team}.yaml").write_text(dump(*entries))


def test_workers_load_what_the_sequential_load_loads(tmp_path: Path, parallel: list[int]) -> None:
    write_team_files(tmp_path, broken=False)
    policies = shipped_policies()
    expected = load_inventory([tmp_path], policies, display=tmp_path)
    found = loading.load_inventory_parallel([tmp_path], policies, display=tmp_path)
    assert found == expected
    assert [i.id for i in found][:3] == ["t0-0", "t0-1", "t0-2"]
    assert parallel == [2]


@pytest.mark.usefixtures("parallel")
def test_workers_report_every_problem_in_the_same_order_with_lines(tmp_path: Path) -> None:
    write_team_files(tmp_path, broken=True)
    policies = shipped_policies()
    with pytest.raises(InvalidInputError) as sequential:
        load_inventory([tmp_path], policies, display=tmp_path)
    with pytest.raises(InvalidInputError) as parallel:
        loading.load_inventory_parallel([tmp_path], policies, display=tmp_path)
    assert parallel.value.issues == sequential.value.issues
    assert {issue.source for issue in parallel.value.issues} == {"team-1.yaml", "team-3.yaml"}
    assert all(issue.line for issue in parallel.value.issues)
