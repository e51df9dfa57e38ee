"""The spool an audit's observations and places go into: what goes in comes out, in order."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from auditor.core.errors import AuditUnavailableError
from auditor.core.model import Facet, Location, Observation, PlaceCheck, Resolution, Verdict
from auditor.core.spool import Spool


def _observation(number: int, shared: Location) -> Observation:
    own = Location(f"198.51.100.{number % 250}", "US" if number % 3 else None, "geoip", asn=number)
    resolution = Resolution(f"h{number}.example", "ok", (own.address, shared.address), ("a.cdn",))
    edge = "CNAME a.cdn is a CDN edge" if number % 5 == 0 else None
    return Observation(f"i{number % 7}", f"h{number}.example", resolution, (own, shared), edge)


@pytest.mark.parametrize("count", [0, 1, 4, 5, 23])
def test_what_goes_in_comes_out_in_order_at_every_chunk_boundary(count: int) -> None:
    shared = Location("192.0.2.1", "DE", "ip-ranges:aws", "aws", "eu-central-1", edge=True)
    items = [_observation(number, shared) for number in range(count)]
    spool: Spool[Observation] = Spool((Observation, Resolution, Location), chunk=5)

    spool.extend(items[:3])
    spool.extend(items[3:])

    assert len(spool) == count
    assert list(spool) == items
    assert list(spool) == items  # again, from the start
    assert all(type(got.resolution) is Resolution for got in spool)


def test_items_appended_after_reading_follow_the_others() -> None:
    spool: Spool[PlaceCheck] = Spool((PlaceCheck,), chunk=2)
    checks = [
        PlaceCheck(f"i{n}", Facet.HOSTING, "US", "US", Verdict.UNSAFEGUARDED, "none", probes=("p",))
        for n in range(5)
    ]
    spool.extend(checks[:3])
    assert list(spool) == checks[:3]
    spool.extend(checks[3:])
    assert list(spool) == checks
    assert [check.probes for check in spool] == [("p",)] * 5  # fields outside equality too
    assert (
        checks[4] in spool
        and PlaceCheck("x", Facet.HOSTING, "", None, Verdict.EEA, "") not in spool
    )


def test_an_object_shared_within_a_chunk_comes_back_as_one() -> None:
    shared = Location("192.0.2.1", "DE", "geoip")
    spool: Spool[Observation] = Spool((Observation, Resolution, Location), chunk=10)
    spool.extend(_observation(number, shared) for number in range(10))
    back = [observation.locations[1] for observation in spool]
    assert back[0] == shared and all(location is back[0] for location in back)


@pytest.mark.parametrize("count", [0, 4, 5, 23])
def test_rebuilt_makes_each_item_by_the_builders_in_order_at_every_chunk_boundary(
    count: int,
) -> None:
    shared = Location("192.0.2.1", "DE", "ip-ranges:aws", "aws", "eu-central-1", edge=True)
    items = [_observation(number, shared) for number in range(count)]
    spool: Spool[Observation] = Spool((Observation, Resolution, Location), chunk=5)
    spool.extend(items)
    made: list[str] = []

    def location(address: str, *_: object) -> str:
        made.append(address)
        return address

    back = list(spool.rebuilt({Observation: lambda *values: values, Location: location}))

    expected = [
        (
            o.integration,
            o.hostname,
            o.resolution,
            tuple(x.address for x in o.locations),
            o.edge_reason,
        )
        for o in items
    ]
    assert back == expected
    assert all(type(values[2]) is Resolution for values in back)  # not a builder's: an object
    # The shared location is made once per chunk (those in the file, and the tail), not per item.
    assert made.count(shared.address) == -(-count // 5)
    assert list(spool) == items  # and read back as objects as before


def test_rebuilt_refuses_a_class_it_does_not_store_as_field_values() -> None:
    spool: Spool[PlaceCheck] = Spool((PlaceCheck,), chunk=2)
    with pytest.raises(ValueError, match="not a class of the spool: Location"):
        spool.rebuilt({Location: lambda *values: values})


def test_a_small_spool_makes_no_file_and_close_empties_it() -> None:
    before = _open_files()
    spool: Spool[PlaceCheck] = Spool((PlaceCheck,), chunk=3)
    spool.extend([PlaceCheck("i", Facet.HOSTING, "DE", "DE", Verdict.EEA, "EEA")] * 2)
    assert _open_files() == before
    spool.extend([PlaceCheck("i", Facet.HOSTING, "DE", "DE", Verdict.EEA, "EEA")] * 2)
    assert len(_open_files()) == len(before) + 1  # the chunk went to an unlinked file
    spool.close()
    assert _open_files() == before and len(spool) == 0 and list(spool) == []


def _open_files() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.endswith("(deleted)"):  # an unlinked file, as the spool's is
            found.add(target)
    return found


def test_a_temporary_directory_it_cannot_write_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    spool: Spool[PlaceCheck] = Spool((PlaceCheck,), chunk=1)
    with pytest.raises(AuditUnavailableError, match=r"temporary file in .*gone: .*TMPDIR"):
        spool.extend([PlaceCheck("i", Facet.HOSTING, "DE", "DE", Verdict.EEA, "EEA")])


def test_classes_it_cannot_rebuild_by_their_constructor_are_refused() -> None:
    @dataclass(frozen=True)
    class Derived:
        a: int
        b: int = field(init=False, default=0)

    with pytest.raises(TypeError, match="every field in __init__"):
        Spool((Derived,))
    with pytest.raises(ValueError, match="at least one item"):
        Spool((PlaceCheck,), chunk=0)
