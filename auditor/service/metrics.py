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

import contextlib
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

    One thread at a time renders the stored results, and a rendering is swapped in whole once
    complete. A scrape that finds them changed while another thread renders them serves the
    previous rendering rather than wait: on a large inventory a rendering takes long enough, beside
    an audit, to blow a scrape's latency. Only a format never rendered before makes it wait.
    Calling `prerender` once the results have changed, or changing them under `replacing`, spares
    the scrapes the rendering.
    """

    def __init__(self, source: Callable[[], Snapshot], gzip_level: int = GZIP_LEVEL) -> None:
        self._source = source
        self._gzip_level = gzip_level
        self._process = ProcessCollector(registry=None)
        self._lock = threading.Lock()  # guards `_asked`
        self._rendering = threading.Lock()  # held by the one thread rendering the stored results
        self._current: _Generation | None = None  # the last complete rendering; replaced whole
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
        with self._rendering:
            self._prerender()

    @contextlib.contextmanager
    def replacing(self) -> Iterator[None]:
        """Change the stored results the source returns inside this block; they are prerendered
        on leaving it. Meanwhile scrapes serve the previous rendering rather than render the new
        results themselves; an exception in the block skips the rendering.

        Raises:
            Exception: whatever the snapshot source raised on leaving the block.
        """
        with self._rendering:
            yield
            self._prerender()

    def _prerender(self) -> None:
        with self._lock:
            asked = list(self._asked.items())
        if asked:
            self._renew(self._source(), [(t, encoder, gzip) for t, (encoder, gzip) in asked])

    def _remember(self, content_type: str, encoder: _Encoder, gzip: bool) -> None:
        with self._lock:
            if content_type not in self._asked and len(self._asked) >= MAX_FORMATS:
                self._asked.clear()
            earlier = self._asked.get(content_type)
            self._asked[content_type] = (encoder, gzip or (earlier is not None and earlier[1]))

    def _stored_part(self, snapshot: Snapshot, content_type: str, encoder: _Encoder) -> _Rendered:
        key = stored_key(snapshot)
        seen = self._current
        if seen is not None and seen.keyed_by(key):
            rendered = seen.formats.get(content_type)
            if rendered is not None:
                return rendered
        if not self._rendering.acquire(blocking=False):
            # Another thread renders: the previous rendering serves, if this format has one.
            rendered = None if seen is None else seen.formats.get(content_type)
            if rendered is not None:
                return rendered
            self._rendering.acquire()
        try:
            current = self._current
            if current is not seen and current is not None and content_type in current.formats:
                # Rendered while this scrape waited, from a snapshot read after this one's.
                return current.formats[content_type]
            return self._renew(snapshot, [(content_type, encoder, False)]).formats[content_type]
        finally:
            self._rendering.release()

    def _renew(self, snapshot: Snapshot, wanted: list[tuple[str, _Encoder, bool]]) -> _Generation:
        """Make the snapshot's stored results the current rendering, in at least the `wanted`
        formats (content type, encoder, gzip), and return it; `_rendering` must be held."""
        key = stored_key(snapshot)
        current = self._current
        formats: dict[str, _Rendered] = {}
        # Tuples compare item by item, by identity first: the same mappings cost nothing. Equal
        # copies (a store refresh re-reading unchanged results) cost one full comparison, and
        # then become the key, so that the next scrape compares by identity again.
        if current is not None and (current.keyed_by(key) or current.key == key):
            formats = dict(current.formats)
            if all(content_type in formats for content_type, _, _ in wanted):
                if current.key is not key:
                    current = self._current = _Generation(key, formats)
                for content_type, _, gzip in wanted:
                    if gzip:
                        formats[content_type].compressed(self._gzip_level)
                return current
        if len(formats) + len(wanted) > MAX_FORMATS:
            formats = {}
        for content_type, encoder, gzip in wanted:
            rendered = formats.get(content_type)
            if rendered is None:
                # The families anew for each format: only one format's are held at a time.
                text = encoder(_Listed(list(stored_families(snapshot))))
                if content_type.startswith(_OPENMETRICS):
                    text = text.removesuffix(_EOF)
                rendered = formats[content_type] = _Rendered(text)
            if gzip:
                rendered.compressed(self._gzip_level)
        # One assignment: a scrape sees the previous rendering or this one, never a mix.
        current = self._current = _Generation(key, formats)
        return current


class _Generation:
    """The stored results of one snapshot, rendered in one or more formats; never changed."""

    def __init__(self, key: tuple[object, ...], formats: dict[str, _Rendered]) -> None:
        self.key = key
        self.formats = formats

    def keyed_by(self, key: tuple[object, ...]) -> bool:
        """Whether `key` holds the very mappings this rendering was made from (no comparison)."""
        return self.key is key or all(a is b for a, b in zip(self.key, key, strict=True))


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
