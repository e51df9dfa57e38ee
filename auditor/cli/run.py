"""`run`: the daemon, until SIGTERM; exit 0 after a clean stop, 2 invalid input, 3 cannot start."""

from __future__ import annotations

import sys
from pathlib import Path

from auditor.cli import EXIT_INVALID, EXIT_UNAVAILABLE, cli, config_option, handles_errors, say
from auditor.core.errors import SchemaVersionError, StoreError


@cli.command()
@config_option
@handles_errors
def run(config_path: Path) -> None:
    """Run the daemon: scheduled audits, the state store and the metrics endpoint.

    Logs go to stderr: JSON lines when it is not a terminal (under systemd, the journal).
    SIGHUP reloads the configuration, inventory and policy data, keeping the last good ones if
    the new ones are invalid; SIGTERM stops after the running job (at most 20 s).

    Exit status: 0 after a clean stop, 2 invalid configuration, inventory or policy data, or a
    state database of another schema version, 3 the daemon could not start (database
    unreachable, metrics address in use, GeoIP data unusable).
    """
    from auditor.service.daemon import run_daemon

    try:
        status = run_daemon(config_path)
    except SchemaVersionError as exc:
        say(f"gdpr-auditor: {exc}", err=True)
        sys.exit(EXIT_INVALID)
    except StoreError as exc:
        say(f"gdpr-auditor: cannot start: {exc}", err=True)
        sys.exit(EXIT_UNAVAILABLE)
    sys.exit(status)
