"""Tests of the published IP-range parsers, the longest-prefix table and the range download."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from auditor.core.errors import GeoDataError, InvalidInputError
from auditor.probes.ipranges import (
    AZURE_DOWNLOAD_PAGE,
    IpRangeTable,
    fetch_ip_ranges,
    load_range_directory,
    load_range_file,
)
from auditor.probes.rangeformats import RangeEntry
from tests.helpers import GEODB_RANGES, free_port

AWS_SAMPLE = {
    "syncToken": "1793016000",
    "createDate": "2026-10-26-12-00-00",
    "prefixes": [
        {
            "ip_prefix": "3.120.0.0/14",
            "region": "eu-central-1",
            "service": "AMAZON",
            "network_border_group": "eu-central-1",
        },
        {
            "ip_prefix": "3.120.0.0/14",
            "region": "eu-central-1",
            "service": "EC2",
            "network_border_group": "eu-central-1",
        },
        {
            "ip_prefix": "13.32.0.0/15",
            "region": "GLOBAL",
            "service": "CLOUDFRONT",
            "network_border_group": "GLOBAL",
        },
    ],
    "ipv6_prefixes": [
        {
            "ipv6_prefix": "2a05:d050::/32",
            "region": "eu-central-1",
            "service": "EC2",
            "network_border_group": "eu-central-1",
        }
    ],
}

GCP_SAMPLE = {
    "syncToken": "1793005205237",
    "creationTime": "2026-10-26T09:00:05.23712",
    "prefixes": [
        {"ipv4Prefix": "35.198.64.0/18", "service": "Google Cloud", "scope": "europe-west3"},
        {"ipv6Prefix": "2600:1900:4050::/44", "service": "Google Cloud", "scope": "europe-west3"},
        {"ipv4Prefix": "34.149.0.0/16", "service": "Google Cloud", "scope": "global"},
    ],
}

AZURE_SAMPLE = {
    "changeNumber": 400,
    "cloud": "Public",
    "values": [
        {
            "name": "AzureCloud.germanywc",
            "id": "AzureCloud.germanywc",
            "properties": {
                "changeNumber": 40,
                "region": "germanywc",
                "regionId": 63,
                "platform": "Azure",
                "systemService": "",
                "addressPrefixes": ["51.116.0.0/18", "2603:1020:c00::/47"],
                "networkFeatures": ["API", "NSG", "UDR", "FW"],
            },
        },
        {
            "name": "AzureFrontDoor.Frontend",
            "id": "AzureFrontDoor.Frontend",
            "properties": {
                "changeNumber": 12,
                "region": "",
                "regionId": 0,
                "platform": "Azure",
                "systemService": "AzureFrontDoor",
                "addressPrefixes": ["13.107.246.0/24"],
                "networkFeatures": ["API", "NSG"],
            },
        },
    ],
}

OCI_SAMPLE = {
    "last_updated_timestamp": "2026-10-25T21:39:53.457290",
    "regions": [
        {
            "region": "eu-frankfurt-1",
            "cidrs": [
                {"cidr": "130.61.0.0/16", "tags": ["OCI"]},
                {"cidr": "134.70.32.0/22", "tags": ["OSN", "OBJECT_STORAGE"]},
            ],
        },
        {"region": "eu-jovanovac-1", "cidrs": [{"cidr": "143.47.32.0/21", "tags": ["OCI"]}]},
    ],
}

CLOUDFLARE_API_SAMPLE = {
    "result": {
        "ipv4_cidrs": ["173.245.48.0/20", "104.16.0.0/13"],
        "ipv6_cidrs": ["2606:4700::/32"],
        "etag": "38f79d050aa027e3be3865e495dcc9bc",
    },
    "success": True,
    "errors": [],
    "messages": [],
}

GEOFEED_SAMPLE = """\
# DigitalOcean geofeed (RFC 8805)
104.131.0.0/18,US,US-NY,New York,
46.101.128.0/17,DE,DE-HE,Frankfurt,
2a03:b0c0:3::/48,DE,DE-HE,Frankfurt,

165.22.0.0/20,,,,
"""


def write(path: Path, content: object) -> Path:
    """Write JSON for dicts, text for strings."""
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def test_aws_file_parses_regions_services_and_build_time(tmp_path: Path) -> None:
    """AWS ip-ranges.json yields one entry per listing, GLOBAL as no region, createDate as build."""
    parsed = load_range_file(write(tmp_path / "ip-ranges.json", AWS_SAMPLE))
    assert parsed.provider == "aws"
    assert parsed.built == datetime(2026, 10, 26, 12, 0, tzinfo=UTC)
    assert RangeEntry("aws", "3.120.0.0/14", "eu-central-1", "EC2") in parsed.entries
    assert RangeEntry("aws", "13.32.0.0/15", None, "CLOUDFRONT") in parsed.entries
    assert RangeEntry("aws", "2a05:d050::/32", "eu-central-1", "EC2") in parsed.entries
    assert len(parsed.entries) == 4


def test_aws_border_group_other_than_the_region_is_kept_as_the_zone(tmp_path: Path) -> None:
    """A Local Zone prefix keeps its region and gains the border group as its zone; a border
    group equal to the region, GLOBAL, or absent (files before 2020) names no zone."""
    document = {
        **AWS_SAMPLE,
        "prefixes": [
            {"ip_prefix": "15.220.0.0/20", "region": "us-east-1", "service": "EC2",
             "network_border_group": "us-east-1-qro-1"},
            {"ip_prefix": "3.5.0.0/19", "region": "us-east-1", "service": "S3",
             "network_border_group": "us-east-1"},
            {"ip_prefix": "13.32.0.0/15", "region": "GLOBAL", "service": "CLOUDFRONT",
             "network_border_group": "GLOBAL"},
            {"ip_prefix": "52.95.0.0/20", "region": "eu-west-1", "service": "AMAZON"},
        ],
        "ipv6_prefixes": [],
    }  # fmt: skip
    parsed = load_range_file(write(tmp_path / "ip-ranges.json", document))
    assert [(e.region, e.zone) for e in parsed.entries] == [
        ("us-east-1", "us-east-1-qro-1"),
        ("us-east-1", None),
        (None, None),
        ("eu-west-1", None),
    ]


@pytest.mark.parametrize(
    ("name", "content", "built", "entries"),
    [
        pytest.param(
            "cloud.json",
            json.dumps(GCP_SAMPLE).encode(),
            datetime(2026, 10, 26, 9, 0, 5, 237120, tzinfo=UTC),
            [
                ("gcp", "35.198.64.0/18", "europe-west3", "Google Cloud"),
                ("gcp", "2600:1900:4050::/44", "europe-west3", "Google Cloud"),
                ("gcp", "34.149.0.0/16", None, "Google Cloud"),
            ],
            id='GCP: scope is the region, "global" means none; creationTime is the build time',
        ),
        pytest.param(
            "ServiceTags_Public_20261026.json",
            # Microsoft's download may begin with a byte order mark.
            b"\xef\xbb\xbf" + json.dumps(AZURE_SAMPLE).encode(),
            datetime(2026, 10, 26, tzinfo=UTC),
            [
                ("azure", "51.116.0.0/18", "germanywc", "AzureCloud"),
                ("azure", "2603:1020:c00::/47", "germanywc", "AzureCloud"),
                ("azure", "13.107.246.0/24", None, "AzureFrontDoor"),
            ],
            id="Azure: short region names kept, empty regions None, the name gives the date",
        ),
        pytest.param(
            "public_ip_ranges.json",
            json.dumps(OCI_SAMPLE).encode(),
            datetime(2026, 10, 25, 21, 39, 53, 457290, tzinfo=UTC),
            [
                ("oci", "130.61.0.0/16", "eu-frankfurt-1", "OCI"),
                ("oci", "134.70.32.0/22", "eu-frankfurt-1", "OSN,OBJECT_STORAGE"),
                ("oci", "143.47.32.0/21", "eu-jovanovac-1", "OCI"),
            ],
            id="OCI: every cidr of every region, tags as the service",
        ),
    ],
)
def test_a_provider_file_gives_its_regions_services_and_build_time(
    tmp_path: Path,
    name: str,
    content: bytes,
    built: datetime,
    entries: list[tuple[str, str, str | None, str]],
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    parsed = load_range_file(path)
    assert parsed.provider == entries[0][0]
    assert parsed.built == built
    assert parsed.entries == tuple(RangeEntry(*entry) for entry in entries)


def test_file_without_a_date_is_undated_whatever_its_modification_time(tmp_path: Path) -> None:
    """A copy or a restore sets a file's modification time: it is never taken as the data's age."""
    path = write(tmp_path / "ServiceTags_Public.json", AZURE_SAMPLE)
    stamp = datetime(2026, 10, 20, 8, 30, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    parsed = load_range_file(path)
    assert (parsed.built, parsed.dated_by) == (None, None)


def test_cloudflare_text_lists_and_api_json_parse(tmp_path: Path) -> None:
    """Cloudflare's ips-v4/ips-v6 lists and its API JSON give region-less cloudflare entries."""
    v4 = load_range_file(write(tmp_path / "ips-v4", "173.245.48.0/20\n103.21.244.0/22"))
    v6 = load_range_file(write(tmp_path / "ips-v6", "2400:cb00::/32\n2606:4700::/32\n"))
    api = load_range_file(write(tmp_path / "cloudflare.json", CLOUDFLARE_API_SAMPLE))
    assert [e.network for e in v4.entries] == ["173.245.48.0/20", "103.21.244.0/22"]
    assert [e.network for e in v6.entries] == ["2400:cb00::/32", "2606:4700::/32"]
    assert [e.network for e in api.entries] == [
        "173.245.48.0/20",
        "104.16.0.0/13",
        "2606:4700::/32",
    ]
    assert {(e.provider, e.region, e.service) for e in v4.entries + api.entries} == {
        ("cloudflare", None, None)
    }


def test_geofeed_gives_countries_directly(tmp_path: Path) -> None:
    """The DigitalOcean geofeed gives each prefix its country; comments and blanks are skipped."""
    parsed = load_range_file(write(tmp_path / "digitalocean.csv", GEOFEED_SAMPLE))
    assert parsed.provider == "do"
    assert parsed.entries == (
        RangeEntry("do", "104.131.0.0/18", "US-NY", None, "US"),
        RangeEntry("do", "46.101.128.0/17", "DE-HE", None, "DE"),
        RangeEntry("do", "2a03:b0c0:3::/48", "DE-HE", None, "DE"),
        RangeEntry("do", "165.22.0.0/20", None, None, None),
    )


def test_directory_loads_known_files_and_ignores_others(tmp_path: Path) -> None:
    """A directory's known range files are loaded; other files, even malformed ones, are ignored."""
    write(tmp_path / "ip-ranges.json", AWS_SAMPLE)
    write(tmp_path / "google.csv", GEOFEED_SAMPLE)
    write(tmp_path / "README.txt", "not a range file")
    write(tmp_path / "goog.json", "{broken")
    write(tmp_path / ".ip-ranges.json.abc.part", "{broken")
    files = load_range_directory(tmp_path)
    assert [(f.provider, Path(f.path).name) for f in files] == [
        ("do", "google.csv"),
        ("aws", "ip-ranges.json"),
    ]


def test_only_the_newest_dated_file_of_a_series_is_loaded(tmp_path: Path) -> None:
    """Of last week's and this week's Azure Service Tags, only this week's is loaded."""
    write(tmp_path / "ServiceTags_Public_20261019.json", AZURE_SAMPLE)
    write(tmp_path / "ServiceTags_Public_20261026.json", AZURE_SAMPLE)
    write(tmp_path / "ServiceTags_AzureGovernment_20261012.json", AZURE_SAMPLE)
    names = [Path(f.path).name for f in load_range_directory(tmp_path)]
    assert names == [
        "ServiceTags_AzureGovernment_20261012.json",
        "ServiceTags_Public_20261026.json",
    ]


def test_shipped_example_ranges_load() -> None:
    """The example range files under geodb/ip-ranges are valid published-format files."""
    files = {Path(f.path).name: f for f in load_range_directory(GEODB_RANGES)}
    assert set(files) == {"ip-ranges.json", "cloud.json", "ips-v4"}
    table = IpRangeTable.from_files(files.values())
    assert table.lookup("198.51.100.70") == RangeEntry(
        "aws", "198.51.100.64/26", "eu-central-1", "EC2"
    )
    assert table.lookup("203.0.113.70") == RangeEntry("aws", "203.0.113.64/27", None, "CLOUDFRONT")
    assert table.lookup("192.0.2.200") == RangeEntry(
        "gcp", "192.0.2.192/27", "europe-west3", "Google Cloud"
    )
    assert table.lookup("203.0.113.200") == RangeEntry("cloudflare", "203.0.113.192/27")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        (
            "ip-ranges.json",
            '{"prefixes": [\n  {"ip_prefix": }',
            "not valid JSON: Expecting value at line 2",
        ),
        (
            "ip-ranges.json",
            {**AWS_SAMPLE, "createDate": "yesterday"},
            "createDate: 'yesterday' is not",
        ),
        (
            "ip-ranges.json",
            {**AWS_SAMPLE, "prefixes": [{"region": "eu-west-1", "service": "EC2"}]},
            "prefixes[0].ip_prefix: required key is missing",
        ),
        (
            "ip-ranges.json",
            {**AWS_SAMPLE, "prefixes": [{"ip_prefix": "3.5.x/16", "region": "x", "service": "S3"}]},
            "prefixes[0].ip_prefix: '3.5.x/16' is not a network",
        ),
        (
            "ip-ranges.json",
            {**AWS_SAMPLE, "prefixes": [], "ipv6_prefixes": []},
            "contains no networks",
        ),
        (
            "ip-ranges.json",
            {
                **AWS_SAMPLE,
                "prefixes": [
                    {
                        "ip_prefix": "3.5.0.0/16",
                        "region": "us-east-1",
                        "service": "S3",
                        "network_border_group": 7,
                    }
                ],
            },
            "prefixes[0].network_border_group: unexpected value 7",
        ),
        ("cloud.json", AWS_SAMPLE, "not a GCP cloud.json: it looks like an AWS ip-ranges.json"),
        ("cloud.json", [1, 2], "the top level is not an object"),
        ("ServiceTags_Public_20261026.json", {"values": [{"name": "x"}]}, "values[0].properties"),
        (
            "public_ip_ranges.json",
            {**OCI_SAMPLE, "last_updated_timestamp": "soon"},
            "'soon' is not",
        ),
        ("ips-v4", "<!DOCTYPE html>\n<html>", "line 1: '<!DOCTYPE html>' is not a network"),
        ("ips-v6", "\n\n", "contains no networks"),
        ("cloudflare.json", {"result": {"ipv4_cidrs": []}}, "result.ipv6_cidrs: required key"),
        ("digitalocean.csv", "10.0.0.0/8,Germany,,,\n", "line 1: 'Germany' is not an ISO 3166-1"),
        (
            "google.csv",
            '# feed\n10.0.0.0/8,DE\n10.1.0.0/16,DE,"DE-HE\nx',
            "not CSV: unexpected end of data",
        ),
    ],
)
def test_malformed_known_file_raises_geodata_error_naming_it(
    tmp_path: Path, name: str, content: object, reason: str
) -> None:
    """A known range file that is malformed raises GeoDataError with its path and the reason."""
    path = write(tmp_path / name, content)
    with pytest.raises(GeoDataError) as caught:
        load_range_directory(tmp_path)
    assert caught.value.path == str(path)
    assert reason in caught.value.reason
    assert str(path) in str(caught.value)


def test_a_key_twice_in_a_range_file_is_refused(tmp_path: Path) -> None:
    """A second `prefixes` would silently replace the first list of ranges."""
    path = tmp_path / "ip-ranges.json"
    path.write_text('{"createDate": "2026-01-01-00-00-00", "prefixes": [], "prefixes": []}')

    with pytest.raises(GeoDataError) as caught:
        load_range_file(path)

    assert "key 'prefixes' appears twice in one object" in caught.value.reason


def test_binary_garbage_in_known_file_is_reported(tmp_path: Path) -> None:
    """A known file that is not text at all raises GeoDataError, not a decoding error."""
    path = tmp_path / "ips-v4"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(GeoDataError, match="not UTF-8 text"):
        load_range_file(path)


def test_missing_directory_raises_geodata_error(tmp_path: Path) -> None:
    """A range directory that does not exist is a GeoDataError naming it."""
    with pytest.raises(GeoDataError, match="no such directory"):
        load_range_directory(tmp_path / "absent")


def region_at(table: IpRangeTable, address: str) -> str | None:
    """The region of the entry found for an address; the address must be in the table."""
    entry = table.lookup(address)
    assert entry is not None
    return entry.region


def test_table_returns_longest_matching_prefix() -> None:
    """Nested networks: the most specific one holding the address wins, in both families."""
    table = IpRangeTable(
        [
            RangeEntry("aws", "10.0.0.0/8", "us-east-1", "AMAZON"),
            RangeEntry("aws", "10.1.0.0/16", "eu-west-1", "EC2"),
            RangeEntry("aws", "10.1.2.0/24", "eu-central-1", "S3"),
            RangeEntry("aws", "2001:db8::/32", "us-east-1", "EC2"),
            RangeEntry("aws", "2001:db8:1::/48", "eu-west-3", "EC2"),
        ]
    )
    assert region_at(table, "10.1.2.3") == "eu-central-1"
    assert region_at(table, "10.1.3.3") == "eu-west-1"
    assert region_at(table, "10.9.9.9") == "us-east-1"
    assert region_at(table, "2001:db8:1::1") == "eu-west-3"
    assert region_at(table, "2001:db8:2::1") == "us-east-1"
    assert table.lookup("11.0.0.1") is None
    assert table.lookup("2001:db9::1") is None
    assert len(table) == 5


def test_table_prefers_specific_service_and_regional_entry_for_same_network() -> None:
    """For one network listed twice, EC2 beats AMAZON and a regional entry beats a global one."""
    for order in (1, -1):
        entries = [
            RangeEntry("aws", "3.120.0.0/14", "eu-central-1", "AMAZON"),
            RangeEntry("aws", "3.120.0.0/14", "eu-central-1", "EC2"),
            RangeEntry("aws", "52.94.0.0/22", None, "ROUTE53"),
            RangeEntry("aws", "52.94.0.0/22", "us-east-1", "AMAZON"),
        ][::order]
        table = IpRangeTable(entries)
        assert table.lookup("3.120.1.1") == RangeEntry("aws", "3.120.0.0/14", "eu-central-1", "EC2")
        assert table.lookup("52.94.0.9") == RangeEntry("aws", "52.94.0.0/22", "us-east-1", "AMAZON")


def test_table_looks_up_ipv4_mapped_ipv6_as_ipv4() -> None:
    """An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is looked up as its IPv4 address."""
    table = IpRangeTable([RangeEntry("gcp", "35.198.64.0/18", "europe-west3")])
    assert table.lookup("::ffff:35.198.64.1") == RangeEntry("gcp", "35.198.64.0/18", "europe-west3")


@pytest.mark.parametrize("version", [4, 6])
def test_table_agrees_with_brute_force_longest_match(version: int) -> None:
    """On random nested networks the table finds what a linear longest-prefix scan finds."""
    rng = random.Random(version)
    width = 32 if version == 4 else 128
    top = (1 << width) - 1
    network = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    address = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address

    def near() -> int:
        return rng.getrandbits(width - 12)  # all within the first /12, so networks nest deeply

    nets = {network((near(), rng.randint(12, width - 4)), strict=False) for _ in range(300)}
    # Networks at both ends of the address space.
    nets |= {
        network((0, 4)),
        network((top, width - 2), strict=False),
        network((top, 4), strict=False),
    }
    entries = [RangeEntry("aws", str(net), f"r{index}") for index, net in enumerate(nets)]
    table = IpRangeTable(entries)
    by_net = {network(e.network): e for e in entries}
    for number in [near() for _ in range(1000)] + [0, top, top - 5, 1 << (width - 4)]:
        holding = [net for net in by_net if address(number) in net]
        expected = by_net[max(holding, key=lambda n: n.prefixlen)] if holding else None
        assert table.lookup(str(address(number))) == expected


# --- download against a loopback HTTP server -------------------------------------------------


class _Routes(ThreadingHTTPServer):
    routes: Mapping[str, tuple[int, bytes, Mapping[str, str]]] = {}


class _Handler(BaseHTTPRequestHandler):
    server: _Routes

    def do_GET(self) -> None:
        status, body, headers = self.server.routes.get(self.path, (404, b"no such file", {}))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def http_server() -> Iterator[_Routes]:
    """A real HTTP server on loopback whose `routes` map paths to (status, body, headers)."""
    server = _Routes(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session that ignores proxy settings from the environment (loopback only)."""
    with requests.Session() as http:
        http.trust_env = False
        yield http


def _base(server: _Routes) -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}"


def _urls(server: _Routes) -> dict[str, str]:
    base = _base(server)
    names = ("ip-ranges.json", "cloud.json", "public_ip_ranges.json", "ips-v4", "ips-v6")
    return {name: f"{base}/{name}" for name in (*names, "digitalocean.csv")}


FETCHED = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_fetch_writes_parsed_files_atomically(
    http_server: _Routes, session: requests.Session, tmp_path: Path
) -> None:
    """Every downloaded file is written in place by rename, reported with its build time and size."""
    old = write(tmp_path / "ip-ranges.json", {**AWS_SAMPLE, "createDate": "2026-01-01-00-00-00"})
    old_inode = old.stat().st_ino
    http_server.routes = {
        "/ip-ranges.json": (200, json.dumps(AWS_SAMPLE).encode(), {}),
        "/cloud.json": (200, json.dumps(GCP_SAMPLE).encode(), {}),
        "/public_ip_ranges.json": (200, json.dumps(OCI_SAMPLE).encode(), {}),
        "/ips-v4": (200, b"173.245.48.0/20\n", {"Last-Modified": "Mon, 19 Oct 2026 10:00:00 GMT"}),
        "/ips-v6": (200, b"2606:4700::/32\n", {}),
        "/digitalocean.csv": (200, GEOFEED_SAMPLE.encode(), {}),
    }
    results = fetch_ip_ranges(
        session, tmp_path, timeout=5, urls=_urls(http_server), clock=lambda: FETCHED
    )
    assert [(r.provider, Path(r.path).name, r.ok, r.entries) for r in results] == [
        ("aws", "ip-ranges.json", True, 4),
        ("gcp", "cloud.json", True, 3),
        ("oci", "public_ip_ranges.json", True, 3),
        ("cloudflare", "ips-v4", True, 1),
        ("cloudflare", "ips-v6", True, 1),
        ("do", "digitalocean.csv", True, 4),
    ]
    assert results[0].built == datetime(2026, 10, 26, 12, tzinfo=UTC)
    # Without a build time inside, the fetch dates the file, not the server's Last-Modified: a
    # list unchanged for months is current when it was fetched.
    assert (results[3].built, results[3].fetched) == (FETCHED, FETCHED)
    assert json.loads(old.read_text()) == AWS_SAMPLE
    assert old.stat().st_ino != old_inode  # replaced by rename, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "ip-ranges.json",
            "cloud.json",
            "public_ip_ranges.json",
            "ips-v4",
            "ips-v6",
            "digitalocean.csv",
            "fetched.json",
        ]
    )
    loaded = {Path(f.path).name: (f.built, f.dated_by) for f in load_range_directory(tmp_path)}
    assert loaded["ips-v4"] == (FETCHED, "fetched")
    assert loaded["digitalocean.csv"] == (FETCHED, "fetched")
    assert loaded["ip-ranges.json"] == (datetime(2026, 10, 26, 12, tzinfo=UTC), "build")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (500, b"internal error", "HTTP 500"),
        (200, b"<html>maintenance</html>", "downloaded file is not usable: not valid JSON"),
        (
            200,
            json.dumps({**AWS_SAMPLE, "prefixes": [], "ipv6_prefixes": []}).encode(),
            "no networks",
        ),
    ],
)
def test_failed_download_leaves_old_file_untouched(
    http_server: _Routes,
    session: requests.Session,
    tmp_path: Path,
    status: int,
    body: bytes,
    error: str,
) -> None:
    """A server error or a malformed body is reported, and the previous file stays as it was."""
    old = write(tmp_path / "ip-ranges.json", AWS_SAMPLE)
    before = (old.read_bytes(), old.stat().st_ino, old.stat().st_mtime_ns)
    http_server.routes = {"/ip-ranges.json": (status, body, {})}
    [result] = fetch_ip_ranges(
        session, tmp_path, ["aws"], timeout=5, urls=_urls(http_server), clock=lambda: FETCHED
    )
    assert not result.ok
    assert error in (result.error or "")
    assert result.url == f"{_base(http_server)}/ip-ranges.json"
    assert (old.read_bytes(), old.stat().st_ino, old.stat().st_mtime_ns) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ip-ranges.json"]


def test_unreachable_server_is_reported_not_raised(
    session: requests.Session, tmp_path: Path
) -> None:
    """A refused connection becomes a failed result; the other providers are still fetched."""
    port = free_port()
    urls = {
        "ips-v4": f"http://127.0.0.1:{port}/ips-v4",
        "ips-v6": f"http://127.0.0.1:{port}/ips-v6",
    }
    results = fetch_ip_ranges(
        session, tmp_path, ["cloudflare"], timeout=5, urls=urls, clock=lambda: FETCHED
    )
    assert [(r.ok, (r.error or "").startswith("download failed")) for r in results] == [
        (False, True),
        (False, True),
    ]
    assert list(tmp_path.iterdir()) == []


def test_fetch_asks_for_azure_to_be_downloaded_by_hand(
    session: requests.Session, tmp_path: Path
) -> None:
    """Azure cannot be fetched (its URL changes weekly); the result points at Microsoft's page."""
    [result] = fetch_ip_ranges(session, tmp_path, ["azure"], clock=lambda: FETCHED)
    assert not result.ok
    assert AZURE_DOWNLOAD_PAGE in (result.error or "")


def test_fetch_rejects_unknown_provider(session: requests.Session, tmp_path: Path) -> None:
    """An unknown provider name is invalid input, named in the error."""
    with pytest.raises(InvalidInputError, match="'hetzner'"):
        fetch_ip_ranges(session, tmp_path, ["aws", "hetzner"], clock=lambda: FETCHED)


def test_fetch_record_keeps_entries_of_files_not_fetched_this_time(
    http_server: _Routes, session: requests.Session, tmp_path: Path
) -> None:
    """Fetching one provider adds its files to the record and keeps the others' entries; a
    corrupt record is replaced rather than left to stop every audit."""
    http_server.routes = {
        "/ip-ranges.json": (200, json.dumps(AWS_SAMPLE).encode(), {}),
        "/ips-v4": (200, b"173.245.48.0/20\n", {}),
        "/ips-v6": (200, b"2606:4700::/32\n", {}),
    }
    (tmp_path / "fetched.json").write_text("{broken")
    later = FETCHED.replace(day=2)
    fetch_ip_ranges(
        session, tmp_path, ["aws"], timeout=5, urls=_urls(http_server), clock=lambda: FETCHED
    )
    fetch_ip_ranges(
        session, tmp_path, ["cloudflare"], timeout=5, urls=_urls(http_server), clock=lambda: later
    )
    record = json.loads((tmp_path / "fetched.json").read_text())["files"]
    assert {name: entry["fetched"] for name, entry in record.items()} == {
        "ip-ranges.json": FETCHED.isoformat(),
        "ips-v4": later.isoformat(),
        "ips-v6": later.isoformat(),
    }


def test_corrupt_fetch_record_is_an_error_naming_it(tmp_path: Path) -> None:
    """A malformed fetched.json stops loading with its path, rather than undating files silently."""
    write(tmp_path / "ips-v4", "173.245.48.0/20\n")
    write(tmp_path / "fetched.json", {"format": 1, "files": {"ips-v4": {"fetched": "yesterday"}}})
    with pytest.raises(GeoDataError, match=r"fetched\.json.*files\.ips-v4"):
        load_range_directory(tmp_path)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            '{"format": 1, "files": {"ips-v4": {}, "ips-v4": {}}}',
            "key 'ips-v4' appears twice",
        ),
        ('{"format": 1, "files": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ],
    ids=["duplicate-file", "deep-nesting"],
)
def test_a_fetch_record_read_strictly_names_itself(tmp_path: Path, text: str, reason: str) -> None:
    """fetched.json goes through the project's strict JSON reader: a file listed twice (one
    date would silently replace the other) or deep nesting is an error naming the record."""
    write(tmp_path / "ips-v4", "173.245.48.0/20\n")
    (tmp_path / "fetched.json").write_text(text, encoding="utf-8")
    with pytest.raises(GeoDataError, match=rf"fetched\.json.*{reason}"):
        load_range_directory(tmp_path)
