"""The record `geodb update` keeps beside the range files: when each file was fetched, and from where.

Cloudflare's lists and DigitalOcean's geofeed carry no build date, so the day they were fetched is
the only honest age they have. A file's modification time is not: a copy, a restore from backup
or a package install changes it without the data getting any newer. The record holds each file's
SHA-256, so a file replaced by other means than `geodb update` is not dated by a fetch that
brought other content.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditor.core import jsonsource
from auditor.core.errors import GeoDataError

RECORD_NAME = "fetched.json"
"""The record's file name in the range-file directory (no range file has this name)."""

RECORD_FORMAT = 1

FILE_MODE = 0o644
"""Range data is public: readable by the daemon's dynamic user whoever ran `geodb update`."""

DIRECTORY_MODE = 0o755
"""A directory `geodb update` creates: listable by the daemon's dynamic user, whatever the
umask of the user who ran it (root's is often 077)."""


def make_directory(path: Path) -> None:
    """Create `path` and any missing parents with DIRECTORY_MODE, whatever the umask; a
    directory that exists already is left as it is.

    Raises:
        OSError: a directory cannot be created.
    """
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        os.chmod(directory, DIRECTORY_MODE)


@dataclass(frozen=True, slots=True)
class Fetched:
    """When `geodb update` fetched one file, from which URL, and the SHA-256 of what it wrote."""

    at: datetime  # UTC
    url: str
    sha256: str


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def read_fetch_record(directory: Path) -> dict[str, Fetched]:
    """Return the fetch record of a range-file directory by file name; empty when there is none.

    Raises:
        GeoDataError: the record exists but cannot be read or is malformed (naming the record).
    """
    path = directory / RECORD_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise GeoDataError(str(path), f"cannot read: {exc.strerror or exc}") from None
    try:
        data = jsonsource.loads(text)
    except json.JSONDecodeError as exc:
        raise GeoDataError(str(path), f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:  # a duplicate key, a huge number, deep nesting
        raise GeoDataError(str(path), f"not usable JSON: {jsonsource.problem(exc)}") from None
    if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
        raise GeoDataError(str(path), f"not a fetch record of format {RECORD_FORMAT}")
    files = data.get("files")
    if not isinstance(files, dict):
        raise GeoDataError(str(path), "files: expected an object")
    return {name: _entry(path, name, item) for name, item in files.items()}


def _entry(path: Path, name: str, item: Any) -> Fetched:
    where = f"files.{name}"
    if not isinstance(item, dict):
        raise GeoDataError(str(path), f"{where}: expected an object")
    at, url, sha = item.get("fetched"), item.get("url"), item.get("sha256")
    if not isinstance(url, str) or not isinstance(sha, str) or not isinstance(at, str):
        raise GeoDataError(str(path), f"{where}: needs fetched, url and sha256 as strings")
    try:
        stamp = datetime.fromisoformat(at)
    except ValueError:
        raise GeoDataError(str(path), f"{where}.fetched: {at!r} is not a timestamp") from None
    if stamp.tzinfo is None:
        raise GeoDataError(str(path), f"{where}.fetched: {at!r} has no time zone")
    return Fetched(stamp.astimezone(UTC), url, sha)


def fetched_at(record: Mapping[str, Fetched], name: str, content: bytes) -> datetime | None:
    """Return when the file of this name and content was fetched, or None if the record does
    not say (not fetched by `geodb update`, or replaced since)."""
    entry = record.get(name)
    if entry is None or entry.sha256 != digest(content):
        return None
    return entry.at


def write_fetch_record(directory: Path, fetched: Mapping[str, Fetched]) -> Path:
    """Add or replace these files' entries in the directory's record; return its path.

    Entries of other files are kept; a record that cannot be read is replaced, since the files
    it described are dated again by their next fetch. Written atomically and readable by all.

    Raises:
        OSError: the record cannot be written.
    """
    try:
        files = dict(read_fetch_record(directory))
    except GeoDataError:
        files = {}
    files.update(fetched)
    document = {
        "format": RECORD_FORMAT,
        "files": {
            name: {
                "fetched": entry.at.astimezone(UTC).isoformat(timespec="seconds"),
                "url": entry.url,
                "sha256": entry.sha256,
            }
            for name, entry in sorted(files.items())
        },
    }
    path = directory / RECORD_NAME
    replace_atomically(path, (json.dumps(document, indent=2) + "\n").encode())
    return path


def replace_atomically(path: Path, content: bytes) -> None:
    """Write `content` to a temporary file beside `path`, then rename it over `path`.

    The file is made world-readable: mkstemp creates it for its owner only, and the daemon runs
    as a dynamic user that did not write it.
    """
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(handle, "wb") as temp:
            os.fchmod(temp.fileno(), FILE_MODE)
            temp.write(content)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
