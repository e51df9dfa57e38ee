"""Consent platform exports (CSV or JSON) -> consents keyed by an HMAC of the subject key, never
the key itself; every bad row is named by its line, and never by the subject key it holds.

The subject key is hashed as the text it is: `0042`, `42` and `42 ` are three subjects, as they
are to the SQL coverage check (`auditor.consent.coverage`). A JSON integer stands for its decimal
digits. The organisation's keys are hashed the same way (`hash_subject`), with the same secret
from GDPR_AUDITOR_SUBJECT_KEY, so that the two can be matched without storing either.

Formats:

- **CSV**: a header row naming the columns, UTF-8 (a byte order mark is skipped). An empty
  withdrawn cell means not withdrawn.
- **JSON**: an array of objects, or JSON Lines (one object per line). A missing or null
  withdrawn key means not withdrawn.

Timestamps are ISO 8601: a date (`2026-01-31`, that day's first instant in UTC), or a date and
time, with an offset (converted to UTC) or without one (read as UTC, as the coverage check reads
a timestamp without time zone).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal

from auditor.core import jsonsource
from auditor.core.consents import ImportedConsent
from auditor.core.errors import InvalidInputError, Issue

SUBJECT_KEY_ENV = "GDPR_AUDITOR_SUBJECT_KEY"
"""The environment variable holding the secret that subject keys are hashed with (HMAC-SHA256)."""
MIN_KEY_BYTES = 16
MAX_ISSUES = 20
"""Bad rows listed in one error; the count of the rest follows."""

Format = Literal["csv", "json"]


@dataclass(frozen=True, slots=True)
class ImportColumns:
    """Which columns (CSV) or keys (JSON) of an export hold what."""

    subject: str = "subject"
    granted_at: str = "granted_at"
    withdrawn_at: str = "withdrawn_at"


def subject_key(environ: Mapping[str, str]) -> bytes:
    """The secret subject keys are hashed with, from GDPR_AUDITOR_SUBJECT_KEY.

    Raises:
        InvalidInputError: it is unset, or shorter than 16 bytes.
    """
    text = environ.get(SUBJECT_KEY_ENV, "")
    if not text:
        message = (
            "is not set: imported consents hold subject keys only as keyed hashes (HMAC-SHA256) "
            "made with it; set it to a random secret of at least 16 bytes, the same for the "
            "import and for the daemon"
        )
        raise InvalidInputError([Issue(SUBJECT_KEY_ENV, message)])
    secret = text.encode("utf-8")
    if len(secret) < MIN_KEY_BYTES:
        message = f"is shorter than {MIN_KEY_BYTES} bytes: use a random secret"
        raise InvalidInputError([Issue(SUBJECT_KEY_ENV, message)])
    return secret


class SubjectHasher:
    """HMAC-SHA256 of subject keys with one secret, as 64 hex digits."""

    def __init__(self, secret: bytes) -> None:
        self._keyed = hmac.new(secret, digestmod=hashlib.sha256)

    def __call__(self, subject: str) -> str:
        """The keyed hash of a subject key's text (UTF-8)."""
        mac = self._keyed.copy()  # the key is set up once, not once per subject
        mac.update(subject.encode("utf-8", errors="surrogateescape"))
        return mac.hexdigest()


def hash_subject(secret: bytes, subject: str) -> str:
    """The keyed hash of one subject key (see SubjectHasher for many)."""
    return SubjectHasher(secret)(subject)


def file_digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex.

    Raises:
        InvalidInputError: the file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise InvalidInputError([Issue(str(path), f"cannot read: {exc.strerror or exc}")]) from None
    return digest.hexdigest()


def guess_format(path: Path) -> Format:
    """The format a file's name says (`.csv`; `.json`, `.jsonl`, `.ndjson`).

    Raises:
        InvalidInputError: the name says neither.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in {".json", ".jsonl", ".ndjson"}:
        return "json"
    message = "cannot tell the format from the file name: pass --format csv or --format json"
    raise InvalidInputError([Issue(str(path), message)])


def read_consents(
    path: Path, file_format: Format, columns: ImportColumns, hasher: SubjectHasher
) -> Iterator[ImportedConsent]:
    """Yield the consents of an export, in file order, subjects hashed.

    Rows are checked as they come; after the first bad one no more are yielded, but the rest of
    the file is still checked, so that the error lists every bad row (up to MAX_ISSUES).

    Raises:
        InvalidInputError: the file cannot be read, or has bad rows (after the last row).
    """
    rows = _csv_rows(path, columns) if file_format == "csv" else _json_rows(path)
    issues: list[Issue] = []
    bad = 0
    try:
        for line, row in rows:
            consent, problem = _consent(row, line, columns, hasher)
            if problem is not None:
                bad += 1
                if len(issues) < MAX_ISSUES:
                    issues.append(Issue(str(path), problem[1], field=problem[0], line=line))
            elif consent is not None and not issues:
                yield consent
    except _FileProblem as exc:
        issues.append(Issue(str(path), exc.message, line=exc.line))
        bad += 1
    except OSError as exc:
        issues.append(Issue(str(path), f"cannot read: {exc.strerror or exc}"))
        bad += 1
    if issues:
        if bad > len(issues):
            issues.append(Issue(str(path), f"... and {bad - len(issues)} more bad rows"))
        raise InvalidInputError(issues)


# --- rows -------------------------------------------------------------------------------------


class _FileProblem(Exception):
    """The file as a whole cannot be read as the format: no header, not JSON, ..."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(message)


def _csv_rows(path: Path, columns: ImportColumns) -> Iterator[tuple[int, Mapping[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as stream:
        reader = csv.DictReader(stream, restkey=_EXTRA, restval=_SHORT)
        try:
            header = reader.fieldnames
        except (csv.Error, UnicodeDecodeError) as exc:
            raise _FileProblem(f"not CSV: {exc}", 1) from None
        if not header:
            raise _FileProblem("empty: expected a header row naming the columns", 1)
        repeated = sorted(name for name, count in Counter(header).items() if count > 1)
        if repeated:
            # csv.DictReader would keep only the last of them, silently.
            listed = ", ".join(repr(name) for name in repeated)
            raise _FileProblem(f"column {listed} appears more than once in the header", 1)
        wanted = (columns.subject, columns.granted_at, columns.withdrawn_at)
        missing = [name for name in wanted if name not in header]
        if missing:
            listed = ", ".join(repr(name) for name in missing)
            raise _FileProblem(
                f"no column {listed} in the header (columns: {', '.join(header)}); name the "
                "columns with --subject-column, --granted-column and --withdrawn-column",
                1,
            )
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _FileProblem(f"not CSV: {exc}", reader.line_num) from None
            except UnicodeDecodeError:
                raise _FileProblem("not UTF-8 text", reader.line_num + 1) from None
            # The row's last line: its only one, unless a quoted field spans lines.
            yield reader.line_num, row


_EXTRA = "\0extra"
"""Where csv.DictReader puts the fields of a row beyond the header's columns."""
_SHORT: Any = object()
"""What csv.DictReader gives the columns a short row lacks."""


def _json_rows(path: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise _FileProblem("not UTF-8 text") from None
    start = _skip_space(text, 0)
    if start < len(text) and text[start] == "[":
        yield from _json_array(text, start)
        return
    # JSON Lines: one object per line; blank lines are skipped.
    for number, line in enumerate(io.StringIO(text), start=1):
        if line.strip():
            yield number, _json_object(line, number)


_DECODER = jsonsource.DECODER


def _json_array(text: str, start: int) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """The objects of a top-level JSON array, each with the line it starts on."""
    position = _skip_space(text, start + 1)
    line = 1 + text.count("\n", 0, position)
    counted = position  # `line` is the line of text[counted]
    if position < len(text) and text[position] == "]":
        return
    while True:
        line += text.count("\n", counted, position)
        counted = position
        try:
            value, end = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise _FileProblem(f"not JSON: {exc.msg}", exc.lineno) from None
        except (ValueError, RecursionError) as exc:
            # A duplicate key, a number too long, nesting too deep: named at the object's line.
            raise _FileProblem(f"not usable JSON: {jsonsource.problem(exc)}", line) from None
        if not isinstance(value, dict):
            raise _FileProblem("expected an object for each consent", line)
        yield line, value
        position = _skip_space(text, end)
        if position < len(text) and text[position] == "]":
            if _skip_space(text, position + 1) != len(text):
                raise _FileProblem("not JSON: text after the array")
            return
        if position >= len(text) or text[position] != ",":
            raise _FileProblem("not JSON: expected ',' or ']'", 1 + text.count("\n", 0, position))
        position = _skip_space(text, position + 1)


def _json_object(line: str, number: int) -> Mapping[str, Any]:
    try:
        value = jsonsource.loads(line)
    except json.JSONDecodeError as exc:
        raise _FileProblem(f"not JSON: {exc.msg}", number) from None
    except (ValueError, RecursionError) as exc:
        raise _FileProblem(f"not usable JSON: {jsonsource.problem(exc)}", number) from None
    if not isinstance(value, dict):
        raise _FileProblem("expected an object for each consent", number)
    return value


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


# --- values -----------------------------------------------------------------------------------


def _consent(
    row: Mapping[str, Any], line: int, columns: ImportColumns, hasher: SubjectHasher
) -> tuple[ImportedConsent | None, tuple[str | None, str] | None]:
    """The row's consent, or what is wrong with it: (column, message), never the subject."""
    if _EXTRA in row:
        return None, (None, "more fields than the header has columns")
    if any(value is _SHORT for value in row.values()):
        return None, (None, "fewer fields than the header has columns")
    subject = _subject(row.get(columns.subject))
    if subject is None:
        return None, (columns.subject, "expected a subject key (text or an integer), got none")
    if isinstance(subject, _Problem):
        return None, (columns.subject, subject.message)
    granted = _instant(row.get(columns.granted_at))
    if granted is None:
        return None, (columns.granted_at, "required: when the consent was granted")
    if isinstance(granted, _Problem):
        return None, (columns.granted_at, granted.message)
    withdrawn = _instant(row.get(columns.withdrawn_at))
    if isinstance(withdrawn, _Problem):
        return None, (columns.withdrawn_at, withdrawn.message)
    if withdrawn is not None and withdrawn < granted:
        return None, (columns.withdrawn_at, "withdrawn before it was granted")
    return ImportedConsent(hasher(subject), granted, withdrawn, line), None


@dataclass(frozen=True, slots=True)
class _Problem:
    message: str


def _subject(value: object) -> str | _Problem | None:
    # The messages describe the value, never repeat it: it identifies a person.
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        kind = "a boolean" if isinstance(value, bool) else f"a JSON {_json_kind(value)}"
        return _Problem(f"expected a subject key (text or an integer), got {kind}")
    return str(value)


def _json_kind(value: object) -> str:
    if isinstance(value, float):
        return "number with a fraction"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _instant(value: object) -> datetime | _Problem | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return _Problem(f"expected an ISO 8601 date or timestamp, got a JSON {_json_kind(value)}")
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        # Not repeated: with the columns mixed up, the value could be a subject key.
        return _Problem("not an ISO 8601 date or timestamp (2026-01-31, 2026-01-31T09:30:00Z)")
    # Without an offset, a timestamp is read as UTC, as the coverage check reads one.
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:
        return _Problem("outside the years 1 to 9999 once converted to UTC")
