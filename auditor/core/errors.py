"""The project's exception tree; compliance problems are findings, never exceptions.

    AuditorError
    ├── InvalidInputError        config, inventory or policy data that cannot be used (exit 2)
    │                            carries every Issue found, each naming file, entry, field, line
    ├── InvalidRequestError      a request the state store refuses: a bad waiver (exit 2)
    │   └── FindingNotFoundError no finding has that id (also a LookupError)
    ├── StoreError               the state database could not be reached, read or written (exit 3)
    │   └── SchemaVersionError   its schema is older or newer than this code's (exit 2)
    └── AuditUnavailableError    the audit could not run at all (exit 3)
        ├── GeoDataError         a GeoIP database or IP-range file is missing or corrupt
        ├── ResolverError        the DNS resolver could not be set up
        ├── MissingDriverError   a database URL needs a driver that is not installed
        ├── ListenError          the metrics address cannot be served (in use, not ours)
        └── BrowserUnavailableError  the web audit's browser cannot be started

A failing DNS lookup is not an exception: it becomes an observation with a reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class AuditorError(Exception):
    """Base class of every error the project raises on purpose."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in one input: where it is and what is wrong."""

    source: str
    message: str
    entry: str | None = None
    field: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.source + (f":{self.line}" if self.line is not None else "")
        parts = [where]
        if self.entry is not None:
            parts.append(self.entry)
        if self.field is not None:
            parts.append(self.field)
        return f"{': '.join(parts)}: {self.message}"


class InvalidInputError(AuditorError):
    """Configuration, inventory or policy data is invalid; `issues` lists every problem found."""

    def __init__(self, issues: Iterable[Issue]) -> None:
        self.issues: Sequence[Issue] = tuple(issues)
        count = len(self.issues)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__(head + "".join(f"\n  {issue}" for issue in self.issues))


class InvalidRequestError(AuditorError):
    """A request the state store refuses as asked: a waiver without a reason, expired already, ..."""


class FindingNotFoundError(InvalidRequestError, LookupError):
    """No stored finding has the id asked for."""

    def __init__(self, finding_id: int) -> None:
        self.finding_id = finding_id
        super().__init__(f"no finding with id {finding_id}")


class StoreError(AuditorError):
    """The state database could not be reached, read or written; the message names it, no password."""


class SchemaVersionError(StoreError):
    """The state database's schema version is not the one this code uses; nothing was changed."""

    def __init__(self, database: str, found: int, needed: int) -> None:
        self.database = database
        self.found = found
        self.needed = needed
        if found < needed:
            advice = "run `gdpr-auditor db upgrade --config FILE` to upgrade it"
        else:
            advice = "this gdpr-auditor is older than the database; upgrade gdpr-auditor"
        super().__init__(
            f"the state database {database} has schema version {found}, "
            f"this gdpr-auditor uses version {needed}: {advice}"
        )


class AuditUnavailableError(AuditorError):
    """The audit could not run at all (missing data, unusable resolver)."""


class GeoDataError(AuditUnavailableError):
    """A GeoIP database or IP-range file is missing, unreadable or not what it claims to be."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class ResolverError(AuditUnavailableError):
    """The DNS resolver could not be set up (bad nameserver, unreadable zone file)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


DRIVER_EXTRAS = {"psycopg": "postgres", "pymysql": "mysql"}
"""The drivers the package's extras install, by module: `pip install 'gdpr-auditor[postgres]'`."""

_DATABASE_NAMES = {"postgresql": "PostgreSQL", "mysql": "MySQL", "mariadb": "MariaDB"}


def missing_driver(module: str, backend: str) -> str:
    """Say which driver a database needs and how to install it, for a message's end."""
    database = _DATABASE_NAMES.get(backend, backend)
    extra = DRIVER_EXTRAS.get(module)
    install = f"pip install 'gdpr-auditor[{extra}]'" if extra else f"pip install {module}"
    return f"needs the {database} driver {module}, which is not installed: {install}"


class MissingDriverError(AuditUnavailableError):
    """A database URL names a driver (a Python package) that is not installed; the message says
    which, and how to install it."""


class ListenError(AuditUnavailableError):
    """The daemon cannot serve its metrics address: in use by another process, or not an
    address of this machine."""

    def __init__(self, address: str, reason: str, in_use: bool) -> None:
        self.address = address
        self.reason = reason
        advice = (
            "another gdpr-auditor running? set metrics.listen" if in_use else ("set metrics.listen")
        )
        super().__init__(f"cannot serve metrics on {address}: {reason} ({advice})")


class BrowserUnavailableError(AuditUnavailableError):
    """The browser the web audit drives cannot be started: Playwright or Chromium is missing, or
    Chromium fails to launch; the message says how to install what is missing."""
