"""The configuration file: how an audit runs (inventory, policies, DNS, GeoIP), paths resolved.

This module composes the schema: it owns the daemon's own sections and takes each capability's
section model from the capability (`data_sources:` from `auditor.sources.config`, `consent:`
from `auditor.consent.config`, `discovery:` from `auditor.discovery.config`, `websites:` from
`auditor.discovery.web.config`, `reports:` from `auditor.evidence.config`, `backups:` from
`auditor.transfers.config`). The whole file, every section included, is validated here, once,
when it is loaded; nothing else reads the file."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from auditor.consent.config import ConsentMapping, ConsentModel, ConsentSettings, parse_consent
from auditor.core.durations import Duration, DurationText, parse_duration
from auditor.core.errors import InvalidInputError, Issue
from auditor.core.staleness import DEFAULT_MAX_AGE_DAYS
from auditor.core.validation import Strict, document_schema, format_loc, issues_from_validation
from auditor.core.yamlsource import Loc, load_yaml
from auditor.discovery.config import DiscoveryModel, DiscoverySettings, discovery_settings
from auditor.discovery.web.config import WebsiteSettings, WebsitesModel, website_settings
from auditor.evidence.config import ReportSettings, ReportsModel, report_settings
from auditor.sources.config import DataSourceModel, DataSourceSettings, parse_data_sources
from auditor.transfers.config import BackupChecks, BackupChecksModel, backup_checks


class _Dns(Strict):
    nameservers: list[str] = []
    timeout: float = Field(default=2.0, gt=0, le=60)
    concurrency: int = Field(default=64, ge=1, le=4096)
    zone_files: list[str] = []


class _GeoIp(Strict):
    country_db: str | None = None
    asn_db: str | None = None
    # Older GeoIP and IP-range data is warned about (the GdprAuditorGeoDataStale alert's 45 days).
    max_age_days: int = Field(default=DEFAULT_MAX_AGE_DAYS, ge=1, le=36500, strict=True)


class _Database(Strict):
    url: str | None = None
    url_env: str | None = None  # the name of an environment variable holding the URL
    keep_observations: DurationText = "P30D"

    @field_validator("url")
    @classmethod
    def _state_url(cls, value: str | None) -> str | None:
        problem = None if value is None else state_url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> _Database:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("set exactly one of url and url_env")
        return self


class _Metrics(Strict):
    listen: str = "127.0.0.1:9466"

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_listen(value)
        return value


class _Job(Strict):
    interval: DurationText | None = None
    cron: str | None = None
    jitter: DurationText | None = None  # default: a tenth of the interval, at most PT5M
    enabled: bool = True

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(value, timezone="UTC")
            except ValueError as exc:
                raise ValueError(f"not a five-field cron expression: {value!r} ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> _Job:
        if (self.interval is None) == (self.cron is None):
            raise ValueError("set exactly one of interval and cron")
        return self


class _Jobs(Strict):
    audit: _Job = _Job(interval="PT1H")
    retention: _Job | None = None
    consent: _Job | None = None  # scheduled only when set and consent mappings exist
    report: _Job | None = None  # writes the evidence report of the last `reports.period`
    discovery: _Job | None = None  # scheduled only when `discovery:` names domains or pages
    web: _Job | None = None  # scheduled only when `websites:` names sites


class _Notify(Strict):
    webhook_url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")  # the URL is a secret
    format: Literal["generic", "slack"] = "generic"


class _Log(Strict):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class _Config(Strict):
    inventory: list[str] = Field(min_length=1)
    policies: str | None = None
    dns: _Dns = _Dns()
    geoip: _GeoIp = _GeoIp()
    ip_ranges: str | None = None
    database: _Database | None = None
    metrics: _Metrics = _Metrics()
    jobs: _Jobs = _Jobs()
    reports: ReportsModel = ReportsModel()
    log: _Log = _Log()
    notify: _Notify | None = None
    # Validated by auditor.consent.config (they need each other: consent names data sources).
    data_sources: dict[str, Any] = {}
    consent: dict[str, Any] = {}
    retention: list[str] = []
    discovery: DiscoveryModel | None = None  # auditor.discovery.config
    backups: BackupChecksModel | None = None  # auditor.transfers.config
    websites: WebsitesModel | None = None  # auditor.discovery.web.config

    @field_validator("retention", mode="before", json_schema_input_type=str | list[str])
    @classmethod
    def _retention_paths(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("inventory", mode="before", json_schema_input_type=str | list[str])
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class _ConfigSchema(_Config):
    """The configuration as editors see it: the sections validated by their capabilities
    (`data_sources:`, `consent:`) with their own models in place of free mappings."""

    data_sources: dict[str, DataSourceModel] = {}
    consent: dict[str, ConsentModel] = {}


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file, every section included, for editors.

    Paths, URLs, environment variables and the tables and columns named are checked by the
    auditor only (`validate`, `validate --connect`).
    """
    return document_schema(
        _ConfigSchema,
        "gdpr-auditor configuration",
        "How gdpr-auditor audits (inventory, policies, DNS, GeoIP, IP ranges) and what the "
        "daemon runs (database, metrics, jobs, reports, notifications, data sources, consent, "
        "retention, discovery).",
    )


@dataclass(frozen=True, slots=True)
class DnsSettings:
    nameservers: tuple[str, ...]
    timeout: float
    concurrency: int
    zone_files: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class JobSchedule:
    """When a job runs: every `interval`, or on a cron expression, with jitter in seconds."""

    interval: Duration | None
    cron: str | None
    jitter_seconds: float
    enabled: bool = True

    @property
    def interval_seconds(self) -> float:
        """The interval, or for cron the typical gap between runs (for the staleness alert)."""
        if self.interval is not None:
            return self.interval.approx_seconds()
        return _cron_period_seconds(self.cron or "")


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str | None  # None: the environment variable named by url_env
    url_env: str | None
    keep_observations: Duration


NotifyFormat = Literal["generic", "slack"]


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """Direct webhook notifications: the environment variable holding the URL, and the form."""

    webhook_url_env: str
    format: NotifyFormat = "generic"


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
    database: DatabaseSettings | None = None
    geoip_max_age_days: int = DEFAULT_MAX_AGE_DAYS
    metrics_listen: tuple[str, int] = ("127.0.0.1", 9466)
    jobs: Mapping[str, JobSchedule] = field(default_factory=dict)
    log_level: str = "info"
    log_format: str = "auto"
    digest: str = ""  # sha256 of the file's bytes, recorded with every audit run
    data_sources: Mapping[str, DataSourceSettings] = field(default_factory=dict)
    consent: Mapping[str, ConsentMapping] = field(default_factory=dict)
    retention: tuple[Path, ...] = ()
    reports: ReportSettings = field(default_factory=lambda: ReportSettings(Path("reports")))
    notify: NotifySettings | None = None
    discovery: DiscoverySettings = field(default_factory=DiscoverySettings)
    backups: BackupChecks = field(default_factory=BackupChecks)
    websites: WebsiteSettings = field(default_factory=WebsiteSettings)

    source: str = ""  # the file's name as given, for messages (`path` is resolved)

    @property
    def base(self) -> Path:
        return self.path.parent

    @property
    def consent_settings(self) -> ConsentSettings:
        """What the consent check reads: the mappings and the data sources they name."""
        return ConsentSettings(self.data_sources, self.consent)

    def located(self, exc: InvalidInputError) -> InvalidInputError:
        """The error with its problems about a configured inventory or retention path itself
        (missing, or a directory without YAML files) pointed at that path's line here."""
        where = {
            str(path): (key, index)
            for key, paths in (("inventory", self.inventory), ("retention", self.retention))
            for index, path in enumerate(paths)
        }
        issues = [
            self.issue(f"{issue.source}: {issue.message}", *where[issue.source])
            if issue.line is None and issue.entry is None and issue.source in where
            else issue
            for issue in exc.issues
        ]
        return InvalidInputError(issues)

    def issue(self, message: str, *loc: str | int) -> Issue:
        """An Issue about the setting at `loc` (`"database", "url"`), with its line."""
        return Issue(
            self.source or str(self.path),
            message,
            field=format_loc(loc),
            line=config_line(self.path, loc),
        )


def load_config(path: Path) -> Config:
    """Load the configuration file; relative paths in it are relative to the file.

    Raises:
        InvalidInputError: the file is missing, not YAML, or has invalid or unknown keys.
    """
    doc = load_yaml(path)
    if not isinstance(doc.data, dict):
        raise InvalidInputError([Issue(doc.source, "expected a mapping of settings", line=1)])
    issues: list[Issue] = []
    try:
        raw = _Config.model_validate(doc.data)
    except ValidationError as exc:
        issues = issues_from_validation(exc, doc, model=_Config)
    base = path.resolve().parent
    # Each capability validates its own section; consent's names data sources, so it comes after.
    data_sources, more = parse_data_sources(doc, base)
    issues += more
    consent, more = parse_consent(doc, data_sources)
    issues += more
    if issues:
        raise InvalidInputError(issues)

    def resolve(value: str | None) -> Path | None:
        return None if value is None else base / Path(value).expanduser()

    return Config(
        path=path.resolve(),
        source=doc.source,
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
        geoip_max_age_days=raw.geoip.max_age_days,
        database=_database(raw.database, base),
        metrics_listen=parse_listen(raw.metrics.listen),
        jobs={name: _schedule(job) for name, job in raw.jobs if isinstance(job, _Job)},
        log_level=raw.log.level,
        log_format=raw.log.format,
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
        data_sources=data_sources,
        consent=consent,
        retention=tuple(base / Path(item).expanduser() for item in raw.retention),
        reports=report_settings(raw.reports, base),
        discovery=discovery_settings(raw.discovery, base),
        backups=backup_checks(raw.backups),
        websites=website_settings(raw.websites, base),
        notify=None
        if raw.notify is None
        else NotifySettings(raw.notify.webhook_url_env, raw.notify.format),
    )


def config_line(path: Path, loc: Loc) -> int | None:
    """The line of the setting at `loc` (`("database", "url")`) in the configuration file, or
    of its nearest enclosing setting; None when the file cannot be read now. The file is read
    again: this is for messages about a problem found after loading, not for every load."""
    try:
        return load_yaml(path).line_of(loc)
    except InvalidInputError:
        return None


def parse_listen(value: str) -> tuple[str, int]:
    """Parse `host:port` or `[v6]:port` into a host and a port.

    Raises:
        ValueError: the text is not such an address.
    """
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected host:port such as 127.0.0.1:9466, got {value!r}")
    return host, int(port)


STATE_DATABASES = ("sqlite", "postgresql", "postgres")
"""The URL schemes (before any `+driver`) of the databases the state store runs on."""


def state_url_problem(url: str) -> str | None:
    """What is wrong with a state database URL, without repeating it (it may hold a password);
    None when it names SQLite or PostgreSQL and any port is a number."""
    scheme, sep, _ = url.partition("://")
    backend = scheme.split("+")[0].lower()
    if not sep or not backend:
        return "expected a database URL such as sqlite:///state.db or postgresql://host/db"
    if backend not in STATE_DATABASES:
        return f"the state database must be SQLite or PostgreSQL, not {backend}"
    try:
        urlsplit(url).port  # noqa: B018 (read for the check it makes)
    except ValueError:
        return "the port in the URL is not a number from 0 to 65535"
    return None


def _database(raw: _Database | None, base: Path) -> DatabaseSettings | None:
    if raw is None:
        return None
    url = raw.url
    if url is not None and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        # A relative SQLite path is relative to the config file, like every other path.
        relative = url.removeprefix("sqlite:///")
        if relative and relative != ":memory:":
            url = f"sqlite:///{base / relative}"
    return DatabaseSettings(url, raw.url_env, parse_duration(raw.keep_observations))


def _schedule(job: _Job) -> JobSchedule:
    interval = parse_duration(job.interval) if job.interval else None
    if job.jitter is not None:
        jitter = parse_duration(job.jitter).approx_seconds()
    else:
        period = interval.approx_seconds() if interval else _cron_period_seconds(job.cron or "")
        jitter = min(period / 10, 300.0)
    return JobSchedule(interval, job.cron, jitter, job.enabled)


def _cron_period_seconds(expression: str) -> float:
    """A rough period of a five-field cron expression: hourly, daily or weekly and so on."""
    fields = expression.split()
    if len(fields) != 5:
        return 86400.0
    minute, hour, day, _, weekday = fields
    if minute == "*" or minute.startswith("*/"):
        step = int(minute[2:]) if minute.startswith("*/") and minute[2:].isdigit() else 1
        return 60.0 * step
    if hour == "*" or hour.startswith("*/"):
        step = int(hour[2:]) if hour.startswith("*/") and hour[2:].isdigit() else 1
        return 3600.0 * step
    if weekday != "*":
        return 7 * 86400.0
    if day != "*":
        return 30 * 86400.0
    return 86400.0
