"""Pausing Python's cycle collector around work that makes millions of objects and no cycles."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Keep the cycle collector off for the block (nested blocks: off until the outermost ends).

    An audit makes millions of objects that live to its end and form no cycles to speak of; on a
    large inventory each full collection would walk them all, for seconds, with every thread
    stopped (the daemon's /metrics endpoint's too). Reference counting frees them all the same.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
