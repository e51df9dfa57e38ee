"""The composition root: the one place that names concrete adapters and builds them from config
(the resolver, the geolocator, the state store, and the inventory with the vendor catalogue's
countries filled in), for the daemon and the command line alike."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from auditor.config import Config, state_url_problem
from auditor.core.errors import AuditUnavailableError, InvalidInputError
from auditor.core.inventory import load_inventory
from auditor.core.model import Integration, Location
from auditor.core.policies import PolicyData
from auditor.core.ports import DataSet, GeoLocator
from auditor.core.vendors import CatalogueHome, with_vendor_countries
from auditor.discovery.catalogue import load_catalogue

# The adapters are imported where they are built: a command that needs no state store (a
# `check` without a database) does not import SQLAlchemy.
if TYPE_CHECKING:
    from auditor.probes.dns import DnsResolver
    from auditor.store import StateStore


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


def catalogue_homes(config: Config) -> list[CatalogueHome]:
    """Every vendor of the catalogue (shipped, and the local file of `discovery.vendors`) with
    its headquarters and the source of that claim.

    Raises:
        InvalidInputError: the local catalogue file is missing or invalid.
    """
    catalogue = load_catalogue(config.discovery.vendors)
    return [
        CatalogueHome(v.id, v.name, v.headquarters, v.sources.get("headquarters"))
        for v in catalogue.vendors.values()
    ]


InventoryLoader = Callable[[Sequence[Path], PolicyData, Path | None], list[Integration]]
"""Loads inventory files (paths, policy data, the directory names are shown relative to)."""


def load_integrations(
    config: Config, policies: PolicyData, load: InventoryLoader = load_inventory
) -> list[Integration]:
    """The inventory the configuration names (read by `load`), each vendor_country it does not
    declare filled in from the vendor catalogue (marked as such).

    Raises:
        InvalidInputError: an inventory file or the local catalogue is invalid.
    """
    integrations = load(config.inventory, policies, config.base)
    return with_vendor_countries(integrations, catalogue_homes(config))


def state_directory(config: Config, environ: Mapping[str, str]) -> Path:
    """The state directory: `$STATE_DIRECTORY` (the first one, when systemd sets several), else
    the configuration file's directory."""
    state = environ.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(state) if state else config.base


WEB_EVIDENCE = "web-evidence"
"""The web audit's evidence files' directory, under the state directory."""


def web_evidence_directory(config: Config, environ: Mapping[str, str]) -> Path:
    """Where the web audit writes its runs' screenshots, HARs and JSON records."""
    return state_directory(config, environ) / WEB_EVIDENCE


def database_url(config: Config, environ: Mapping[str, str]) -> str:
    """Return the state database URL: the configured one, else a SQLite file in the state
    directory (`state_directory`). A relative SQLite path from `url_env` is relative to the
    configuration file, like the one from `url`.

    Raises:
        InvalidInputError: `database.url_env` names a variable that is not set or is empty.
    """
    from auditor.store import DEFAULT_FILE

    settings = config.database
    if settings is None:
        return f"sqlite:///{state_directory(config, environ) / DEFAULT_FILE}"
    if settings.url is not None:
        return settings.url
    name = settings.url_env or ""
    value = environ.get(name, "").strip()
    if not value:
        message = f"the environment variable {name} holding the database URL is not set"
        raise InvalidInputError([config.issue(message, "database", "url_env")])
    problem = state_url_problem(value)
    if problem is not None:
        raise InvalidInputError([config.issue(f"{name}: {problem}", "database", "url_env")])
    return _relative_sqlite(value, config.base)


def _relative_sqlite(url: str, base: Path) -> str:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        relative = url.removeprefix("sqlite:///")
        if relative and not relative.startswith(":memory:"):
            return f"sqlite:///{base / relative}"
    return url


def open_store(config: Config, environ: Mapping[str, str]) -> StateStore:
    """Open the state store the configuration names (or the default one), creating its schema.

    Raises:
        InvalidInputError: the URL's environment variable is not set.
        SchemaVersionError: the database's schema is older or newer than this code's.
        StoreError: the database cannot be reached.
    """
    from auditor.store import StateStore, evidence_key

    return StateStore.open(database_url(config, environ), evidence_key=evidence_key(environ))
