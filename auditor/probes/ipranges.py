"""Cloud providers' published IP-range files: parsing, a longest-prefix lookup table, and download."""

from __future__ import annotations

import bisect
import ipaddress
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.core.errors import GeoDataError, InvalidInputError, Issue
from auditor.probes.fetchrecord import (
    Fetched,
    digest,
    fetched_at,
    make_directory,
    read_fetch_record,
    replace_atomically,
    write_fetch_record,
)
from auditor.probes.rangeformats import (
    GENERIC_SERVICES,
    NAME_DATE,
    PROVIDERS,
    RangeEntry,
    RangeFile,
    is_range_file_name,
    parse_range_bytes,
)

if TYPE_CHECKING:  # only a download needs requests: locating with the files does not
    import requests

AZURE_DOWNLOAD_PAGE = "https://www.microsoft.com/en-us/download/details.aspx?id=56519"
"""Microsoft's page for the weekly Service Tags file, whose direct URL changes every week."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def load_range_file(path: Path, record: Mapping[str, Fetched] | None = None) -> RangeFile:
    """Read and parse one published range file; `record` is its directory's fetch record
    (None: read it from the file's directory).

    Raises:
        GeoDataError: the file is missing, unreadable, of an unknown name, or malformed, or the
            fetch record beside it is malformed.
    """
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise GeoDataError(str(path), f"cannot read: {exc.strerror or exc}") from None
    if record is None:
        record = read_fetch_record(path.parent)
    return parse_range_bytes(content, path.name, str(path), fetched_at(record, path.name, content))


def load_range_directory(directory: Path) -> list[RangeFile]:
    """Parse every known range file in a directory, ignoring files of other names.

    Of several dated files of one series (last week's and this week's Azure Service Tags), only
    the newest is loaded, so a forgotten old file cannot bring back networks that have moved.

    Raises:
        GeoDataError: the directory is missing, or a known file in it or its fetch record is
            malformed.
    """
    if not directory.is_dir():
        raise GeoDataError(str(directory), "no such directory")
    try:
        paths = [p for p in directory.iterdir() if p.is_file() and is_range_file_name(p.name)]
    except OSError as exc:
        raise GeoDataError(str(directory), f"cannot list: {exc.strerror or exc}") from None
    newest: dict[str, Path] = {}
    for path in sorted(paths):  # dates are YYYYMMDD, so the last of a series is the newest
        newest[NAME_DATE.sub("", path.name.lower())] = path
    record = read_fetch_record(directory)
    return [load_range_file(path, record) for path in sorted(newest.values())]


# --- lookup ---------------------------------------------------------------------------------


def _preference(entry: RangeEntry) -> tuple[bool, bool]:
    """Sort key among entries for one network: regional first, then specific services."""
    return (entry.region is None, entry.service in GENERIC_SERVICES)


def parse_address(text: str) -> IpAddress | None:
    """Return the address in `text` (an IPv4-mapped IPv6 address as IPv4), or None if invalid.

    Parsed with inet_pton, several times faster than the ipaddress module's text parser.
    """
    try:
        return ipaddress.IPv4Address(int.from_bytes(socket.inet_pton(socket.AF_INET, text)))
    except (OSError, ValueError, TypeError):
        pass
    try:
        number = int.from_bytes(socket.inet_pton(socket.AF_INET6, text))
    except (OSError, ValueError, TypeError):
        return None
    if number >> 32 == 0xFFFF:  # ::ffff:a.b.c.d
        return ipaddress.IPv4Address(number & 0xFFFFFFFF)
    return ipaddress.IPv6Address(number)


class IpRangeTable:
    """Finds the most specific published network holding an address.

    The nested networks of each address family are flattened once into sorted, disjoint
    intervals, each carrying the most specific entry covering it, so a lookup is one binary
    search however many networks there are.
    """

    def __init__(self, entries: Iterable[RangeEntry]) -> None:
        networks: dict[int, dict[tuple[int, int], RangeEntry]] = {4: {}, 6: {}}
        count = 0
        for entry in entries:
            net = ipaddress.ip_network(entry.network)
            span = (int(net.network_address), int(net.broadcast_address))
            current = networks[net.version].get(span)
            if current is None or _preference(entry) < _preference(current):
                networks[net.version][span] = entry
            count += 1
        self._count = count
        self._intervals = {version: _flatten(spans) for version, spans in networks.items()}

    @classmethod
    def from_files(cls, files: Iterable[RangeFile]) -> IpRangeTable:
        """Build a table from every entry of the given range files."""
        return cls(entry for file in files for entry in file.entries)

    def __len__(self) -> int:
        return self._count

    def lookup(self, address: str | IpAddress) -> RangeEntry | None:
        """Return the entry of the longest published prefix holding the address, or None.

        Among entries for the same network, one with a region wins over one without, and a
        specific service over a catch-all one (EC2 over AMAZON).

        Raises:
            ValueError: `address` is not an IP address.
        """
        ip = parse_address(address) if isinstance(address, str) else address
        if ip is None:
            raise ValueError(f"{address!r} is not an IP address")
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        starts, found = self._intervals[ip.version]
        index = bisect.bisect_right(starts, int(ip)) - 1
        return found[index] if index >= 0 else None


def _flatten(
    spans: Mapping[tuple[int, int], RangeEntry],
) -> tuple[list[int], list[RangeEntry | None]]:
    """Turn nested networks (first, last address) into disjoint intervals given by their starts.

    CIDR networks either nest or are disjoint, so a sweep in address order with a stack of the
    networks around the cursor finds, for every interval, the innermost network covering it.
    """
    starts: list[int] = []
    found: list[RangeEntry | None] = []

    def begin(start: int, entry: RangeEntry | None) -> None:
        if starts and starts[-1] == start:
            found[-1] = entry  # an inner network starting where its outer one does
        else:
            starts.append(start)
            found.append(entry)

    around: list[tuple[int, RangeEntry]] = []  # (last address, entry), outermost first

    def close_until(start: int) -> None:
        while around and around[-1][0] < start:
            last, _ = around.pop()
            begin(last + 1, around[-1][1] if around else None)

    # Outer networks before the inner ones starting at the same address.
    for (first, last), entry in sorted(spans.items(), key=lambda item: (item[0][0], -item[0][1])):
        close_until(first)
        begin(first, entry)
        around.append((last, entry))
    close_until(1 << 128)
    return starts, found


# --- download -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RangeSource:
    """Where one provider publishes one range file, and the name it is saved under."""

    provider: str
    filename: str
    url: str


SOURCES: tuple[RangeSource, ...] = (
    RangeSource("aws", "ip-ranges.json", "https://ip-ranges.amazonaws.com/ip-ranges.json"),
    RangeSource("gcp", "cloud.json", "https://www.gstatic.com/ipranges/cloud.json"),
    RangeSource(
        "oci", "public_ip_ranges.json", "https://docs.oracle.com/iaas/tools/public_ip_ranges.json"
    ),
    RangeSource("cloudflare", "ips-v4", "https://www.cloudflare.com/ips-v4"),
    RangeSource("cloudflare", "ips-v6", "https://www.cloudflare.com/ips-v6"),
    RangeSource("do", "digitalocean.csv", "https://www.digitalocean.com/geo/google.csv"),
)
"""The files `fetch_ip_ranges` downloads; Azure's is not here (see AZURE_DOWNLOAD_PAGE)."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of downloading one range file; a failure leaves the previous file in place."""

    provider: str
    path: str
    url: str | None
    ok: bool
    entries: int | None = None
    built: datetime | None = None  # the provider's build time, else `fetched`
    error: str | None = None
    fetched: datetime | None = None  # when it was downloaded (recorded in fetched.json)
    sha256: str | None = None


def _check_providers(providers: Iterable[str] | None) -> list[str]:
    chosen = [s.provider for s in SOURCES] if providers is None else list(providers)
    unknown = sorted(set(chosen) - set(PROVIDERS))
    if unknown:
        known = ", ".join(PROVIDERS)
        raise InvalidInputError(
            [Issue("providers", f"unknown provider {name!r}; known: {known}") for name in unknown]
        )
    return chosen


def fetch_ip_ranges(
    session: requests.Session,
    directory: Path,
    providers: Iterable[str] | None = None,
    timeout: float = 30,
    urls: Mapping[str, str] | None = None,
    *,
    clock: Callable[[], datetime],
) -> list[FetchResult]:
    """Download the providers' current range files into `directory`, one result per file.

    Each file is parsed before it replaces the previous one, and replaced atomically; a failed
    or malformed download is reported in its result and leaves the old file untouched. `urls`
    overrides download addresses by file name (`{"ip-ranges.json": "http://..."}`). Azure,
    when asked for, is reported as needing a manual download. When each file was fetched (by
    `clock`) is recorded in the directory's fetched.json, which dates the files that carry no
    build time of their own.

    Raises:
        InvalidInputError: an unknown provider name was given.
        GeoDataError: the directory cannot be created, or the fetch record cannot be written.
    """
    chosen = _check_providers(providers)
    try:
        make_directory(directory)
    except OSError as exc:
        raise GeoDataError(str(directory), f"cannot create: {exc.strerror or exc}") from None
    overrides = urls or {}
    results: list[FetchResult] = []
    for source in SOURCES:
        if source.provider in chosen:
            url = overrides.get(source.filename, source.url)
            path = directory / source.filename
            results.append(_fetch_one(session, source.provider, url, path, timeout, clock))
    _record_fetches(directory, results)
    if "azure" in chosen:
        results.append(
            FetchResult(
                "azure",
                str(directory),
                None,
                ok=False,
                error="Microsoft publishes Service Tags under a URL that changes weekly: download "
                f"ServiceTags_Public_YYYYMMDD.json from {AZURE_DOWNLOAD_PAGE} into this directory",
            )
        )
    return results


def _fetch_one(
    session: requests.Session,
    provider: str,
    url: str,
    path: Path,
    timeout: float,
    clock: Callable[[], datetime],
) -> FetchResult:
    import requests

    def failed(reason: str) -> FetchResult:
        return FetchResult(provider, str(path), url, ok=False, error=reason)

    try:
        with session.get(url, timeout=timeout) as response:
            if response.status_code != 200:
                return failed(f"HTTP {response.status_code} {response.reason or ''}".rstrip())
            content = response.content
    except requests.RequestException as exc:
        return failed(f"download failed: {exc}")
    # The fetch, not the server's Last-Modified, dates a file without a build time: a list that
    # has not changed for a year is current when it was fetched today.
    fetched = clock()
    try:
        parsed = parse_range_bytes(content, path.name, url, fetched)
        replace_atomically(path, content)
    except GeoDataError as exc:
        return failed(f"downloaded file is not usable: {exc.reason}")
    except OSError as exc:
        return failed(f"cannot write: {exc.strerror or exc}")
    return FetchResult(
        provider,
        str(path),
        url,
        ok=True,
        entries=len(parsed.entries),
        built=parsed.built,
        fetched=fetched,
        sha256=digest(content),
    )


def _record_fetches(directory: Path, results: Iterable[FetchResult]) -> None:
    fetched = {
        Path(r.path).name: Fetched(r.fetched, r.url, r.sha256)
        for r in results
        if r.ok and r.fetched is not None and r.url is not None and r.sha256 is not None
    }
    if not fetched:
        return
    try:
        write_fetch_record(directory, fetched)
    except OSError as exc:
        # The files are in place but undated: say so rather than let them look fresh or old.
        reason = f"cannot write the fetch record: {exc.strerror or exc}"
        raise GeoDataError(str(directory), reason) from None
