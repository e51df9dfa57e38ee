"""`gdpr-auditor import fides|csv`: a Fides export and a CSV register into valid inventory YAML."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from auditor.cli import cli
from auditor.core.inventory import parse_inventory
from auditor.core.model import Integration
from auditor.core.policies import load_policies
from auditor.core.yamlsource import parse_yaml

FIDES = """
system:
  - fides_key: mailchimp_marketing
    name: Mailchimp
    description: Newsletter sending
    organization_fides_key: default_organization
    system_type: Service
    egress:
      - fides_key: crm_system
        type: system
    privacy_declarations:
      - name: Newsletter
        data_categories: [user.contact.email, user.name.first, user.behavior.browsing_history]
        data_use: marketing.communications.email
        data_subjects: [customer]
    third_country_transfers: [USA]
  - fides_key: support_desk
    name: Support Desk
    privacy_declarations:
      - name: Tickets
        data_categories: [user.contact, user.biometric.fingerprint, user.sensor]
        data_use: essential.service.operations.support
      - name: Insights
        data_categories: [user.device.cookie_id]
        data_use: analytics.reporting
    third_country_transfers: [XYZ, GBR]
  - name: no key here
dataset:
  - fides_key: crm_db
    name: CRM database
    collections: []
"""

CSV = """id,Name,vendor,category,role,data_categories,endpoints,hosting,dpf_certified,dpa_signed,owner
crm,Our CRM,Acme CRM Inc.,crm,processor,contact;identity,api.acme-crm.example,US;aws:eu-central-1,yes,2024-03-01,Sales
,Ticket Tool,,helpdesk,,contact;gossip,,DE,maybe,not a date,Support
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def import_file(kind: str, path: Path, content: str) -> tuple[list[Integration], str, str]:
    """`import KIND` of `content` written at `path`: it exits 0 and its YAML loads as inventory
    without issue; the integrations, the YAML and stderr."""
    path.write_text(content, encoding="utf-8")
    code, out, err = run("import", kind, str(path))
    assert code == 0
    integrations, issues = parse_inventory(parse_yaml(out, "import"), load_policies())
    assert issues == []
    return integrations, out, err


def test_fides_export_maps_what_maps_and_reports_the_rest(tmp_path: Path) -> None:
    """Systems become entries with mapped data categories, category from the data use and
    hosting from (fideslang 2) third-country transfers; datasets, keyless systems, unknown
    countries and egress are reported; an unmapped user category is unclassified personal
    data; the YAML loads as inventory. tests/discovery/test_fides_import.py has the rest."""
    path = tmp_path / "fides.yaml"
    integrations, out, err = import_file("fides", path, FIDES)
    mailchimp, desk = integrations
    assert (mailchimp.id, mailchimp.category) == ("mailchimp-marketing", "email-marketing")
    assert mailchimp.data_categories == ("contact", "identity", "behavioural")
    assert [place.spec for place in mailchimp.hosting] == ["US"]
    assert desk.category == "other"  # two data uses: the user chooses
    assert desk.data_categories == ("contact", "device", "special", "unclassified")
    assert [place.spec for place in desk.hosting] == ["GB"]
    assert f"note: {path}:29: dataset crm_db: a database description" in err
    assert f"{path}:27: system #3: no fides_key" in err
    assert "system 'support_desk': system[1].third_country_transfers: 'XYZ'" in err
    assert (
        "system 'support_desk': system[1].privacy_declarations: personal data of a kind to "
        "be confirmed (user.sensor)" in err
    )
    assert "system 'mailchimp_marketing': system[0].egress: sends data to crm_system" in err
    assert "# TODO: system[0].egress: sends data to crm_system" in out


def test_csv_register_maps_rows_and_reports_bad_cells(tmp_path: Path) -> None:
    """Rows become entries (lists split on `;`, DPF and DPA date mapped); unknown columns,
    categories, roles, data categories, yes/no values and dates are reported; the YAML loads."""
    path = tmp_path / "register.csv"
    integrations, _, err = import_file("csv", path, CSV)
    crm, tickets = integrations
    assert crm.vendor == "Acme CRM Inc." and crm.endpoints == ("api.acme-crm.example",)
    assert [place.spec for place in crm.hosting] == ["US", "aws:eu-central-1"]
    assert crm.transfer.dpf_certified and crm.contract.dpa_signed is not None
    assert (tickets.id, tickets.category, tickets.data_categories) == (
        "ticket-tool", "other", ("contact",),
    )  # fmt: skip
    for expected in ("column 'owner' not mapped", "category 'helpdesk'", "data category 'gossip'",
                     "dpf_certified 'maybe'", "dpa_signed 'not a date'"):  # fmt: skip
        assert expected in err


def test_import_refuses_files_that_are_not_registers(tmp_path: Path) -> None:
    """A YAML file without a system list, and a CSV without a name column, exit 2."""
    path = tmp_path / "other.yaml"
    path.write_text("foo: bar\n", encoding="utf-8")
    assert run("import", "fides", str(path))[0] == 2
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    assert run("import", "csv", str(path))[0] == 2


def test_a_key_or_column_twice_is_an_error_naming_file_line_and_key(tmp_path: Path) -> None:
    """A Fides export (YAML or JSON) with a key twice, and a CSV register whose header names a
    column twice once case and spaces are set aside, exit 2: the later would replace the earlier."""
    fides = tmp_path / "fides.json"
    fides.write_text(
        '{"system": [{"fides_key": "crm",\n'
        '             "third_country_transfers": ["CHN"],\n'
        '             "third_country_transfers": ["DEU"]}]}\n',
        encoding="utf-8",
    )
    register = tmp_path / "register.csv"
    register.write_text("id,name,Hosting ,hosting\ncrm,CRM,CN,DE\n", encoding="utf-8")

    fides_status, _, fides_err = run("import", "fides", str(fides))
    csv_status, _, csv_err = run("import", "csv", str(register))

    assert 2 == fides_status
    assert f"{fides}:3: system[0].third_country_transfers: duplicate key" in fides_err
    assert 2 == csv_status
    assert f"{register}:1: column 'hosting' appears more than once in the header" in csv_err


def test_a_register_that_is_not_utf8_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,name\ncrm,Müller\n".encode("latin-1"))

    status, _, err = run("import", "csv", str(path))

    assert 2 == status
    assert f"{path}: cannot read: not UTF-8 text" in err
