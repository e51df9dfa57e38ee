"""The configuration file: how an audit runs (inventory, policies, DNS, GeoIP), paths resolved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError, field_validator

from auditor.errors import InvalidInputError, Issue
from auditor.validation import Strict, issues_from_validation
from auditor.yamlsource import load_yaml


class _Dns(Strict):
    nameservers: list[str] = []
    timeout: float = Field(default=2.0, gt=0, le=60)
    concurrency: int = Field(default=64, ge=1, le=4096)
    zone_files: list[str] = []


class _GeoIp(Strict):
    country_db: str | None = None
    asn_db: str | None = None


class _Config(Strict):
    inventory: list[str] = Field(min_length=1)
    policies: str | None = None
    dns: _Dns = _Dns()
    geoip: _GeoIp = _GeoIp()
    ip_ranges: str | None = None

    @field_validator("inventory", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True, slots=True)
class DnsSettings:
    nameservers: tuple[str, ...]
    timeout: float
    concurrency: int
    zone_files: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration; every path is absolute."""

    path: Path
    inventory: tuple[Path, ...]
    policies: Path | None
    dns: DnsSettings
    country_db: Path | None
    asn_db: Path | None
    ip_ranges: Path | None

    @property
    def base(self) -> Path:
        return self.path.parent


def load_config(path: Path) -> Config:
    """Load the configuration file; relative paths in it are relative to the file.

    Raises:
        InvalidInputError: the file is missing, not YAML, or has invalid or unknown keys.
    """
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InvalidInputError([Issue(doc.source, "expected a mapping of settings", line=1)])
    try:
        raw = _Config.model_validate(doc.data)
    except ValidationError as exc:
        raise InvalidInputError(issues_from_validation(exc, doc)) from exc
    base = path.resolve().parent

    def resolve(value: str | None) -> Path | None:
        return None if value is None else base / Path(value).expanduser()

    return Config(
        path=path.resolve(),
        inventory=tuple(base / Path(item).expanduser() for item in raw.inventory),
        policies=resolve(raw.policies),
        dns=DnsSettings(
            nameservers=tuple(raw.dns.nameservers),
            timeout=raw.dns.timeout,
            concurrency=raw.dns.concurrency,
            zone_files=tuple(base / Path(item).expanduser() for item in raw.dns.zone_files),
        ),
        country_db=resolve(raw.geoip.country_db),
        asn_db=resolve(raw.geoip.asn_db),
        ip_ranges=resolve(raw.ip_ranges),
    )
