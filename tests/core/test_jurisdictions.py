"""policies/jurisdictions.yaml is loaded, validated and digested like the other policy files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from auditor.core.errors import InvalidInputError
from auditor.core.policies import load_policies, shipped_policies


@pytest.fixture(name="copy")
def _copy(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    shutil.copytree(shipped_policies(), directory)
    return directory


def test_the_shipped_laws_load_by_country() -> None:
    """The loaded policy data knows the US laws in order and none for a country it omits."""
    policies = load_policies()

    assert ["us-cloud-act", "us-fisa-702", "us-eo-12333"] == [
        law.id for law in policies.jurisdictions.laws("US")
    ]
    assert "CLOUD Act (18 U.S.C. § 2713)" == policies.jurisdictions.laws("US")[0].describe()
    assert () == policies.jurisdictions.laws("SG")


def test_the_file_is_part_of_the_policy_digest(copy: Path) -> None:
    """Changing what a law is said to reach changes the digest every run records."""
    path = copy / "jurisdictions.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("Governs", "Rules", 1))

    assert load_policies(copy).digest != load_policies().digest


@pytest.mark.parametrize(
    ("old", "new", "fragment"),
    [
        ("id: us-cloud-act", "id: cloud-act", "country code and a slug"),
        ("id: us-fisa-702", "id: cn-fisa-702", "must start with us-"),
        ("id: us-eo-12333", "id: us-cloud-act", "duplicate law ids: us-cloud-act"),
        ("  RU:\n", "  RUS:\n", "not an ISO 3166-1 alpha-2 country code"),
        (
            "        - https://irp.fas.org/offdocs/eo12333.htm\n",
            "        - irp.fas.org\n",
            "a URL or 'memory'",
        ),
    ],
)
def test_a_bad_entry_is_an_error_naming_the_file(
    copy: Path, old: str, new: str, fragment: str
) -> None:
    """Bad ids, a code that is not ISO, a repeated id or a source that is neither a URL nor
    `memory` make the policy data invalid, naming the file."""
    path = copy / "jurisdictions.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")

    with pytest.raises(InvalidInputError) as raised:
        load_policies(copy)

    assert "jurisdictions.yaml" in str(raised.value)
    assert fragment in str(raised.value)


def test_a_missing_file_is_an_error(copy: Path) -> None:
    """A policy copy made before the file existed must add it: the loader names it."""
    (copy / "jurisdictions.yaml").unlink()

    with pytest.raises(InvalidInputError) as raised:
        load_policies(copy)

    assert "jurisdictions.yaml" in str(raised.value)


def test_a_rule_without_an_unrecorded_severity_keeps_its_own(copy: Path) -> None:
    """An organisation's rules.yaml without `unrecorded_severity` keeps the rule's severity for
    unrecorded findings too (its choice); the shipped one says info."""
    path = copy / "rules.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            "    unrecorded_severity: info   # the vendor's country is not known: said, never taken as fine\n",
            "",
        ),
        encoding="utf-8",
    )
    shipped, copied = load_policies(), load_policies(copy)
    rule = "vendor-foreign-jurisdiction"

    assert "info" == shipped.finding(rule, "crm", "m", unrecorded=True).severity.value
    assert "warning" == copied.finding(rule, "crm", "m", unrecorded=True).severity.value
    assert "warning" == shipped.finding(rule, "crm", "m").severity.value
