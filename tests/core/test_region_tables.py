"""Region tables: the loader checks zones and left-out names, and the tables cover the SDKs' lists."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.core.errors import InvalidInputError
from auditor.core.policies import load_policies, shipped_policies


def policy_copy(tmp_path: Path, provider: str, change: dict[str, Any]) -> Path:
    """Copy the shipped policies into tmp_path with top-level keys of one region file replaced."""
    root = tmp_path / "policies"
    shutil.copytree(shipped_policies(), root)
    path = root / "regions" / f"{provider}.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.update(change)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return root


def load_error(root: Path) -> str:
    with pytest.raises(InvalidInputError) as caught:
        load_policies(root)
    return str(caught.value)


# ------------------------------------------------------------------ the loader


def test_zone_is_its_own_place_with_the_parent_region_kept() -> None:
    """A Local Zone looks up as a Region with its own country, its parent region and its name."""
    region = load_policies().region("aws", "us-east-1-qro-1")
    assert region is not None
    assert (region.name, region.zone, region.country, region.spec_name) == (
        "us-east-1",
        "us-east-1-qro-1",
        "MX",
        "us-east-1-qro-1",
    )


def test_left_out_names_are_loaded_per_provider() -> None:
    """The machine-readable left_out list reaches PolicyData with its reasons."""
    left_out = load_policies().left_out
    assert "us-south-1" in left_out["aws"]
    assert "not published" in left_out["aws"]["us-south-1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"zones": {"xx-east-1-abc-1": {"region": "xx-east-1", "kind": "local-zone",
                                           "country": "US", "location": "x"}}},
            "names unknown region 'xx-east-1'",
        ),
        (
            {"zones": {"qro-1": {"region": "us-east-1", "kind": "local-zone", "country": "MX",
                                 "location": "x"}}},
            "does not start with its region",
        ),
        (
            {"zones": {"us-east-1-qro-1": {"region": "us-east-1", "kind": "local-zone",
                                           "country": "MEX", "location": "x"}}},
            "not an ISO 3166-1 alpha-2 country code",
        ),
        (
            {"zones": {"us-east-1-qro-1": {"region": "us-east-1", "kind": "edge-zone",
                                           "country": "MX", "location": "x"}}},
            "zones.us-east-1-qro-1.kind",
        ),
        ({"left_out": {"eu-central-1": "a guess"}}, "'eu-central-1' is both mapped and left out"),
        ({"left_out": {"us-south-1": " "}}, "left_out 'us-south-1' needs a reason"),
        ({"left_out": {"US-SOUTH-1": "unknown"}}, "names are lower case"),
    ],
)  # fmt: skip
def test_bad_zones_and_left_out_entries_are_named(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    """A zone with an unknown region, a foreign name or a bad country, or a left_out entry that
    is mapped or has no reason, is an error naming the file."""
    text = load_error(policy_copy(tmp_path, "aws", change))
    assert "aws.yaml" in text
    assert message in text


def test_zone_name_may_not_shadow_a_region(tmp_path: Path) -> None:
    """A zone keyed like a region's alias would make one name mean two places: an error."""
    change = {
        "zones": {
            "us-east-1-x-1": {"region": "us-east-1", "kind": "local-zone", "country": "US",
                              "location": "x"},
        },
    }  # fmt: skip
    root = policy_copy(tmp_path, "aws", change)
    doc = yaml.safe_load((root / "regions" / "aws.yaml").read_text(encoding="utf-8"))
    doc["regions"]["us-east-1"]["aliases"] = ["us-east-1-x-1"]
    (root / "regions" / "aws.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    assert "region name used twice" in load_error(root)


# ------------------------------------------------------------------ complete against the SDKs


def sdk_aws_regions() -> dict[str, str]:
    """Every region of every partition in the installed botocore's partitions.json, described.

    New regions appear in partitions.json before they get service endpoints in endpoints.json.
    """
    from botocore.loaders import Loader

    data = Loader().load_data("partitions")
    return {
        name: str(region.get("description", ""))
        for partition in data["partitions"]
        for name, region in partition.get("regions", {}).items()
    }


def sdk_oci_regions() -> set[str]:
    """Every region of every realm that the installed OCI SDK knows."""
    from oci import regions_definitions

    return set(regions_definitions.REGIONS) | set(regions_definitions.REGION_REALMS)


def unaccounted(provider: str, names: set[str]) -> list[str]:
    """The names neither mapped (as a region, alias or zone) nor named in left_out."""
    policies = load_policies()
    known = set(policies.regions[provider]) | set(policies.left_out[provider])
    return sorted(name.lower() for name in names if name.lower() not in known)


def test_every_botocore_region_is_mapped_or_left_out_with_a_reason() -> None:
    """A region AWS adds to its SDK fails this test until aws.yaml maps it or says why not."""
    regions = sdk_aws_regions()
    assert {"eu-central-1", "me-west-1", "sa-west-1"} <= set(regions)  # the list is the real one
    assert [] == unaccounted("aws", set(regions))


def test_every_oci_sdk_region_is_mapped_or_left_out_with_a_reason() -> None:
    """A region Oracle adds to its SDK fails this test until oci.yaml maps it or says why not."""
    regions = sdk_oci_regions()
    assert {"eu-frankfurt-1", "eu-jovanovac-1"} <= regions
    assert [] == unaccounted("oci", regions)


def test_botocore_describes_our_new_regions_where_we_place_them() -> None:
    """me-west-1 and sa-west-1 are Saudi Arabia and Chile by the SDK's own descriptions."""
    regions = sdk_aws_regions()
    policies = load_policies()
    assert "Saudi Arabia" in regions["me-west-1"]
    assert "Chile" in regions["sa-west-1"]
    assert (
        policies.region_country("aws", "me-west-1"),
        policies.region_country("aws", "sa-west-1"),
    ) == ("SA", "CL")


@pytest.mark.parametrize("provider", ["aws", "oci"])
def test_left_out_names_are_ones_the_provider_uses(provider: str) -> None:
    """A left_out entry is not a typo: the SDK lists it, or the comment says where it was seen."""
    listed = set(sdk_aws_regions()) if provider == "aws" else sdk_oci_regions()
    reasons = load_policies().left_out[provider]
    for name, reason in reasons.items():
        assert name in listed or "seen in" in reason, name
