"""One loaded and valid set of inputs, and the adapters built from it; a reload makes a new one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from auditor.config import Config, load_config
from auditor.core.errors import InvalidInputError
from auditor.core.model import Integration
from auditor.core.policies import PolicyData, load_policies
from auditor.core.ports import GeoLocator
from auditor.probes.dns import DnsResolver
from auditor.service.wiring import build_locator, build_resolver, load_integrations


@dataclass(frozen=True, slots=True)
class Generation:
    """One loaded and valid set of inputs; a reload swaps in a new one, jobs read it at start."""

    config: Config
    policies: PolicyData
    integrations: tuple[Integration, ...]
    resolver: DnsResolver
    locator: GeoLocator


def load_generation(config_path: Path) -> Generation:
    """Load config, policy data and inventory (with the vendor catalogue's countries), and build
    the resolver and geolocator from them.

    Raises:
        InvalidInputError: the configuration, inventory or policy data is invalid.
        AuditUnavailableError: a GeoIP database, range file or zone file cannot be used.
    """
    config = load_config(config_path)
    policies = load_policies(config.policies)
    try:
        integrations = tuple(load_integrations(config, policies))
    except InvalidInputError as exc:
        raise config.located(exc) from None
    # Endpoints, and websites' third parties, are located.
    needs_geo = bool(config.websites.sites) or any(i.endpoints for i in integrations)
    return Generation(
        config=config,
        policies=policies,
        integrations=integrations,
        resolver=build_resolver(config),
        locator=build_locator(config, policies, needed=needs_geo),
    )
