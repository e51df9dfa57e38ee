"""Batch sizes adapt toward a target transaction time, never past the policy's batch_size."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from auditor.retention.batches import TARGET_TRANSACTION_SECONDS, next_batch_size


@pytest.fixture(autouse=True)
def _batches_of_batch_size() -> Iterator[None]:
    """The real target here (the other tests fix batches at their batch_size)."""
    yield


def test_a_fast_batch_grows_at_most_twofold_and_never_past_the_ceiling() -> None:
    assert next_batch_size(1000, TARGET_TRANSACTION_SECONDS / 10, 100_000) == 2000
    assert next_batch_size(80_000, 0.01, 100_000) == 100_000
    assert next_batch_size(2, 0.0, 2) == 2


def test_a_slow_batch_shrinks_toward_the_target_at_most_fourfold() -> None:
    assert next_batch_size(10_000, TARGET_TRANSACTION_SECONDS * 2, 100_000) == 5000
    assert next_batch_size(10_000, TARGET_TRANSACTION_SECONDS * 100, 100_000) == 2500
    assert next_batch_size(1, 60.0, 100_000) == 1
