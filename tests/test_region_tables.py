"""Region tables: the loader checks zones and left-out names, and the tables cover the SDKs' lists."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from auditor.errors import InvalidInputError
from auditor.policies import load_policies, shipped_policies


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
