"""The DNS resolver adapter against a real DNS server on loopback, and against zone files."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.exception
import dns.resolver
import pytest

from auditor.core.errors import ResolverError
from auditor.core.model import Resolution
from auditor.core.ports import Resolver
from auditor.probes.dns import DnsResolver
from auditor.probes.dnstransport import Nameserver, parse_nameserver
from tests.conftest import DnsServerFactory
from tests.dnsserver import LoopbackDnsServer

DEEP_CHAIN = "".join(f"deep{i} CNAME deep{i + 1}\n" for i in range(11)) + "deep11 A 192.0.2.99\n"

ZONE = (
    """
$ORIGIN example.test.
$TTL 300
both      A     192.0.2.10
both      A     192.0.2.2
both      AAAA  2001:db8::1
v4only    A     192.0.2.1
txtonly   TXT   "no addresses here"
www       CNAME Step1.example.test.
step1     CNAME step2
step2     CNAME edge.cdn.test.
edge.cdn.test. A    198.51.100.7
edge.cdn.test. AAAA 2001:db8::7
hop       CNAME target
target    A     203.0.113.5
dangling  CNAME missing
loop-a    CNAME loop-b
loop-b    CNAME loop-a
hop-loop-a CNAME hop-loop-b
hop-loop-b CNAME hop-loop-a
odd       A     192.0.2.20
odd       AAAA  2001:db8::20
"""
    + DEEP_CHAIN
)


@pytest.fixture
def server(dns_server_factory: DnsServerFactory) -> LoopbackDnsServer:
    """The loopback server with the test zone."""
    return dns_server_factory(ZONE)


@pytest.fixture
def silent_address() -> Iterator[str]:
    """The address of a UDP socket that receives queries and never answers them."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def resolve(server: LoopbackDnsServer, name: str, timeout: float = 2.0) -> Resolution:
    """Resolve one name through the server (no retries) and return its Resolution."""
    return DnsResolver([server.address], timeout=timeout, retries=0).resolve_many([name])[name]


def test_a_and_aaaa_addresses_are_collected_sorted_ipv4_first(server: LoopbackDnsServer) -> None:
    """Both address types are asked for; addresses come back sorted numerically, IPv4 first."""
    result = DnsResolver([server.address]).resolve_many(["both.example.test"])
    resolution = result["both.example.test"]
    assert resolution.status == "ok"
    assert resolution.addresses == ("192.0.2.2", "192.0.2.10", "2001:db8::1")
    assert resolution.cname_chain == ()
    assert resolution.reason is None


def test_resolver_satisfies_the_port(server: LoopbackDnsServer) -> None:
    """DnsResolver is usable wherever the audit expects a Resolver."""
    resolver: Resolver = DnsResolver([server.address])
    assert resolver.resolve_many(["v4only.example.test"])["v4only.example.test"].ok


def test_cname_chain_is_recorded_in_order_lower_case(server: LoopbackDnsServer) -> None:
    """A three-step chain answered in one response is recorded target by target, lower-case."""
    resolution = resolve(server, "WWW.Example.Test.")
    assert resolution.status == "ok"
    assert resolution.cname_chain == ("step1.example.test", "step2.example.test", "edge.cdn.test")
    assert resolution.addresses == ("198.51.100.7", "2001:db8::7")


def test_cname_target_missing_from_the_answer_is_asked_for_again(
    server: LoopbackDnsServer,
) -> None:
    """When an answer stops at a CNAME, the resolver queries the target itself."""
    server.set_behaviour("hop.example.test", "no-follow")
    resolver = DnsResolver([server.address])
    resolution = resolver.resolve_many(["hop.example.test"])["hop.example.test"]
    assert resolution.status == "ok"
    assert resolution.cname_chain == ("target.example.test",)
    assert resolution.addresses == ("203.0.113.5",)
    assert server.query_count == 4  # A and AAAA for the name, then for its target


def test_unknown_name_is_nxdomain(server: LoopbackDnsServer) -> None:
    """A name the server does not know is reported as nxdomain, with the name in the reason."""
    resolution = resolve(server, "nope.example.test")
    assert resolution.status == "nxdomain"
    assert resolution.addresses == ()
    assert resolution.reason is not None and "nope.example.test" in resolution.reason


def test_cname_to_a_missing_name_is_nxdomain_with_the_chain(server: LoopbackDnsServer) -> None:
    """A dangling CNAME records the chain and reports the missing target as nxdomain."""
    resolution = resolve(server, "dangling.example.test")
    assert resolution.status == "nxdomain"
    assert resolution.cname_chain == ("missing.example.test",)


def test_name_without_addresses_is_no_answer(server: LoopbackDnsServer) -> None:
    """A name that exists but has neither A nor AAAA records is no-answer."""
    resolution = resolve(server, "txtonly.example.test")
    assert resolution.status == "no-answer"
    assert resolution.reason == "no A or AAAA records for txtonly.example.test"


def test_a_only_name_is_ok_without_a_reason(server: LoopbackDnsServer) -> None:
    """An empty AAAA answer next to A records is not a problem."""
    resolution = resolve(server, "v4only.example.test")
    assert (resolution.status, resolution.addresses, resolution.reason) == (
        "ok",
        ("192.0.2.1",),
        None,
    )


@pytest.mark.parametrize(
    ("behaviour", "status"), [("servfail", "servfail"), ("refused", "refused")]
)
def test_server_failures_become_statuses(
    server: LoopbackDnsServer, behaviour: str, status: str
) -> None:
    """SERVFAIL and REFUSED answers are statuses naming the server, not exceptions."""
    server.set_behaviour("both.example.test", behaviour)
    resolution = resolve(server, "both.example.test")
    assert resolution.status == status
    assert resolution.reason == f"{behaviour.upper()} from {server.address}"


def test_a_timeout_names_every_nameserver_tried_in_order(
    dns_server_factory: DnsServerFactory,
) -> None:
    """With several nameservers, the retries go round them, and a timeout names each once."""
    first, second = dns_server_factory(ZONE), dns_server_factory(ZONE)
    for server in (first, second):
        server.set_behaviour("both.example.test", "timeout")
    resolver = DnsResolver([first.address, second.address], timeout=0.2, retries=2)

    resolution = resolver.resolve_many(["both.example.test"])["both.example.test"]

    assert resolution.status == "timeout"
    assert resolution.reason == f"no answer from {first.address}, {second.address} within 0.2 s"
    assert (first.query_count, second.query_count) == (4, 2)  # A and AAAA: first, second, first


def test_server_that_never_answers_gives_timeout(server: LoopbackDnsServer) -> None:
    """Unanswered queries end in status timeout after timeout x (retries + 1), without raising."""
    server.set_behaviour("both.example.test", "timeout")
    resolver = DnsResolver([server.address], timeout=0.2, retries=1)
    started = time.monotonic()
    resolution = resolver.resolve_many(["both.example.test"])["both.example.test"]
    assert time.monotonic() - started < 1.5
    assert resolution.status == "timeout"
    assert resolution.reason == f"no answer from {server.address} within 0.2 s"
    assert server.query_count == 4  # A and AAAA, each tried twice
    assert resolver.stats.timeouts == 4
    assert resolver.stats.failures == 1


def test_silent_socket_gives_timeout(silent_address: str) -> None:
    """A nameserver address where nothing ever answers yields timeout statuses for every name."""
    resolver = DnsResolver([silent_address], timeout=0.2, retries=0)
    results = resolver.resolve_many(["a.example.test", "b.example.test"])
    assert {r.status for r in results.values()} == {"timeout"}


def test_timeout_rotates_to_the_next_nameserver(
    server: LoopbackDnsServer, silent_address: str
) -> None:
    """A retry after a timeout goes to the next nameserver, which answers."""
    resolver = DnsResolver([silent_address, server.address], timeout=0.2, retries=1)
    resolution = resolver.resolve_many(["v4only.example.test"])["v4only.example.test"]
    assert resolution.status == "ok"
    assert resolution.addresses == ("192.0.2.1",)


def test_aaaa_timeout_keeps_the_a_addresses(server: LoopbackDnsServer) -> None:
    """If A answers and AAAA times out, the result is ok and the reason names the AAAA failure."""
    server.set_behaviour("odd.example.test", "timeout", rdtype="AAAA")
    assert resolve(server, "odd.example.test", timeout=0.2) == Resolution(
        "odd.example.test",
        "ok",
        ("192.0.2.20",),
        (),
        f"AAAA: no answer from {server.address} within 0.2 s",
    )


def test_cname_loop_in_one_answer_is_an_error(server: LoopbackDnsServer) -> None:
    """A CNAME loop returned in one answer is status error naming where the loop closes."""
    resolution = resolve(server, "loop-a.example.test")
    assert resolution.status == "error"
    assert resolution.reason == "CNAME loop at loop-a.example.test"
    assert resolution.cname_chain == ("loop-b.example.test",)


def test_cname_loop_across_queries_is_an_error(server: LoopbackDnsServer) -> None:
    """A loop only visible over several queries is caught too, and stops querying."""
    server.set_behaviour("hop-loop-a.example.test", "no-follow")
    server.set_behaviour("hop-loop-b.example.test", "no-follow")
    resolution = resolve(server, "hop-loop-a.example.test")
    assert resolution.status == "error"
    assert resolution.reason == "CNAME loop at hop-loop-a.example.test"
    assert server.query_count == 4


def test_overlong_cname_chain_is_an_error(server: LoopbackDnsServer) -> None:
    """A chain of more than ten CNAMEs is an error rather than followed forever."""
    resolution = resolve(server, "deep0.example.test")
    assert resolution.status == "error"
    assert resolution.reason == "CNAME chain longer than 10 at deep10.example.test"
    assert len(resolution.cname_chain) == 10


def test_truncated_answer_is_retried_over_tcp(server: LoopbackDnsServer) -> None:
    """An answer with TC set over UDP is fetched again over TCP."""
    server.set_behaviour("both.example.test", "truncate")
    resolver = DnsResolver([server.address])
    resolution = resolver.resolve_many(["both.example.test"])["both.example.test"]
    assert resolution.status == "ok"
    assert resolution.addresses == ("192.0.2.2", "192.0.2.10", "2001:db8::1")
    assert server.tcp_query_count == 2
    assert resolver.stats.tcp_queries == 2
    assert resolver.stats.queries == 4


def test_malformed_answer_is_an_error(server: LoopbackDnsServer) -> None:
    """An answer whose records are cut short is status error, naming the server."""
    server.set_behaviour("both.example.test", "garbage")
    resolution = resolve(server, "both.example.test")
    assert resolution.status == "error"
    assert resolution.reason is not None
    assert resolution.reason.startswith(f"malformed answer from {server.address}")


@pytest.mark.parametrize("hostname", ["a..example.test", "x" * 64 + ".example.test", "", "."])
def test_invalid_hostname_is_an_error_status(server: LoopbackDnsServer, hostname: str) -> None:
    """A hostname that is not a valid DNS name is reported, not raised, and never queried."""
    resolution = DnsResolver([server.address]).resolve_many([hostname])[hostname]
    assert resolution.status == "error"
    assert resolution.reason is not None and resolution.reason.startswith("invalid hostname")
    assert server.query_count == 0


def test_duplicate_hostnames_are_resolved_once(server: LoopbackDnsServer) -> None:
    """Each distinct hostname is looked up once and keyed as given."""
    resolver = DnsResolver([server.address])
    results = resolver.resolve_many(["both.example.test", "both.example.test"])
    assert list(results) == ["both.example.test"]
    assert server.query_count == 2
    assert resolver.stats.hostnames == 1


def test_address_literals_resolve_to_themselves(server: LoopbackDnsServer) -> None:
    """An IP address given as an endpoint is its own address, with no query sent."""
    results = DnsResolver([server.address]).resolve_many(["192.0.2.7", "[2001:DB8::7]"])
    assert results["192.0.2.7"].addresses == ("192.0.2.7",)
    assert results["[2001:DB8::7]"].addresses == ("2001:db8::7",)
    assert server.query_count == 0


def test_stats_count_queries_and_statuses(server: LoopbackDnsServer) -> None:
    """The resolver keeps running totals of hostnames, queries and statuses across calls."""
    resolver = DnsResolver([server.address])
    resolver.resolve_many(["both.example.test", "nope.example.test"])
    resolver.resolve_many(["txtonly.example.test"])
    stats = resolver.stats
    assert (stats.hostnames, stats.queries, stats.failures) == (3, 6, 2)
    assert stats.statuses == {"ok": 1, "nxdomain": 1, "no-answer": 1}


@pytest.mark.parametrize(
    "settings", [{"timeout": 0.0}, {"concurrency": 0}, {"retries": -1}], ids=str
)
def test_bad_settings_raise_resolver_error(
    server: LoopbackDnsServer, settings: dict[str, Any]
) -> None:
    """A non-positive timeout or concurrency, or negative retries, is refused at construction."""
    with pytest.raises(ResolverError):
        DnsResolver([server.address], **settings)


def test_no_nameservers_means_the_system_configuration() -> None:
    """Without nameservers or zone files, the system resolver configuration is read."""
    try:
        expected = dns.resolver.Resolver(configure=True).nameservers
    except dns.exception.DNSException:
        with pytest.raises(ResolverError):
            DnsResolver([])
    else:
        assert {ns.host for ns in DnsResolver([]).nameservers} == set(map(str, expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", Nameserver("192.0.2.1", 53)),
        ("192.0.2.1:5353", Nameserver("192.0.2.1", 5353)),
        ("::1", Nameserver("::1", 53)),
        ("[::1]:5353", Nameserver("::1", 5353)),
        ("[2001:DB8:0::1]", Nameserver("2001:db8::1", 53)),
        (" 192.0.2.1 ", Nameserver("192.0.2.1", 53)),
    ],
)
def test_nameserver_syntax(text: str, expected: Nameserver) -> None:
    """Nameservers are host, host:port, bare IPv6 or [IPv6]:port, normalised."""
    assert parse_nameserver(text) == expected


def test_nameserver_text_form_brackets_ipv6() -> None:
    """A nameserver prints as it is written in the configuration."""
    assert str(Nameserver("::1", 5353)) == "[::1]:5353"
    assert str(Nameserver("192.0.2.1", 53)) == "192.0.2.1:53"


@pytest.mark.parametrize(
    "text",
    ["dns.example.test", "192.0.2.1:0", "192.0.2.1:65536", "192.0.2.1:dns", "[::1", "[::1]53", ""],
)
def test_bad_nameserver_raises_resolver_error(text: str) -> None:
    """A nameserver that is not an IP address with a valid port is refused at construction."""
    with pytest.raises(ResolverError) as caught:
        DnsResolver([text])
    assert repr(text) in str(caught.value)


def test_ipv6_nameserver_is_queried(dns_server_factory: DnsServerFactory) -> None:
    """A nameserver given as [::1]:port is queried over IPv6."""
    try:
        server = dns_server_factory(ZONE, host="::1")
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    assert server.address.startswith("[::1]:")
    resolution = resolve(server, "both.example.test")
    assert resolution.addresses == ("192.0.2.2", "192.0.2.10", "2001:db8::1")


def test_concurrency_bound_is_respected(server: LoopbackDnsServer) -> None:
    """With concurrency=4, the server never sees more than 8 queries (A+AAAA) outstanding."""
    server.delay = 0.03
    names = [f"n{i}.example.test" for i in range(24)]
    results = DnsResolver([server.address], concurrency=4).resolve_many(names)
    assert len(results) == 24
    assert 2 < server.max_in_flight <= 8


def test_progress_is_reported_up_to_the_total(server: LoopbackDnsServer) -> None:
    """Progress calls are few, increasing, and end with (total, total)."""
    calls: list[tuple[int, int]] = []
    names = [f"n{i}.example.test" for i in range(450)]
    DnsResolver([server.address]).resolve_many(names, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (450, 450)
    assert len(calls) <= 101
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_empty_input_reports_final_progress(server: LoopbackDnsServer) -> None:
    """No hostnames: an empty result, and progress still hears (0, 0)."""
    calls: list[tuple[int, int]] = []
    assert DnsResolver([server.address]).resolve_many([], progress=lambda *c: calls.append(c)) == {}
    assert calls == [(0, 0)]


ZONE_FILE = """\
$ORIGIN corp.test.
$TTL 3600
@        IN SOA ns hostmaster 1 7200 900 1209600 300
@        IN NS  ns
ns       IN A   192.0.2.53
crm      IN CNAME crm.vendor.test.
web      IN A   192.0.2.80
web      IN AAAA 2001:db8::80
*.apps   IN A   192.0.2.81
notes    IN TXT "nothing to resolve"
a.b.deep IN A   192.0.2.82
"""

VENDOR_ZONE_FILE = """\
$ORIGIN vendor.test.
$TTL 3600
crm      IN CNAME eu-1.crm
eu-1.crm IN A   198.51.100.20
"""


@pytest.fixture
def zone_files(tmp_path: Path) -> list[Path]:
    """Two zone files, one CNAMEing into the other."""
    corp = tmp_path / "corp.test.zone"
    corp.write_text(ZONE_FILE)
    vendor = tmp_path / "vendor.test.zone"
    vendor.write_text(VENDOR_ZONE_FILE)
    return [corp, vendor]


def test_zone_files_answer_offline(zone_files: list[Path]) -> None:
    """With zone files and no nameserver, names are answered from the files with no query sent."""
    resolver = DnsResolver([], zone_files=zone_files)
    names = [
        "web.corp.test",
        "crm.corp.test",
        "x.apps.corp.test",
        "nope.corp.test",
        "notes.corp.test",
        "b.deep.corp.test",
    ]
    results = resolver.resolve_many(names)
    assert results["web.corp.test"].addresses == ("192.0.2.80", "2001:db8::80")
    crm = results["crm.corp.test"]
    assert crm.cname_chain == ("crm.vendor.test", "eu-1.crm.vendor.test")
    assert crm.addresses == ("198.51.100.20",)
    assert results["x.apps.corp.test"].addresses == ("192.0.2.81",)  # wildcard
    assert results["nope.corp.test"].status == "nxdomain"
    assert results["notes.corp.test"].status == "no-answer"
    assert results["b.deep.corp.test"].status == "no-answer"  # an empty non-terminal exists
    assert resolver.stats.queries == 0


def test_name_outside_the_zone_files_is_an_error_when_air_gapped(zone_files: list[Path]) -> None:
    """Air-gapped (zone files, no nameserver): a name outside every zone is an error status."""
    resolution = DnsResolver([], zone_files=zone_files).resolve_many(["example.org"])["example.org"]
    assert resolution.status == "error"
    assert resolution.reason == "outside the loaded zone files"


def test_zone_files_and_nameservers_together(
    server: LoopbackDnsServer, zone_files: list[Path]
) -> None:
    """Names under a loaded zone come from the file; the rest go to the nameserver."""
    resolver = DnsResolver([server.address], zone_files=zone_files)
    results = resolver.resolve_many(["web.corp.test", "v4only.example.test"])
    assert results["web.corp.test"].addresses == ("192.0.2.80", "2001:db8::80")
    assert results["v4only.example.test"].addresses == ("192.0.2.1",)
    assert server.query_count == 2


def refused_zone_file(path: Path, text: str | None = None) -> ResolverError:
    """The error a resolver raises at construction when given the zone file `path` (holding
    `text`, or missing when None)."""
    if text is not None:
        path.write_text(text)
    with pytest.raises(ResolverError) as caught:
        DnsResolver([], zone_files=[path])
    return caught.value


def test_broken_zone_file_raises_naming_file_and_line(tmp_path: Path) -> None:
    """A zone file with a bad record is refused at construction, naming the file and line."""
    broken = tmp_path / "broken.zone"
    text = "$ORIGIN corp.test.\n$TTL 60\nweb IN A 192.0.2.1\nmail IN BOGUS 192.0.2.2\n"
    error = refused_zone_file(broken, text)
    assert error.source == str(broken)
    assert error.reason == "line 4: unknown rdatatype 'BOGUS'"


def test_zone_file_with_a_bad_address_raises(tmp_path: Path) -> None:
    """A record whose data does not parse is refused too, naming the file."""
    broken = tmp_path / "broken.zone"
    error = refused_zone_file(broken, "$ORIGIN corp.test.\n$TTL 60\nmail IN A not-an-ip\n")
    assert error.source == str(broken)
    assert error.reason.startswith("line ")


def test_missing_zone_file_raises(tmp_path: Path) -> None:
    """A zone file that cannot be read is a ResolverError naming it."""
    missing = tmp_path / "missing.zone"
    error = refused_zone_file(missing)
    assert error.source == str(missing)
    assert "cannot read zone file" in error.reason
