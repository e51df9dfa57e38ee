"""Handing the memory a finished job freed back to the operating system (glibc's malloc_trim)."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


def release_freed_memory() -> bool:
    """Ask the C allocator to return the free pages of its heaps to the system; return whether
    it could be asked (glibc), False elsewhere (musl, macOS), where nothing is done.

    glibc keeps what a job frees for later allocations, and a large audit frees hundreds of
    megabytes at once, in every thread's heap: without this the daemon's resident memory stays
    near an audit's peak between audits. The call releases the interpreter lock while it runs.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def can_release_freed_memory() -> bool:
    """Whether `release_freed_memory` does anything here (glibc)."""
    return _malloc_trim() is not None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, looked up on first use; None without it."""
    try:
        # The symbols the interpreter itself is linked with: the C library's among them.
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    trim: Callable[[int], int] = function
    return trim
