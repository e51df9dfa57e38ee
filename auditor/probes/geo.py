"""Locates addresses with the providers' IP-range files first, then mmdb files (GeoIP2, DB-IP,
IPinfo), each read by the layout its records turn out to have."""

from __future__ import annotations

import functools
import ipaddress
import itertools
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Self

import maxminddb

from auditor.core.errors import GeoDataError
from auditor.core.model import Location
from auditor.core.ports import DataSet
from auditor.probes.ipranges import (
    IpAddress,
    IpRangeTable,
    load_range_directory,
    load_range_file,
    parse_address,
)
from auditor.probes.mmdblayout import (
    ASN_LAYOUTS,
    COUNTRY_LAYOUTS,
    AsnLayout,
    CountryLayout,
    Layout,
    Record,
    choose,
)
from auditor.probes.rangeformats import RangeEntry, RangeFile

RegionCountry = Callable[[str, str], str | None]
"""Maps (provider, region or zone as published) to an ISO 3166-1 alpha-2 code, or None."""

# Codes some databases give for space that is not in one country (RIR pools, anycast, unknown).
_PSEUDO_COUNTRIES = frozenset({"EU", "AP", "A1", "A2", "O1", "ZZ"})

_NO_EDGE_SERVICES: Mapping[str, frozenset[str]] = MappingProxyType({})
_NO_EDGE_ASNS: Mapping[int, str] = MappingProxyType({})


def _no_region_country(provider: str, region: str) -> str | None:
    return None


_SAMPLE = 256
"""How many records are read, at opening, to recognise a database's layout."""


class _Mmdb:
    """One open mmdb file, kept in memory, and the layout its records were found to have."""

    def __init__(self, path: Path, kind: str, label: str, layouts: Sequence[Layout]) -> None:
        self.path = path
        self.kind = kind
        if not path.is_file():
            raise GeoDataError(str(path), "not a file" if path.exists() else "no such file")
        try:
            # Read into memory, never memory-mapped from the file itself: a file replaced in
            # place (`cp new old` truncates it) would kill the process with SIGBUS at the next
            # lookup. A private in-memory copy is read by the C reader (ten times faster than
            # the pure-Python one) where the platform allows, else by the pure-Python reader.
            self.identity = file_identity(path)
            self.reader = open_private_copy(path)
        except maxminddb.InvalidDatabaseError as exc:
            # The library's usual message repeats the path and asks a question; say it plainly.
            detail = "no readable metadata" if str(path) in str(exc) else str(exc)
            raise GeoDataError(str(path), f"not a valid MaxMind DB file ({detail})") from None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            # Unreadable files, and metadata missing keys or holding values of the wrong type.
            raise GeoDataError(str(path), f"cannot open: {exc}") from None
        metadata = self.reader.metadata()
        self.database_type: str = metadata.database_type
        self.build_epoch: int = metadata.build_epoch
        try:
            self.layout: Layout = self._recognise(label, layouts)
        except BaseException:
            self.reader.close()
            raise

    def _recognise(self, label: str, layouts: Sequence[Layout]) -> Layout:
        """The layout of the first records; the type name is not trusted (DB-IP, IPinfo and
        MaxMind's Enterprise edition name theirs as they like)."""
        try:
            sample = [record for _, record in itertools.islice(iter(self.reader), _SAMPLE)]
        except (maxminddb.InvalidDatabaseError, ValueError, IndexError, KeyError) as exc:
            raise GeoDataError(str(self.path), f"corrupt database: {exc}") from None
        layout = choose(layouts, sample)
        if layout is not None:
            return layout
        found = "holds no records" if not sample else "its records do not hold one"
        expected = "; ".join(known.name for known in layouts)
        raise GeoDataError(
            str(self.path),
            f"database type {self.database_type!r} is not {label} database: {found} "
            f"(expected records laid out as {expected})",
        )

    def record(self, ip: IpAddress) -> tuple[Record, int] | None:
        """Return the address's record and its network's prefix length, or None when absent."""
        try:
            record, prefix = self.reader.get_with_prefix_len(ip)
        except maxminddb.InvalidDatabaseError as exc:
            raise GeoDataError(str(self.path), f"corrupt database: {exc}") from None
        except ValueError:
            # An IPv6 address asked of an IPv4-only database is simply not in it.
            return None
        if not isinstance(record, Mapping):
            return None
        return record, prefix

    def dataset(self) -> DataSet:
        built = datetime.fromtimestamp(self.build_epoch, tz=UTC) if self.build_epoch else None
        return DataSet(
            self.kind,
            self.database_type,
            str(self.path),
            built,
            dated_by="build" if built else None,
        )

    def changed(self) -> bool:
        """Whether the file on disk is no longer the one read (replaced, rewritten or gone)."""
        try:
            return file_identity(self.path) != self.identity
        except OSError:
            return True

    def close(self) -> None:
        self.reader.close()


def open_private_copy(path: Path) -> maxminddb.Reader:
    """Open an mmdb file as a copy in this process's memory that no other process can change.

    With the C extension and memfd_create (Linux), the copy is an anonymous memory file mapped
    by libmaxminddb; elsewhere the pure-Python reader reads the file into memory.
    """
    extension = getattr(maxminddb, "_extension", None)
    memfd_create = getattr(os, "memfd_create", None)
    if extension is None or memfd_create is None or not Path("/proc/self/fd").is_dir():
        return maxminddb.open_database(str(path), maxminddb.MODE_MEMORY)
    data = path.read_bytes()
    fd = memfd_create("gdpr-auditor-mmdb", getattr(os, "MFD_CLOEXEC", 0))
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        # libmaxminddb maps the file by path and closes its own descriptor; the mapping keeps
        # the memory file alive after ours is closed.
        return maxminddb.open_database(f"/proc/self/fd/{fd}", maxminddb.MODE_MMAP_EXT)
    finally:
        os.close(fd)


def file_identity(path: Path) -> tuple[int, int, int, int]:
    """Device, inode, modification time and size: what changes when a file is replaced."""
    status = path.stat()
    return status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size


class MmdbGeoLocator:
    """A GeoLocator reading cloud IP-range files and GeoIP2/GeoLite2/DB-IP mmdb files.

    An address in a published cloud range is located by its provider's region (the region is
    where the data is; GeoIP data often gives the provider's registration country instead), or
    by its zone where the range file names one (an AWS Local Zone can be in another country than
    its region). Other addresses, and range entries whose region or zone the mapping does not
    know, are located by the country database; an unknown zone is never given its region's
    country. The ASN database, when given, adds the autonomous system to every location.
    """

    def __init__(
        self,
        country_db: Path,
        asn_db: Path | None = None,
        ip_ranges: Path | None = None,
        region_country: RegionCountry = _no_region_country,
        edge_services: Mapping[str, frozenset[str]] = _NO_EDGE_SERVICES,
        edge_asns: Mapping[int, str] = _NO_EDGE_ASNS,
        cache_size: int = 65536,
    ) -> None:
        """Open the databases and load the range files.

        `ip_ranges` is a directory of published range files or one such file. `edge_services`
        maps a provider to the services whose ranges are CDN/anycast edges ("*" for all);
        `edge_asns` maps edge autonomous systems to a name.

        Raises:
            GeoDataError: a database or range file is missing, corrupt, or of the wrong type.
        """
        self._country = _Mmdb(country_db, "geoip-country", "a country", COUNTRY_LAYOUTS)
        self._asn: _Mmdb | None = None
        try:
            if asn_db is not None:
                self._asn = _Mmdb(asn_db, "geoip-asn", "an ASN", ASN_LAYOUTS)
            self._range_files = _load_ranges(ip_ranges)
        except BaseException:
            self.close()
            raise
        self._ranges = IpRangeTable.from_files(self._range_files)
        self._region_country = region_country
        self._edge_services = edge_services
        self._edge_asns = edge_asns
        self._cached = functools.lru_cache(maxsize=cache_size)(self._locate)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the mmdb files."""
        self._country.close()
        if self._asn is not None:
            self._asn.close()

    def changed(self) -> list[str]:
        """The mmdb files replaced or rewritten on disk since they were read (in memory)."""
        return [
            str(db.path) for db in (self._country, self._asn) if db is not None and db.changed()
        ]

    def locate(self, address: str) -> Location:
        """Return where the address is; an unknown or malformed address has `country=None`.

        Raises:
            GeoDataError: a database turned out to be corrupt while reading it.
        """
        return self._cached(address)

    def forget(self) -> None:
        """Drop the locations looked up so far: the daemon's audit, once it has them all, so
        that they go with its result rather than outlive it among memory it has freed."""
        self._cached.cache_clear()

    def datasets(self) -> list[DataSet]:
        """Return the loaded databases and range files with their build times."""
        sets = [self._country.dataset()]
        if self._asn is not None:
            sets.append(self._asn.dataset())
        sets.extend(
            DataSet("ip-ranges", f.provider, f.path, f.built, len(f.entries), f.dated_by)
            for f in self._range_files
        )
        return sets

    def unmapped(self) -> list[UnmappedName]:
        """Return the regions and zones of the loaded range files that the mapping lacks."""
        return unmapped_names(self._range_files, self._region_country)

    def _locate(self, address: str) -> Location:
        ip = parse_address(address.strip())
        if ip is None:
            return Location(address=address, country=None, source="none")
        asn, asn_org = self._lookup_asn(ip)
        entry = self._ranges.lookup(ip)
        if entry is not None:
            return self._from_range(address, ip, entry, asn, asn_org)
        country, network = self._lookup_country(ip)
        return Location(
            address=address,
            country=country,
            source="geoip" if country is not None else "none",
            network=network,
            asn=asn,
            asn_org=asn_org,
            edge=asn is not None and asn in self._edge_asns,
        )

    def _from_range(
        self, address: str, ip: IpAddress, entry: RangeEntry, asn: int | None, asn_org: str | None
    ) -> Location:
        source = sys.intern(f"ip-ranges:{entry.provider}")
        country = entry.country
        if country is None and entry.region is not None:
            # The zone alone decides: falling back to its region would place a Local Zone in
            # Querétaro (Mexico) in the US, making a transfer look lawful on a guess.
            country = self._region_country(entry.provider, entry.zone or entry.region)
        if country is None:
            # A global or unknown region or zone: the provider is known, the country is GeoIP's.
            country, _ = self._lookup_country(ip)
            if country is not None:
                source = "geoip"
        return Location(
            address=address,
            country=country,
            source=source,
            provider=entry.provider,
            region=entry.region,
            zone=entry.zone,
            service=entry.service,
            network=entry.network,
            asn=asn,
            asn_org=asn_org,
            edge=self._is_edge(entry, asn),
        )

    def _is_edge(self, entry: RangeEntry, asn: int | None) -> bool:
        services = self._edge_services.get(entry.provider, frozenset())
        if "*" in services or (entry.service is not None and entry.service in services):
            return True
        return asn is not None and asn in self._edge_asns

    def _lookup_country(self, ip: IpAddress) -> tuple[str | None, str | None]:
        found = self._country.record(ip)
        if found is None:
            return None, None
        record, prefix = found
        layout = self._country.layout
        iso = layout.country(record) if isinstance(layout, CountryLayout) else None
        if not iso or iso.upper() in _PSEUDO_COUNTRIES:
            iso = None
        # Interned, as the organisations below: a large audit's locations share a few dozen.
        return (sys.intern(iso.upper()) if iso else None), _network_text(ip, prefix)

    def _lookup_asn(self, ip: IpAddress) -> tuple[int | None, str | None]:
        found = self._asn.record(ip) if self._asn is not None else None
        if found is None or self._asn is None:
            return None, None
        layout = self._asn.layout
        if not isinstance(layout, AsnLayout):
            return None, None
        number, organisation = layout.asn(found[0])
        if number is not None:
            number = _ASNS.setdefault(number, number)  # one object per AS, as for its name
        return number, (sys.intern(organisation) if organisation is not None else None)


_ASNS: dict[int, int] = {}


@functools.lru_cache(maxsize=4096)
def _network_of(version: int, first: int, prefix: int) -> str:
    kind = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    return str(kind((first, prefix), strict=False))


def _network_text(ip: IpAddress, prefix: int) -> str:
    """The network of `prefix` bits holding `ip`, as text; the few networks of a database are
    formatted once each (the ipaddress module's text form is slow, IPv6 most)."""
    bits = 32 if ip.version == 4 else 128
    first = int(ip) >> (bits - prefix) << (bits - prefix) if prefix else 0
    return _network_of(ip.version, first, prefix)


def _load_ranges(path: Path | None) -> list[RangeFile]:
    if path is None:
        return []
    if path.is_dir():
        return load_range_directory(path)
    if not path.exists():
        raise GeoDataError(str(path), "no such file or directory")
    return [load_range_file(path)]


@dataclass(frozen=True, slots=True)
class UnmappedName:
    """A region or zone named in a range file whose country the mapping does not know."""

    provider: str
    name: str  # the zone (network border group) where there is one, else the region
    region: str  # the region the file gives
    entries: int  # how many published networks name it

    @property
    def is_zone(self) -> bool:
        return self.name != self.region


def unmapped_names(files: Iterable[RangeFile], region_country: RegionCountry) -> list[UnmappedName]:
    """Return every region and zone in the files that `region_country` cannot place, sorted.

    Addresses in them are located by GeoIP alone, so a region opened yesterday shows up here
    before anyone wonders why its addresses are located loosely.
    """
    counts: Counter[tuple[str, str, str]] = Counter()
    for file in files:
        for entry in file.entries:
            if entry.country is None and entry.region is not None:
                counts[(entry.provider, entry.zone or entry.region, entry.region)] += 1
    return [
        UnmappedName(provider, name, region, count)
        for (provider, name, region), count in sorted(counts.items())
        if region_country(provider, name) is None
    ]
