"""The interfaces the audit sees: a clock, a resolver and a geolocator (ports, not adapters)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from auditor.core.model import Location, Resolution

Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware UTC."""


class Resolver(Protocol):
    """Resolves hostnames to addresses, recording the CNAME chain and any failure as data."""

    def resolve_many(
        self, hostnames: Sequence[str], progress: Callable[[int, int], None] | None = None
    ) -> Mapping[str, Resolution]:
        """Return one Resolution per hostname; lookup failures are statuses, never exceptions."""
        ...


@dataclass(frozen=True, slots=True)
class DataSet:
    """One loaded geolocation data set, for `geodb info` and the audit record."""

    kind: str  # "geoip-country", "geoip-asn", "ip-ranges"
    name: str  # "GeoLite2-Country", "aws", "gcp", ...
    path: str
    built: datetime | None  # when the publisher built it (else when it was fetched), UTC
    entries: int | None = None
    # "build": the publisher's build time (mmdb build_epoch, a range file's own date or its
    # name's); "fetched": when `geodb update` fetched a file that carries no date; None: unknown.
    dated_by: str | None = None


class GeoLocator(Protocol):
    """Locates addresses: cloud IP ranges first, then the GeoIP database."""

    def locate(self, address: str) -> Location:
        """Return where the address is; an unknown address has `country=None`, never raises."""
        ...

    def datasets(self) -> Sequence[DataSet]:
        """Return what data is loaded and when it was built."""
        ...
