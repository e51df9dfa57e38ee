"""Turning stored values into samples: the metric name prefix, Unix times, and rows that cannot
be exported, counted and logged once instead of failing a scrape."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import structlog
from prometheus_client.core import GaugeMetricFamily, Metric

log = structlog.get_logger("auditor.metrics")

PREFIX = "gdpr_auditor_"


class Skipped:
    """Rows of the stored results left out of one rendering because a value cannot be exported
    (a date at the calendar's end, a value of the wrong type), by metric; each metric's first
    such row is logged once per process, so a bad row never fails a scrape nor floods the log."""

    _logged: set[str] = set()
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(
        self,
        family: Metric,
        labels: list[str],
        value: object,
        convert: Callable[[Any], float] = float,
    ) -> None:
        """Add `convert(value)` as a sample of `family`; count and skip the row if that fails."""
        try:
            family.add_metric(labels, float(convert(value)))  # type: ignore[attr-defined]
        except (ArithmeticError, ValueError, TypeError, AttributeError) as exc:
            self.counts[family.name] = self.counts.get(family.name, 0) + 1
            with self._lock:
                first = family.name not in self._logged
                self._logged.add(family.name)
            if first:
                log.error(
                    "metrics_row_skipped",
                    metric=family.name,
                    error=f"{type(exc).__name__}: {exc}",
                    message="a stored value cannot be exported; the row is left out and "
                    f"counted in {PREFIX}metrics_rows_skipped",
                )

    def family(self) -> Metric:
        return labelled_gauge(
            "metrics_rows_skipped",
            "Rows of the stored results left out of the metric because a value could not be "
            "exported (a date at the end of the calendar, a value of the wrong type); see the "
            "log for the first of each.",
            ["metric"],
            self.counts,
        )


def unix(when: datetime | None) -> float:
    return 0.0 if when is None else when.timestamp()


def labelled_gauge(
    name: str, documentation: str, labels: list[str], values: Mapping[Any, float]
) -> GaugeMetricFamily:
    """The gauge `PREFIX + name` with one sample per key of `values` (a label value, or a tuple
    of them in the order of `labels`), in key order."""
    gauge = GaugeMetricFamily(f"{PREFIX}{name}", documentation, labels=labels)
    for key, value in sorted(values.items()):
        gauge.add_metric(list(key) if isinstance(key, tuple) else [key], value)
    return gauge


def time_gauge(name: str, documentation: str, when: datetime | None) -> GaugeMetricFamily:
    """The gauge `PREFIX + name` holding `when` as a Unix time, 0 for None."""
    return GaugeMetricFamily(f"{PREFIX}{name}", documentation, value=unix(when))
