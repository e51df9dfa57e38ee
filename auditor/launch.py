"""The console entry point, which runs the daemon on the C library's allocator.

Python keeps objects of up to 512 bytes in arenas of its own (1 MiB each) and hands an arena back
to the system only once every object in it is gone. A large audit fills hundreds of arenas and
frees nearly all it put there; the few objects that outlive it (the metrics' next rendering,
the store's next snapshot, caches) land in most of them, and the arenas' free pages stay
resident. Measured after two audits of 50,000 integrations: 252 arenas, 264 MB, held 121 MB of
objects. With `PYTHONMALLOC=malloc` every object comes from the C library, whose `malloc_trim`
(called after each audit, `auditor.service.memory`) hands back every free page wherever it lies.

So `gdpr-auditor run` starts itself again, once, before anything else happens: `exec` in the same
process (the same PID, which systemd's notify socket and watchdog rely on), with
`PYTHONMALLOC=malloc`. It does not when `PYTHONMALLOC` is set already (set it to `pymalloc` to
keep Python's allocator) or when the C library has no `malloc_trim` (musl, macOS). Every other
command runs as it is: they live for one audit at most.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Console entry point: `gdpr-auditor ...`."""
    use_c_allocator(sys.argv[1:2] == ["run"])
    from auditor.cli import main as run_command_line

    run_command_line()


def use_c_allocator(wanted: bool) -> None:
    """Execute this process again, the same command line, with `PYTHONMALLOC=malloc`, when
    `wanted` and it would help (see the module's documentation); return otherwise."""
    if not wanted or "PYTHONMALLOC" in os.environ:
        return
    from auditor.service.memory import can_release_freed_memory

    if not can_release_freed_memory():
        return
    os.environ["PYTHONMALLOC"] = "malloc"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
