"""`gdpr-auditor discover` end to end: loopback DNS and HTTP, inventory matching, YAML stubs."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from auditor.cli import cli
from auditor.core.inventory import parse_inventory
from auditor.core.policies import load_policies
from auditor.core.yamlsource import parse_yaml
from tests.conftest import DnsServerFactory
from tests.discovery.test_discovery_dns import ZONE
from tests.discovery.test_discovery_pages import site  # noqa: F401 - the loopback web site fixture

INVENTORY = """
integrations:
  - id: google-workspace
    name: Google Workspace
    category: other
    role: processor
    data_categories: [contact, communications]
    hosting: [US]
  - id: newsletter
    name: Newsletter
    vendor: ACME Mail Ltd
    category: email-marketing
    role: processor
    data_categories: [contact]
    endpoints: [api.sendgrid.com]
    hosting: [US]
  - id: crm
    name: Our CRM
    vendor: HubSpot
    category: crm
    role: processor
    data_categories: [contact]
    hosting: [US]
"""


def workdir(tmp_path: Path, nameserver: str, discovery: str = "") -> Path:
    (tmp_path / "inventory.yaml").write_text(INVENTORY, encoding="utf-8")
    config = tmp_path / "auditor.yaml"
    config.write_text(
        f"inventory: inventory.yaml\ndns:\n  nameservers: ['{nameserver}']\n  timeout: 1\n"
        + discovery,
        encoding="utf-8",
    )
    return config


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_discover_json_lists_vendors_evidence_and_declarations(
    tmp_path: Path,
    dns_server_factory: DnsServerFactory,
    site: str,  # noqa: F811
) -> None:
    """Vendors from DNS and the page are listed with their evidence; the inventory declares
    Google (same id), SendGrid (an endpoint under its domains) and HubSpot (vendor name); the
    others are undeclared and the exit status is 1."""
    server = dns_server_factory(ZONE)
    config = workdir(tmp_path, server.address, "discovery:\n  domains: [shop-co.example]\n")
    result = run("discover", "--config", str(config), "--page", f"{site}/", "--format", "json")
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    state = {vendor["id"]: vendor["integration"] for vendor in document["vendors"]}
    assert state["google-workspace"] == "google-workspace"
    assert state["sendgrid"] == "newsletter"
    assert state["hubspot"] == "crm"
    assert state["mailchimp"] is None and state["shopify"] is None and state["hotjar"] is None
    shopify = next(v for v in document["vendors"] if v["id"] == "shopify")
    assert shopify["hosts"] == ["shops.myshopify.com"]
    assert shopify["evidence"][0]["kind"] == "cname"
    assert document["coverage"] == round(3 / len(document["vendors"]), 4)
    assert "img.unknown-cdn.example" in {item["host"] for item in document["unknown_hosts"]}


def test_discover_yaml_writes_valid_inventory_stubs(
    tmp_path: Path,
    dns_server_factory: DnsServerFactory,
    site: str,  # noqa: F811
) -> None:
    """`--format yaml` writes one stub per undeclared vendor that the inventory loader accepts,
    with TODO comments and the evidence as comments."""
    server = dns_server_factory(ZONE)
    config = workdir(tmp_path, server.address)
    result = run(
        "discover", "--config", str(config), "--domain", "shop-co.example",
        "--page", f"{site}/", "--format", "yaml",
    )  # fmt: skip
    assert result.exit_code == 1
    assert "# TODO" in result.output and "# Found: CNAME www.shop-co.example" in result.output
    integrations, issues = parse_inventory(parse_yaml(result.output, "stubs"), load_policies())
    assert issues == []
    ids = {integration.id for integration in integrations}
    assert {"mailchimp", "shopify", "zendesk", "hotjar", "typeform"} <= ids
    assert not ids & {"google-workspace", "sendgrid", "hubspot"}
    # A web category the inventory has no word for becomes the nearest one, and says so.
    tag_manager = next(i for i in integrations if i.id == "google-tag-manager")
    assert tag_manager.category == "analytics"
    assert "category: analytics  # the catalogue says tag-manager" in result.output
    typeform = next(i for i in integrations if i.id == "typeform")
    assert typeform.endpoints == ("form.typeform.com",)
    assert yaml.safe_load(result.output)["integrations"][0]["role"] == "processor"
    # The catalogue's DPF status and usual adequacy scope are hints for the DPO: comments only.
    by_id = {integration.id: integration for integration in integrations}
    assert all(not i.transfer.certifications and not i.transfer.in_scope_of for i in integrations)
    assert by_id["mailchimp"].transfer.dpf_certified is False
    assert "# in_scope_of: [ca-2001]" in result.output  # Shopify, a Canadian company
    assert "# certifications: [{framework: dpf" in result.output
    # The catalogue's headquarters become vendor_country, marked for checking.
    assert ("US", "CA") == (
        by_id["mailchimp"].vendor_country.code,  # type: ignore[union-attr]
        by_id["shopify"].vendor_country.code,  # type: ignore[union-attr]
    )
    assert "vendor_country: US  # TODO: check (catalogue headquarters, source: memory)" in (
        result.output
    )


def test_discover_table_and_nothing_to_do(
    tmp_path: Path, dns_server_factory: DnsServerFactory
) -> None:
    """The table names undeclared vendors and problems; without domains or pages the command
    refuses with exit 2; a domain whose vendors are all declared exits 0."""
    server = dns_server_factory(ZONE + '\nok.example. IN TXT "google-site-verification=x"\n')
    config = workdir(tmp_path, server.address)
    result = run("discover", "--config", str(config), "--domain", "loop.example")
    assert result.exit_code == 1
    assert "Zendesk (zendesk, support): NOT DECLARED" in result.output
    assert "SPF include loop" in result.output
    assert run("discover", "--config", str(config)).exit_code == 2
    result = run("discover", "--config", str(config), "--domain", "ok.example")
    assert result.exit_code == 0, result.output
    assert "declared as google-workspace" in result.output


def test_discover_with_every_source_failing_exits_3_with_coverage_unknown(
    tmp_path: Path, dns_server_factory: DnsServerFactory
) -> None:
    """An unreachable page is the only source: nothing was checked, so the verb exits 3, says
    why, and the coverage is unknown (null), never 100%."""
    server = dns_server_factory(ZONE)
    config = workdir(tmp_path, server.address)
    page = "http://127.0.0.1:9/"  # the discard port: nothing listens there

    table = CliRunner().invoke(cli, ["discover", "--config", str(config), "--page", page])
    document = run("discover", "--config", str(config), "--page", page, "--format", "json")

    assert table.exit_code == 3, table.output
    assert "coverage unknown: no domain or page could be checked" in table.output
    assert "100%" not in table.output
    assert "nothing could be checked" in table.stderr
    assert document.exit_code == 3
    parsed = json.loads(document.stdout)
    assert parsed["coverage"] is None and parsed["complete"] is False
    assert parsed["problems"] and parsed["problems"][0].startswith(page)


def test_discover_with_some_sources_failing_leaves_the_coverage_unknown(
    tmp_path: Path, dns_server_factory: DnsServerFactory
) -> None:
    """A domain that answers and a page that does not: what was seen is listed and the exit
    status follows it, but the coverage is unknown: the page may hide an undeclared vendor."""
    server = dns_server_factory(ZONE + '\nok.example. IN TXT "google-site-verification=x"\n')
    config = workdir(tmp_path, server.address)
    args = ["discover", "--config", str(config), "--domain", "ok.example"]

    result = run(*args, "--page", "http://127.0.0.1:9/", "--format", "json")
    complete = run(*args, "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["coverage"] is None
    assert json.loads(complete.stdout)["coverage"] == 1.0
