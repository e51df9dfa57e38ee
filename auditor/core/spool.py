"""A collection appended part by part that holds only its last part's objects in memory.

A large audit produces hundreds of thousands of observations and place verdicts. The rules
need them a part of the inventory at a time; what reads them afterwards (the JSON output, the
state database) reads them once, in order. A `Spool` keeps up to `chunk` items as objects and
writes each full chunk, pickled, to an anonymous temporary file (unlinked from the start, so
nothing is left behind, not even by a killed process); iterating reads the chunks back one at a
time. A small audit never fills a chunk and never touches the file.

Pickling frozen, slotted dataclasses field by field (their default) is slow; the classes a
spool is made for are reduced to their constructor and field values instead, so that pickle's
C loop rebuilds them, and one object referred to many times within a chunk (a location shared
by a thousand addresses) is written and rebuilt once. A reader that wants another form of the
values than the objects (the JSON output wants their JSON text) reads them back `rebuilt` by its
own functions of the field values, and no object is made.
"""

from __future__ import annotations

import copyreg
import io
import os
import pickle
import tempfile
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import fields
from itertools import chain
from operator import attrgetter
from typing import IO, Any, Generic, TypeVar

from auditor.core.errors import AuditUnavailableError

T = TypeVar("T")

CHUNK = 8_192
"""Items per chunk: one chunk's objects are all a spool ever holds in memory at a time."""


class Spool(Collection[T], Generic[T]):
    """Items in the order appended; iterable any number of times, each time from the start."""

    def __init__(self, classes: Iterable[type], chunk: int | None = None) -> None:
        chunk = CHUNK if chunk is None else chunk
        if chunk < 1:
            raise ValueError("a spool's chunk holds at least one item")
        self._classes = tuple(classes)
        self._table: dict[type, Any] = dict(copyreg.dispatch_table)
        self._table.update({cls: _reducer(cls) for cls in self._classes})
        self._chunk = chunk
        self._tail: list[T] = []
        self._file: IO[bytes] | None = None
        self._spans: list[tuple[int, int]] = []  # (offset, length) of each chunk in the file
        self._written = 0  # items in the file

    def extend(self, items: Iterable[T]) -> None:
        for item in items:
            self._tail.append(item)
            if len(self._tail) >= self._chunk:
                self._write()

    def __len__(self) -> int:
        return self._written + len(self._tail)

    def __iter__(self) -> Iterator[T]:
        for data in self._stored():
            items: list[T] = pickle.loads(data)
            del data
            yield from items
        yield from list(self._tail)

    def rebuilt(self, builders: Mapping[type, Callable[..., Any]]) -> Iterator[Any]:
        """The items in order, each object of a class in `builders` (and in the spool's classes)
        made by `builders[cls](*its field values)` instead of by the class: the values of its
        own fields of such classes made so first. One object referred to many times within a
        chunk (a location shared by a thousand addresses) is made once. Raises ValueError for a
        class that is not the spool's: its objects are not stored as their field values."""
        if unknown := [cls.__name__ for cls in builders if cls not in self._classes]:
            raise ValueError(f"not a class of the spool: {', '.join(unknown)}")
        by_name = {(cls.__module__, cls.__qualname__): make for cls, make in builders.items()}
        return chain.from_iterable(self._rebuilt_chunks(by_name))

    def _rebuilt_chunks(
        self, builders: Mapping[tuple[str, str], Callable[..., Any]]
    ) -> Iterator[list[Any]]:
        # The objects in memory go the same way as those in the file, so they come out the same.
        for data in chain(self._stored(), [self._pickled(list(self._tail))]):
            items: list[Any] = _Rebuilding(io.BytesIO(data), builders).load()
            del data
            yield items

    def _stored(self) -> Iterator[bytes]:
        """The pickle of each chunk in the file, in order."""
        for offset, length in list(self._spans):
            assert self._file is not None
            data = os.pread(self._file.fileno(), length, offset)
            if len(data) != length:
                raise OSError(f"spool file truncated: {len(data)} of {length} bytes read")
            yield data

    def __contains__(self, item: object) -> bool:
        return any(item == mine for mine in self)

    def __repr__(self) -> str:
        return f"<Spool of {len(self)} items, {self._written} in {len(self._spans)} chunks>"

    def close(self) -> None:
        """Let go of the file and the items (the spool is empty afterwards)."""
        if self._file is not None:
            self._closing()
            self._file = None
        self._spans.clear()
        self._tail.clear()
        self._written = 0

    def _write(self) -> None:
        try:
            self._write_tail()
        except OSError as exc:
            raise AuditUnavailableError(
                f"cannot write the audit's results to a temporary file in "
                f"{tempfile.gettempdir()}: {exc.strerror or exc} (TMPDIR names another directory)"
            ) from exc

    def _write_tail(self) -> None:
        if self._file is None:
            # Closed by close(), or when the spool is garbage; unlinked from the start, and
            # private to this process (mode 0600), which alone writes what it unpickles.
            self._file = tempfile.TemporaryFile(prefix="gdpr-auditor-spool-")  # noqa: SIM115
            self._closing = weakref.finalize(self, self._file.close)
        data = self._pickled(self._tail)
        offset = self._spans[-1][0] + self._spans[-1][1] if self._spans else 0
        written = os.pwrite(self._file.fileno(), data, offset)
        if written != len(data):
            raise OSError(f"{written} of {len(data)} bytes written")
        self._spans.append((offset, len(data)))
        self._written += len(self._tail)
        del data
        self._tail = []

    def _pickled(self, items: list[T]) -> bytes:
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        pickler.dispatch_table = self._table
        pickler.dump(items)
        return buffer.getvalue()


def _reducer(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """`obj -> (cls, its field values)`: rebuilt by calling the class (every field in __init__)."""
    if not all(field.init for field in fields(cls)):
        raise TypeError(f"{cls.__name__}: a spooled class takes every field in __init__")
    names = [field.name for field in fields(cls)]
    if len(names) < 2:
        raise TypeError(f"{cls.__name__}: a spooled class needs two fields or more")
    values = attrgetter(*names)
    return lambda obj: (cls, values(obj))


class _Rebuilding(pickle.Unpickler):
    """Unpickles a chunk with the given functions in place of the classes they are named by."""

    def __init__(self, file: IO[bytes], builders: Mapping[tuple[str, str], Callable[..., Any]]):
        super().__init__(file)
        self._builders = builders

    def find_class(self, module: str, name: str) -> Any:
        # Called once per class and chunk (the pickle refers back to it after that).
        return self._builders.get((module, name)) or super().find_class(module, name)
