"""Prometheus metrics built from a snapshot of the stored results, and the `/metrics` body.

Nothing here audits or touches the network: the collector reads a `Snapshot` the daemon keeps up to
date, and `Exposition` renders the stored results' series (nearly all of them) once per change of
those results, so a scrape costs milliseconds and never blows Prometheus's scrape timeout. Job
health, DNS counters, reload and leadership state and the process metrics are read anew on every
scrape.

Known label sets start at 0: every job, every inventory category and every verdict is exported even
when nothing is counted under it. Open findings are the exception, because their label sets
(rule x severity x integration) are only known once a finding exists: a combination is exported
while it has open findings, and once more as 0 in the snapshots right after the audit that resolved
or waived its last finding (`Snapshot.recently_resolved`); after that it is absent. Alerts treat
absent and 0 alike, so both resolve an alert.

Labels carry only bounded, non-personal values: rule ids, severities, integration ids, categories,
verdicts, ISO country codes, job ids, data-set kinds and names, retention policy ids and actions,
and the version.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable, Iterator

import structlog
from prometheus_client import CollectorRegistry, ProcessCollector, disable_created_metrics
from prometheus_client.core import (
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from auditor.service.families import all_families, live_families, stored_families, stored_key
from auditor.service.snapshot import Snapshot

log = structlog.get_logger("auditor.metrics")


class SnapshotCollector(Collector):
    """Builds every `gdpr_auditor_*` metric family from one snapshot per scrape.

    `source` is called from the HTTP server's threads, once per scrape: it should hand back the
    latest immutable snapshot, not build one from the store.
    """

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source

    def describe(self) -> Iterator[Metric]:
        """Yield the families an empty snapshot gives: their names, without reading the source."""
        return all_families(Snapshot())

    def collect(self) -> Iterator[Metric]:
        """Yield the metric families for the snapshot the source returns now."""
        return all_families(self._source())


def build_registry(source: Callable[[], Snapshot]) -> CollectorRegistry:
    """Return a fresh registry holding the snapshot collector and the process collector."""
    # Direct instrumentation added later (counters, histograms) would otherwise export `_created`
    # series, which only add cardinality; the setting is process-wide in prometheus_client.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(source))
    ProcessCollector(registry=registry)
    return registry


GZIP_LEVEL = 9
"""The stored part is compressed once per change, so the smallest body costs nothing per scrape."""
MAX_FORMATS = 8
"""Renderings kept per snapshot: Accept headers could otherwise ask for endless format variants."""
_OPENMETRICS = "application/openmetrics-text"
_EOF = b"# EOF\n"
_Encoder = Callable[[Collector], bytes]


class Exposition:
    """Renders the `/metrics` body: what `build_registry` exports, in the format a scrape asks for.

    The stored results (findings, inventory, places, data build times, last audit) are nearly all
    the series and change only when the daemon reads the store anew, so their rendering, and its
    gzip stream, is kept per format while they stay equal. Job health, DNS counters, reload and
    leadership state and the process metrics are rendered on every scrape, so they are never stale.
    `source` is called once per scrape, as by `SnapshotCollector`; the snapshots it returns must
    not be changed in place (`Snapshot` is immutable, its mappings are read-only by contract).
    Calling `prerender` once the results have changed spares the next scrape the rendering.
    """

    def __init__(self, source: Callable[[], Snapshot], gzip_level: int = GZIP_LEVEL) -> None:
        self._source = source
        self._gzip_level = gzip_level
        self._process = ProcessCollector(registry=None)
        self._lock = threading.Lock()
        self._key: tuple[object, ...] | None = None
        self._stored: dict[str, _Rendered] = {}
        self._asked: dict[str, tuple[_Encoder, bool]] = {}  # content type -> encoder, gzip asked

    def render(self, accept: str, gzip: bool = False) -> tuple[str, bytes]:
        """Return the content type for an `Accept` header and the body, gzip-compressed if asked.

        Raises:
            Exception: whatever the snapshot source raised; the scrape must then fail.
        """
        encoder, content_type = choose_encoder(accept)
        snapshot = self._source()
        self._remember(content_type, encoder, gzip)
        stored = self._stored_part(snapshot, content_type, encoder)
        # OpenMetrics ends with the one `# EOF` line, which only the live part's rendering keeps.
        live = encoder(_Listed([*live_families(snapshot), *self._process.collect()]))
        if gzip:
            return content_type, stored.gzipped(live, self._gzip_level)
        return content_type, stored.text + live

    def prerender(self) -> None:
        """Render the stored results of the source's snapshot now, in every format asked for so far.

        Call it after the stored results change (a store read), from the thread that read them:
        the next scrape then finds them rendered. Equal results are not rendered again.

        Raises:
            Exception: whatever the snapshot source raised.
        """
        with self._lock:
            asked = list(self._asked.items())
        if not asked:
            return
        snapshot = self._source()
        for content_type, (encoder, gzip) in asked:
            stored = self._stored_part(snapshot, content_type, encoder)
            if gzip:
                stored.compressed(self._gzip_level)

    def _remember(self, content_type: str, encoder: _Encoder, gzip: bool) -> None:
        with self._lock:
            if content_type not in self._asked and len(self._asked) >= MAX_FORMATS:
                self._asked.clear()
            earlier = self._asked.get(content_type)
            self._asked[content_type] = (encoder, gzip or (earlier is not None and earlier[1]))

    def _stored_part(self, snapshot: Snapshot, content_type: str, encoder: _Encoder) -> _Rendered:
        key = stored_key(snapshot)
        with self._lock:
            # Tuples compare item by item, by identity first: the same mappings cost nothing. Equal
            # copies (a store refresh re-reading unchanged results) cost one full comparison, and
            # then become the key, so that the next scrape compares by identity again.
            if key != self._key:
                self._stored.clear()
            self._key = key
            rendered = self._stored.get(content_type)
            if rendered is None:
                if len(self._stored) >= MAX_FORMATS:
                    self._stored.clear()
                text = encoder(_Listed(list(stored_families(snapshot))))
                if content_type.startswith(_OPENMETRICS):
                    text = text.removesuffix(_EOF)
                rendered = self._stored[content_type] = _Rendered(text)
            return rendered


class _Listed(Collector):
    """Hands a list of families to an exposition encoder, which only calls `collect`."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class _Rendered:
    """One format's rendering of the stored results, and its gzip stream, compressed once."""

    def __init__(self, text: bytes) -> None:
        self.text = text
        self._gzip: tuple[bytes, zlib._Compress] | None = None
        self._lock = threading.Lock()

    def gzipped(self, tail: bytes, level: int) -> bytes:
        """This rendering followed by `tail`, as one gzip member."""
        head, kept = self.compressed(level)
        compressor = kept.copy()  # the kept stream stays open for the next scrape
        return head + compressor.compress(tail) + compressor.flush()

    def compressed(self, level: int) -> tuple[bytes, zlib._Compress]:
        """The gzip stream of this rendering so far, and the open compressor that made it."""
        with self._lock:
            if self._gzip is None:
                kept = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
                self._gzip = (kept.compress(self.text), kept)
            return self._gzip
