"""The composition root: the one place that names concrete adapters and builds them from config."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from auditor.config import Config
from auditor.errors import AuditUnavailableError
from auditor.model import Location
from auditor.policies import PolicyData
from auditor.ports import DataSet, GeoLocator

if TYPE_CHECKING:
    from auditor.probes.dns import DnsResolver


class _NoGeoData:
    """Stands in when nothing needs locating: an inventory without endpoints."""

    def locate(self, address: str) -> Location:
        return Location(address=address, country=None, source="none")

    def datasets(self) -> Sequence[DataSet]:
        return ()


def build_resolver(config: Config) -> DnsResolver:
    from auditor.probes.dns import DnsResolver

    return DnsResolver(
        nameservers=config.dns.nameservers,
        timeout=config.dns.timeout,
        concurrency=config.dns.concurrency,
        zone_files=config.dns.zone_files,
    )


def build_locator(config: Config, policies: PolicyData, needed: bool = True) -> GeoLocator:
    """Build the geolocator; without a GeoIP database it is an error only if something needs it.

    Raises:
        GeoDataError: a configured database or range file is missing or corrupt.
        AuditUnavailableError: endpoints need locating and no GeoIP database is configured.
    """
    from auditor.probes.geo import MmdbGeoLocator

    if config.country_db is None:
        if needed:
            raise AuditUnavailableError(
                f"{config.path}: geoip.country_db is not set, and endpoints need locating; "
                "point it at a GeoLite2/GeoIP2/DB-IP Country or City mmdb"
            )
        return _NoGeoData()
    edge_services = {
        provider: frozenset(services)
        for provider, services in policies.edges.range_services.items()
    }
    return MmdbGeoLocator(
        country_db=config.country_db,
        asn_db=config.asn_db,
        ip_ranges=config.ip_ranges,
        region_country=policies.region_country,
        edge_services=edge_services,
        edge_asns=dict(policies.edges.asns),
    )
