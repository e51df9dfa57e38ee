"""The published IP-range formats (AWS, Google Cloud, Azure, OCI, Cloudflare, geofeeds) -> range
entries, every malformed value named by its file and place."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from auditor.core import jsonsource
from auditor.core.errors import GeoDataError

PROVIDERS = ("aws", "gcp", "azure", "oci", "cloudflare", "do")
"""Every provider whose published range files are understood."""

# Services that repeat every prefix of a provider under a catch-all name; a specific service
# listing the same prefix says more (AWS lists each EC2 prefix under AMAZON as well).
GENERIC_SERVICES = frozenset({"AMAZON", "AzureCloud"})


@dataclass(frozen=True, slots=True)
class RangeEntry:
    """One published network of a provider, with its region and service as published."""

    provider: str  # one of PROVIDERS
    network: str  # CIDR text, normalised
    region: str | None = None  # as published (Azure short forms stay short); None when global
    service: str | None = None
    country: str | None = None  # only geofeeds publish a country
    # AWS's network border group where it is not the region itself: a Local or Wavelength Zone,
    # which can be in another country than its region (us-east-1-qro-1 is in Mexico).
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class RangeFile:
    """One parsed range file: its provider, how old it is, and its networks."""

    provider: str
    path: str
    # UTC; the provider's build time from the file or its name ("build"), else when `geodb
    # update` fetched it ("fetched"); never the file's modification time, which a copy or a
    # restore changes without the data getting newer. None: the age is unknown.
    built: datetime | None
    entries: tuple[RangeEntry, ...]
    dated_by: str | None = None  # "build", "fetched", or None when `built` is None


@dataclass(frozen=True, slots=True)
class _Parsed:
    built: datetime | None
    entries: list[RangeEntry]


_Parser = Callable[[str, str], _Parsed]


# --- small validation helpers ---------------------------------------------------------------


def _fail(source: str, where: str, reason: str) -> GeoDataError:
    return GeoDataError(source, f"{where}: {reason}" if where else reason)


def _get(obj: Any, key: str, kind: type | tuple[type, ...], source: str, where: str) -> Any:
    """Return `obj[key]`, raising GeoDataError naming the field when absent or mistyped."""
    if not isinstance(obj, dict):
        raise _fail(source, where, f"expected an object, found {type(obj).__name__}")
    path = f"{where}.{key}" if where else key
    if key not in obj:
        raise _fail(source, path, "required key is missing")
    value = obj[key]
    if not isinstance(value, kind):
        raise _fail(source, path, f"unexpected {type(value).__name__} value {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _network(text: Any, source: str, where: str) -> str:
    if not isinstance(text, str):
        raise _fail(source, where, f"expected a network, found {_short(text)}")
    try:
        # Not strict: a published prefix with host bits set still names its network.
        return str(ipaddress.ip_network(text.strip(), strict=False))
    except ValueError:
        raise _fail(source, where, f"{_short(text)} is not a network") from None


def _timestamp(text: Any, source: str, where: str) -> datetime:
    if not isinstance(text, str):
        raise _fail(source, where, f"expected a timestamp, found {text!r}")
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(source, where, f"{text!r} is not an ISO 8601 timestamp") from None
    # The providers publish UTC without saying so.
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _json(text: str, source: str, expected: str) -> dict[str, Any]:
    try:
        data = jsonsource.loads(text)
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise GeoDataError(source, reason) from None
    except (ValueError, RecursionError) as exc:  # a duplicate key, a huge number, deep nesting
        raise GeoDataError(source, f"not usable JSON: {jsonsource.problem(exc)}") from None
    if not isinstance(data, dict):
        raise GeoDataError(source, f"not {expected}: the top level is not an object")
    guess = _sniff(data)
    if guess is not None and guess != expected:
        raise GeoDataError(source, f"not {expected}: it looks like {guess}")
    return data


def _sniff(data: dict[str, Any]) -> str | None:
    """Name the published format a JSON document looks like, to explain a mix-up."""
    signatures = (
        ("createDate", "an AWS ip-ranges.json"),
        ("creationTime", "a GCP cloud.json"),
        ("values", "an Azure Service Tags file"),
        ("last_updated_timestamp", "an OCI public_ip_ranges.json"),
        ("result", "a Cloudflare API response"),
    )
    return next((name for key, name in signatures if key in data), None)


def _nonempty(entries: list[RangeEntry], source: str) -> list[RangeEntry]:
    # A published range file is never empty; an empty one is a truncated or wrong download.
    if not entries:
        raise GeoDataError(source, "contains no networks")
    return entries


def _region(value: Any, *, global_names: frozenset[str]) -> str | None:
    if not isinstance(value, str) or not value.strip() or value.strip() in global_names:
        return None
    return value.strip()


# --- the published formats ------------------------------------------------------------------


def _parse_aws(text: str, source: str) -> _Parsed:
    """Parse AWS `ip-ranges.json` (prefixes and ipv6_prefixes; createDate)."""
    data = _json(text, source, "an AWS ip-ranges.json")
    created = _get(data, "createDate", str, source, "")
    try:
        built = datetime.strptime(created, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=UTC)
    except ValueError:
        raise _fail(source, "createDate", f"{created!r} is not YYYY-MM-DD-hh-mm-ss") from None
    entries: list[RangeEntry] = []
    for list_key, prefix_key in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        for index, item in enumerate(_get(data, list_key, list, source, "")):
            where = f"{list_key}[{index}]"
            prefix = _get(item, prefix_key, str, source, where)
            network = _network(prefix, source, f"{where}.{prefix_key}")
            region = _region(
                _get(item, "region", str, source, where), global_names=frozenset({"GLOBAL"})
            )
            service = _get(item, "service", str, source, where)
            zone = _border_group(item, region, source, where)
            entries.append(RangeEntry("aws", network, region, service, zone=zone))
    return _Parsed(built, _nonempty(entries, source))


def _border_group(item: dict[str, Any], region: str | None, source: str, where: str) -> str | None:
    """Return an AWS prefix's network border group when it names a zone, not the region.

    Files from before 2020 have no border group; their prefixes are in the region itself.
    """
    group = item.get("network_border_group")
    if group is None:
        return None
    if not isinstance(group, str):
        raise _fail(source, f"{where}.network_border_group", f"unexpected value {_short(group)}")
    group = group.strip()
    if region is None or not group or group == region:
        return None
    return group


def _parse_gcp(text: str, source: str) -> _Parsed:
    """Parse Google Cloud `cloud.json` (ipv4Prefix/ipv6Prefix, service, scope; creationTime)."""
    data = _json(text, source, "a GCP cloud.json")
    built = _timestamp(_get(data, "creationTime", str, source, ""), source, "creationTime")
    entries: list[RangeEntry] = []
    for index, item in enumerate(_get(data, "prefixes", list, source, "")):
        where = f"prefixes[{index}]"
        if not isinstance(item, dict):
            raise _fail(source, where, "expected an object")
        key = "ipv4Prefix" if "ipv4Prefix" in item else "ipv6Prefix"
        network = _network(_get(item, key, str, source, where), source, f"{where}.{key}")
        scope = item.get("scope")
        service = item.get("service")
        entries.append(
            RangeEntry(
                "gcp",
                network,
                _region(scope, global_names=frozenset({"global"})),
                service if isinstance(service, str) and service else None,
            )
        )
    return _Parsed(built, _nonempty(entries, source))


def _parse_azure(text: str, source: str) -> _Parsed:
    """Parse an Azure Service Tags file (values[].properties: region, addressPrefixes)."""
    data = _json(text, source, "an Azure Service Tags file")
    entries: list[RangeEntry] = []
    for index, tag in enumerate(_get(data, "values", list, source, "")):
        where = f"values[{index}]"
        name = _get(tag, "name", str, source, where)
        props = _get(tag, "properties", dict, source, where)
        where = f"{where}({name}).properties"
        region = _region(props.get("region"), global_names=frozenset())
        # Regional AzureCloud.* tags have an empty systemService; the tag name says it instead.
        system = props.get("systemService")
        service = system if isinstance(system, str) and system else name.split(".", 1)[0]
        for offset, prefix in enumerate(_get(props, "addressPrefixes", list, source, where)):
            network = _network(prefix, source, f"{where}.addressPrefixes[{offset}]")
            entries.append(RangeEntry("azure", network, region, service))
    # Service Tags files carry no build time; the loader takes it from the file name.
    return _Parsed(None, _nonempty(entries, source))


def _parse_oci(text: str, source: str) -> _Parsed:
    """Parse Oracle Cloud `public_ip_ranges.json` (regions[].cidrs[]; last_updated_timestamp)."""
    data = _json(text, source, "an OCI public_ip_ranges.json")
    stamp = _get(data, "last_updated_timestamp", str, source, "")
    built = _timestamp(stamp, source, "last_updated_timestamp")
    entries: list[RangeEntry] = []
    for index, block in enumerate(_get(data, "regions", list, source, "")):
        where = f"regions[{index}]"
        region = _get(block, "region", str, source, where)
        for offset, item in enumerate(_get(block, "cidrs", list, source, where)):
            item_where = f"{where}.cidrs[{offset}]"
            cidr = _get(item, "cidr", str, source, item_where)
            network = _network(cidr, source, f"{item_where}.cidr")
            tags = item.get("tags") if isinstance(item, dict) else None
            service = ",".join(tags) if isinstance(tags, list) and tags else None
            entries.append(RangeEntry("oci", network, region or None, service))
    return _Parsed(built, _nonempty(entries, source))


def _parse_cloudflare_text(text: str, source: str) -> _Parsed:
    """Parse Cloudflare's `ips-v4` / `ips-v6` lists: one network per line."""
    entries: list[RangeEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            entries.append(RangeEntry("cloudflare", _network(line, source, f"line {number}")))
    return _Parsed(None, _nonempty(entries, source))


def _parse_cloudflare_json(text: str, source: str) -> _Parsed:
    """Parse Cloudflare's API answer (`result.ipv4_cidrs`, `result.ipv6_cidrs`)."""
    data = _json(text, source, "a Cloudflare API response")
    result = _get(data, "result", dict, source, "")
    entries: list[RangeEntry] = []
    for key in ("ipv4_cidrs", "ipv6_cidrs"):
        for index, prefix in enumerate(_get(result, key, list, source, "result")):
            entries.append(
                RangeEntry("cloudflare", _network(prefix, source, f"result.{key}[{index}]"))
            )
    return _Parsed(None, _nonempty(entries, source))


_COUNTRY = re.compile(r"[A-Z]{2}")


def _parse_geofeed(text: str, source: str) -> _Parsed:
    """Parse an RFC 8805 geofeed (prefix,country,region,city,postal), as DigitalOcean publishes."""
    rows = csv.reader(io.StringIO(text), strict=True)
    try:
        entries = [
            _geofeed_entry(row, source, f"line {rows.line_num}")
            for row in rows
            if row and "".join(row).strip() and not row[0].lstrip().startswith("#")
        ]
    except csv.Error as exc:
        raise _fail(source, f"line {rows.line_num}", f"not CSV: {exc}") from None
    return _Parsed(None, _nonempty(entries, source))


def _geofeed_entry(row: list[str], source: str, where: str) -> RangeEntry:
    network = _network(row[0], source, where)
    country = row[1].strip().upper() if len(row) > 1 else ""
    if country and not _COUNTRY.fullmatch(country):
        raise _fail(source, where, f"{row[1]!r} is not an ISO 3166-1 alpha-2 country code")
    region = row[2].strip() if len(row) > 2 and row[2].strip() else None
    return RangeEntry("do", network, region, None, country or None)


@dataclass(frozen=True, slots=True)
class _Format:
    provider: str
    pattern: re.Pattern[str]  # matched against the lower-cased file name
    parse: _Parser


_FORMATS = (
    _Format("aws", re.compile(r"ip-ranges\.json"), _parse_aws),
    _Format("gcp", re.compile(r"cloud\.json"), _parse_gcp),
    _Format("azure", re.compile(r"servicetags_[a-z0-9_]*\.json"), _parse_azure),
    _Format("oci", re.compile(r"public_ip_ranges\.json"), _parse_oci),
    _Format("cloudflare", re.compile(r"ips-v[46](\.txt)?"), _parse_cloudflare_text),
    _Format("cloudflare", re.compile(r"cloudflare\.json"), _parse_cloudflare_json),
    _Format("do", re.compile(r"(google|digitalocean)\.csv"), _parse_geofeed),
)

NAME_DATE = re.compile(r"(20\d{2})(\d{2})(\d{2})")


def _format_for(name: str) -> _Format | None:
    return next((f for f in _FORMATS if f.pattern.fullmatch(name.lower())), None)


def is_range_file_name(name: str) -> bool:
    """Return whether a file name is one of the published range files understood here."""
    return _format_for(name) is not None


def _date_in_name(name: str) -> datetime | None:
    match = NAME_DATE.search(name)
    if match is None:
        return None
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def parse_range_bytes(
    content: bytes, name: str, source: str, fetched: datetime | None = None
) -> RangeFile:
    """Parse the content of a range file, choosing the format by its file name.

    `fetched` (when `geodb update` fetched this content) dates formats that carry no build time
    in their content or name.

    Raises:
        GeoDataError: the name is not a known range file, or the content is malformed.
    """
    fmt = _format_for(name)
    if fmt is None:
        raise GeoDataError(source, f"{name!r} is not the name of a known IP-range file")
    try:
        text = content.decode("utf-8-sig")  # Microsoft's files may start with a BOM
    except UnicodeDecodeError as exc:
        raise GeoDataError(source, f"not UTF-8 text (byte {exc.start})") from None
    parsed = fmt.parse(text, source)
    built = parsed.built or _date_in_name(name)
    dated_by = "build" if built is not None else ("fetched" if fetched is not None else None)
    return RangeFile(fmt.provider, source, built or fetched, tuple(parsed.entries), dated_by)
