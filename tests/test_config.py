"""The configuration file: keys, defaults, paths relative to the file, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import cli
from auditor.config import load_config
from auditor.core.errors import InvalidInputError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "conf" / "auditor.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_documented_keys_and_relative_paths(tmp_path: Path) -> None:
    """Every documented key loads; relative paths are relative to the config file."""
    path = write(
        tmp_path,
        """
inventory: [inventory/, extra.yaml]
policies: null
dns:
  nameservers: ["127.0.0.1:5353"]
  timeout: 2.0
  concurrency: 64
  zone_files: [zones/a.zone]
geoip:
  country_db: geo/GeoLite2-Country.mmdb
  asn_db: null
ip_ranges: /srv/ranges
""",
    )

    config = load_config(path)

    base = path.parent.resolve()
    assert (base / "inventory", base / "extra.yaml") == config.inventory
    assert config.policies is None
    assert ("127.0.0.1:5353",) == config.dns.nameservers
    assert (2.0, 64) == (config.dns.timeout, config.dns.concurrency)
    assert (base / "zones/a.zone",) == config.dns.zone_files
    assert base / "geo/GeoLite2-Country.mmdb" == config.country_db
    assert config.asn_db is None
    assert Path("/srv/ranges") == config.ip_ranges


def test_a_single_inventory_path_is_accepted(tmp_path: Path) -> None:
    """`inventory: file.yaml` means a list of one."""
    config = load_config(write(tmp_path, "inventory: inv.yaml\n"))

    assert 1 == len(config.inventory)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("inventory: [a]\ndns: {timeout: 0}\n", "dns.timeout"),
        ("inventory: [a]\ndns: {concurency: 3}\n", "dns.concurency: unknown key"),
        ("inventory: [a]\ngeoip: {country: x}\n", "geoip.country: unknown key"),
        ("inventory: []\n", "inventory"),
        ("dns: {}\n", "inventory: required key is missing"),
        ("- just\n- a list\n", "expected a mapping"),
        ("inventory: [a\n", "not valid YAML"),
    ],
)
def test_invalid_config_names_the_key_and_line(tmp_path: Path, text: str, fragment: str) -> None:
    """Bad values, unknown keys and broken YAML are errors naming file and key."""
    path = write(tmp_path, text)

    with pytest.raises(InvalidInputError) as caught:
        load_config(path)

    message = str(caught.value)
    assert fragment in message
    assert str(path) in message


def test_missing_file(tmp_path: Path) -> None:
    """A config file that does not exist is named in the error."""
    with pytest.raises(InvalidInputError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_daemon_keys(tmp_path: Path) -> None:
    """database, metrics, jobs and log load; a relative SQLite path is relative to the file."""
    path = write(
        tmp_path,
        """
inventory: [inv/]
database: {url: "sqlite:///state.db", keep_observations: P7D}
metrics: {listen: "[::1]:9999"}
jobs:
  audit: {cron: "*/15 * * * *"}
log: {level: debug, format: json}
""",
    )

    config = load_config(path)

    assert config.database is not None
    assert f"sqlite:///{path.parent.resolve() / 'state.db'}" == config.database.url
    assert 7 == config.database.keep_observations.days
    assert ("::1", 9999) == config.metrics_listen
    assert 900.0 == config.jobs["audit"].interval_seconds
    assert ("debug", "json") == (config.log_level, config.log_format)


def test_default_schedule_is_hourly_with_jitter(tmp_path: Path) -> None:
    """Without a jobs section the audit runs every hour with up to 5 minutes of jitter."""
    config = load_config(write(tmp_path, "inventory: [inv/]\n"))

    assert 3600.0 == config.jobs["audit"].interval_seconds
    assert 300.0 == config.jobs["audit"].jitter_seconds
    assert config.database is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('jobs: {audit: {cron: "61 * * * *"}}', "not a five-field cron expression"),
        ("jobs: {audit: {interval: PT1H, cron: '0 * * * *'}}", "exactly one of interval and cron"),
        ("jobs: {audit: {interval: hourly}}", "not an ISO 8601 duration"),
        ("metrics: {listen: 9466}", "metrics.listen"),
        ("database: {}", "exactly one of url and url_env"),
    ],
)
def test_bad_daemon_keys(tmp_path: Path, text: str, fragment: str) -> None:
    """Bad schedules, listen addresses and database settings are named."""
    with pytest.raises(InvalidInputError, match=fragment.replace("(", r"\(")):
        load_config(write(tmp_path, "inventory: [inv/]\n" + text + "\n"))


def test_data_sources_consent_and_retention_sections(tmp_path: Path) -> None:
    """The consent sections are validated with the rest; retention paths resolve like inventory."""
    path = write(
        tmp_path,
        """
inventory: [inv/]
retention: policies/retention.yaml
data_sources:
  crm: {url: "sqlite:///crm.db"}
consent:
  mailrocket:
    purpose: newsletter
    shared: {source: crm, table: customers, key: id, filter: {synced: true}}
    consents: {source: crm, table: consents, subject: customer_id, purpose: purpose,
               granted_at: granted_at, withdrawn_at: withdrawn_at}
""",
    )

    config = load_config(path)

    assert {"crm"} == set(config.data_sources)
    assert "newsletter" == config.consent["mailrocket"].purpose
    assert (path.parent.resolve() / "policies/retention.yaml",) == config.retention


def test_consent_naming_an_unknown_source_is_reported_with_other_errors(tmp_path: Path) -> None:
    """A consent mapping's unknown data source and a bad DNS key are reported together."""
    path = write(
        tmp_path,
        """
inventory: [inv/]
dns: {timeout: -1}
consent:
  mailrocket:
    purpose: newsletter
    shared: {source: nowhere, table: customers, key: id}
    consents: {source: nowhere, table: consents, subject: id, purpose: purpose,
               granted_at: granted_at, withdrawn_at: null}
""",
    )

    with pytest.raises(InvalidInputError) as caught:
        load_config(path)

    text = str(caught.value)
    assert "dns.timeout" in text
    assert "nowhere" in text


BAD_DISCOVERY = """
inventory: [inv/]
discovery:
  domains: [example.com]
  pages: [ftp://example.com/]
  timeout: 0
"""


def test_a_bad_discovery_section_is_rejected_at_load(tmp_path: Path) -> None:
    """The `discovery:` section is validated with the rest of the file when it is loaded, not
    when discovery first runs: each problem names its key and line."""
    path = write(tmp_path, BAD_DISCOVERY)

    with pytest.raises(InvalidInputError) as caught:
        load_config(path)

    found = {(issue.field, issue.line) for issue in caught.value.issues}
    assert {("discovery.pages", 5), ("discovery.timeout", 6)} <= found, found


def test_validate_rejects_a_bad_discovery_section(tmp_path: Path) -> None:
    """`validate` exits 2 and names the bad `discovery:` key, as for any other section."""
    path = write(tmp_path, BAD_DISCOVERY)

    result = CliRunner().invoke(cli, ["validate", "--config", str(path)])

    assert 2 == result.exit_code, result.output
    assert "discovery.pages" in result.stderr
    assert "Traceback" not in result.stderr


def test_backup_periods_default_to_twelve_months_and_can_be_set(tmp_path: Path) -> None:
    """`backups:` sets how old a restore test and a documentation review may be; both default
    to P12M."""
    default = load_config(write(tmp_path, "inventory: [a]\n"))
    text = (
        "inventory: [a]\nbackups: {restore_test_max_age: P6M, documentation_review_max_age: P2Y}\n"
    )
    configured = load_config(write(tmp_path, text))

    assert ("P12M", "P12M") == (
        str(default.backups.restore_test_max_age),
        str(default.backups.documentation_review_max_age),
    )
    assert ("P6M", "P2Y") == (
        str(configured.backups.restore_test_max_age),
        str(configured.backups.documentation_review_max_age),
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("backups: {restore_test_max_age: 12 months}\n", "backups.restore_test_max_age"),
        ("backups: {documentation_review_max_age: P0D}\n", "longer than zero"),
        ("backups: {restore_tests: P6M}\n", "backups.restore_tests: unknown key"),
    ],
)
def test_bad_backup_periods_are_rejected_at_load(tmp_path: Path, text: str, fragment: str) -> None:
    """A period that is not an ISO 8601 duration, zero, or an unknown key is an error naming it."""
    path = write(tmp_path, "inventory: [a]\n" + text)

    with pytest.raises(InvalidInputError) as caught:
        load_config(path)

    assert fragment in str(caught.value)
