"""A child process that hands files to the project's readers and says what came out.

Run as `python -m tests.hostile_worker`: one JSON request a line on stdin (`{"kind", "path"}`),
one JSON answer a line on stdout: `ok`, `error` (one of the project's errors, as the command line
reports them with exit 2 or 3) or `crash` (anything else, with its traceback). Its address space
is capped, so a document that blows up memory ends in a MemoryError here, reported as a crash,
not in the test runner being killed.
"""

from __future__ import annotations

import contextlib
import io
import json
import resource
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from auditor.cli import cli
from auditor.config import load_config
from auditor.consent.imports import ImportColumns, SubjectHasher, read_consents
from auditor.core.errors import AuditorError
from auditor.core.inventory import load_inventory
from auditor.core.policies import load_policies
from auditor.discovery.catalogue import load_catalogue
from auditor.probes.ipranges import load_range_file
from auditor.retention import load_retention_policies

MEMORY_LIMIT = 1 << 30  # bytes of heap per document (and for the whole worker): a guard
_HASHER = SubjectHasher(b"a-hostile-input-test-key")
_POLICIES = load_policies()


def _consents(path: Path, file_format: str) -> None:
    fmt = "csv" if file_format == "csv" else "json"
    for _ in read_consents(path, fmt, ImportColumns(), _HASHER):
        pass


def _command(*args: str) -> None:
    """Run a verb as `gdpr-auditor` would; its exit status 2 or 3 is the project's error."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli.main(list(args), prog_name="gdpr-auditor", standalone_mode=False)
        except SystemExit as exc:
            if exc.code in (2, 3):
                raise _CommandFailed(int(exc.code)) from None
            if exc.code not in (0, None):
                raise


class _CommandFailed(AuditorError):
    """The verb exited 2 or 3 with its own message."""


READERS: dict[str, Callable[[Path], object]] = {
    "inventory": lambda path: load_inventory([path], _POLICIES),
    "config": load_config,
    "retention": lambda path: load_retention_policies([path]),
    "consent-csv": lambda path: _consents(path, "csv"),
    "consent-json": lambda path: _consents(path, "json"),
    "fides": lambda path: _command("import", "fides", str(path)),
    "register-csv": lambda path: _command("import", "csv", str(path)),
    "catalogue": lambda path: load_catalogue(local=path),
    "policies": lambda path: load_policies(path),  # a directory with one file replaced
    "ip-ranges": load_range_file,
    "memory-hog": lambda path: bytearray(2 * MEMORY_LIMIT),  # shows the cap holds
}


def handle(kind: str, path: Path) -> dict[str, str]:
    try:
        READERS[kind](path)
    except AuditorError as exc:
        return {"outcome": "error", "detail": str(exc)[:2000]}
    except BaseException:  # noqa: BLE001 - whatever it is, the test wants to see it
        return {"outcome": "crash", "detail": traceback.format_exc()[-4000:]}
    return {"outcome": "ok", "detail": ""}


def main() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))
    for line in sys.stdin:
        request = json.loads(line)
        answer = handle(request["kind"], Path(request["path"]))
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
