"""Handing freed memory back to the system after a job: glibc's malloc_trim, through ctypes."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from auditor.service.memory import release_freed_memory


def resident_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_heap_memory_freed_among_blocks_still_in_use_goes_back_to_the_system() -> None:
    """Freed blocks between live ones stay resident (the heap cannot shrink past a live block)
    until released: about 70 MB of 80 here."""
    blocks = [bytes(2000) for _ in range(40_000)]  # from the C heap: above pymalloc's 512 bytes
    kept = blocks[::10]
    del blocks
    before = resident_bytes()

    asked = release_freed_memory()
    after = resident_bytes()

    assert asked
    assert before - after > 40_000_000
    assert len(kept) == 4_000


def test_asking_again_with_nothing_freed_is_harmless() -> None:
    """Where the C library has no malloc_trim nothing is asked; elsewhere a second call is fine."""
    first = release_freed_memory()

    assert first == release_freed_memory()
