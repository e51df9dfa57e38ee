"""The pure finding lifecycle: a finding is resolved only by a run whose probes for it observed."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from auditor.core.lifecycle import Change, FindingKey, Known, Status, transitions

PROBES = ("endpoint:a.example", "endpoint:b.example", "discovery-dns:example.com")
KEYS = st.tuples(
    st.sampled_from(["transfer-unsafeguarded", "location-drift", "contract-dpa-missing"]),
    st.sampled_from(["crm", "mail"]),
    st.sampled_from(["", "endpoint", "hosting"]),
    st.sampled_from(["", "US", "DE"]),
)
KNOWN = st.dictionaries(
    KEYS,
    st.builds(
        Known,
        st.sampled_from(list(Status)),
        st.lists(st.sampled_from(PROBES), max_size=2, unique=True).map(tuple),
    ),
    max_size=8,
)
CURRENT = st.sets(KEYS, max_size=8)
FAILED = st.sets(st.sampled_from(PROBES))


@given(KNOWN, CURRENT, FAILED)
def test_a_finding_is_resolved_only_when_none_of_its_probes_failed(
    known: dict[FindingKey, Known], current: set[FindingKey], failed: set[str]
) -> None:
    """Open and not found again: resolved if every probe it rests on observed, else carried."""
    changes = transitions(known, current, failed)

    for key, change in changes.items():
        if change is Change.RESOLVED:
            assert key not in current
            assert known[key].status is Status.OPEN
            assert not set(known[key].probes) & failed
        if change is Change.CARRIED:
            assert key not in current
            assert set(known[key].probes) & failed
    for key, previous in known.items():
        if previous.status is Status.OPEN and key not in current:
            expected = Change.CARRIED if set(previous.probes) & failed else Change.RESOLVED
            assert changes[key] is expected


@given(KNOWN, CURRENT, FAILED)
def test_what_a_run_finds_is_never_carried_and_failed_probes_resolve_nothing(
    known: dict[FindingKey, Known], current: set[FindingKey], failed: set[str]
) -> None:
    """A finding raised in the run is new, still open or re-opened whatever failed; and with
    every probe failing, nothing resting on a probe is resolved."""
    changes = transitions(known, current, failed)
    blind = transitions(known, current, set(PROBES))

    for key in current:
        assert changes[key] in (Change.NEW, Change.STILL_OPEN, Change.REOPENED)
        assert changes[key] == blind[key]
    for key, change in blind.items():
        if change is Change.RESOLVED:
            assert not known[key].probes


def test_without_failed_probes_the_lifecycle_is_unchanged() -> None:
    """The four classic changes, as before probes existed."""
    key = ("transfer-unsafeguarded", "crm", "endpoint", "US")
    probe = ("endpoint:a.example",)
    assert {key: Change.NEW} == transitions({}, [key])
    assert {key: Change.STILL_OPEN} == transitions({key: Known(Status.OPEN, probe)}, [key])
    assert {key: Change.RESOLVED} == transitions({key: Known(Status.OPEN, probe)}, [])
    assert {key: Change.REOPENED} == transitions({key: Known(Status.RESOLVED, probe)}, [key])
    assert {} == transitions({key: Known(Status.RESOLVED, probe)}, [], set(probe))
