"""The configuration file: keys, defaults, paths relative to the file, errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import load_config
from auditor.errors import InvalidInputError


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
