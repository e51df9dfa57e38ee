"""`gdpr-auditor run` executes itself again on the C library's allocator, in the same process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from auditor.service.memory import can_release_freed_memory

ROOT = Path(__file__).resolve().parents[2]
REPORT = (
    "import json, os, sys; from auditor.launch import use_c_allocator; "
    "use_c_allocator({wanted}); "
    "print(json.dumps([os.getpid(), os.environ.get('PYTHONMALLOC'), sys.argv[1:]]))"
)


def _run(wanted: bool, **env: str) -> tuple[int, list[object]]:
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"} | env
    process = subprocess.Popen(
        [sys.executable, "-c", REPORT.format(wanted=wanted), "run", "--config", "x y.yaml"],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        text=True,
    )
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    return process.pid, json.loads(out)


@pytest.mark.skipif(not can_release_freed_memory(), reason="the C library has no malloc_trim")
def test_the_daemon_starts_again_in_the_same_process_with_the_c_allocator() -> None:
    pid, (reported_pid, allocator, argv) = _run(True)
    assert allocator == "malloc"
    assert reported_pid == pid  # exec, not a child: systemd's notify socket sees the same PID
    assert argv == ["run", "--config", "x y.yaml"]  # the command line as it was


def test_an_allocator_already_chosen_is_kept_and_other_commands_run_as_they_are() -> None:
    assert _run(True, PYTHONMALLOC="pymalloc")[1][1] == "pymalloc"
    assert _run(False)[1][1] is None


@pytest.mark.skipif(not can_release_freed_memory(), reason="the C library has no malloc_trim")
def test_gdpr_auditor_run_is_on_the_c_allocator(tmp_path: Path) -> None:
    """The console entry point itself: `run` with a configuration that cannot be read fails
    the same way, but in the process executed again (its environment says so)."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONMALLOC"}
    script = "import os, sys; from auditor.launch import main; sys.argv[0] = 'gdpr-auditor'; "
    script += "import atexit; atexit.register(lambda: print(os.environ.get('PYTHONMALLOC')))\n"
    script += "main()"
    done = subprocess.run(
        [sys.executable, "-c", script, "run", "--config", str(tmp_path / "missing.yaml")],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "malloc"
    assert "missing.yaml" in done.stderr
