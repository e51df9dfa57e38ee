"""Discovery stubs and register imports carry vendor_country where their source gives it, and
say TODO where it does not: never a guess."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from auditor.cli import cli
from auditor.core.inventory import parse_inventory
from auditor.core.policies import load_policies
from auditor.core.yamlsource import parse_yaml
from auditor.discovery.catalogue import Vendor
from auditor.discovery.results import Discovery, FoundVendor, inventory_stubs

FIDES = """
system:
  - fides_key: newsletter
    name: Newsletter
    legal_address: 675 Ponce de Leon Ave NE, Atlanta, GA 30308, USA
    privacy_declarations:
      - data_categories: [user.contact.email]
        data_use: marketing.communications.email
  - fides_key: helpdesk
    name: Helpdesk
    legal_address: 1 Main Street, Dublin 2, Ireland
  - fides_key: chat
    name: Chat
    legal_address: Rue de la Loi 1, Brussels, BE
"""

CSV = """id,name,vendor,vendor_country,category,role,data_categories,hosting
crm,CRM,Acme Inc.,US,crm,processor,contact,DE
shop,Shop,Shopco AG,che,webshop,processor,contact,CH
mail,Mail,Mailco,Germany,email-marketing,processor,contact,DE
news,News,Newsco,Atlantis,email-marketing,processor,contact,DE
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def loaded(text: str) -> dict[str, str | None]:
    integrations, issues = parse_inventory(parse_yaml(text, "import"), load_policies())
    assert issues == []
    return {i.id: i.vendor_country.code if i.vendor_country else None for i in integrations}


def test_fides_legal_address_gives_the_vendor_country_when_it_ends_in_a_code(
    tmp_path: Path,
) -> None:
    """An address ending in an alpha-3 code or a country's name maps, with a TODO to check it;
    two letters do not (they end US addresses too: "San Francisco, CA"), and get a TODO."""
    path = tmp_path / "fides.yaml"
    path.write_text(FIDES, encoding="utf-8")

    code, out, err = run("import", "fides", str(path))

    assert 0 == code
    assert {"newsletter": "US", "helpdesk": "IE", "chat": None} == loaded(out)
    assert "'chat': system[2].legal_address: record the country of the vendor's legal" in err
    assert "'newsletter': system[0].legal_address: vendor_country US is the country" in err
    assert "legal_address not mapped" not in err


def test_csv_vendor_country_column_maps_codes_and_reports_the_rest(tmp_path: Path) -> None:
    """A `vendor_country` column takes alpha-2 and alpha-3 codes and common country names;
    anything else is reported."""
    path = tmp_path / "register.csv"
    path.write_text(CSV, encoding="utf-8")

    code, out, err = run("import", "csv", str(path))

    assert 0 == code
    assert {"crm": "US", "shop": "CH", "mail": "DE", "news": None} == loaded(out)
    assert "vendor_country 'Atlantis' is not an ISO country code" in err
    assert "column 'vendor_country' not mapped" not in err


def stub_for(headquarters: str | None) -> str:
    vendor = Vendor(
        id="acme",
        name="Acme",
        category="crm",
        headquarters=headquarters,
        dpf=None,
        hosting=("DE",),
        domains=("acme.example",),
        sources={"headquarters": "https://acme.example/imprint"} if headquarters else {},
    )
    found = FoundVendor(vendor, (), ("app.acme.example",), None)
    return inventory_stubs(Discovery((found,), {}, ()))


def test_a_stub_carries_the_catalogue_headquarters_or_a_todo() -> None:
    """The stub's vendor_country is the catalogue's headquarters with its source, to check; a
    vendor whose headquarters the catalogue lacks gets a TODO comment, not a key."""
    known, unknown = stub_for("NL"), stub_for(None)

    assert {"acme": "NL"} == loaded(known)
    assert "source: https://acme.example/imprint" in known
    assert {"acme": None} == loaded(unknown)
    assert "# TODO: vendor_country: the ISO code of the vendor's headquarters" in unknown
