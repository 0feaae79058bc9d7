"""The one way to open an index: where it is, who may write, which model's collection.

Every command goes through `open_index`:

    with open_index(Location.of(db, url), write=True, wait=wait) as index:
        store = index.for_writing(encoder.info, every)

A writer holds the embedded folder's lock (`pipeline/lock.py`) for as long as
the block runs; a reader takes no lock and creates nothing of scenegrep's: no
folder, no collection, no lock file (Chroma's embedded client still updates
its own database files whenever it opens them). The model is chosen by one rule
(`catalogue.choose_index`), and the derived files of an index (the last
search's results, the local vector cache) are named here and nowhere else.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable, Iterator

from .catalogue import IndexInfo, choose_index, create_index, list_indexes
from .connect import default_db_path, folder_has_index, is_server, location, no_index_at, open_client
from .errors import ModelMismatchError
from .store import FrameStore
from .vector_cache import VectorCache, cache_folder


@dataclass(frozen=True)
class Location:
    """An index's place: an embedded folder (`db`) or a Chroma server (`url`), exactly one."""

    db: str | None = None
    url: str | None = None

    @classmethod
    def of(cls, db: str | None, url: str | None) -> "Location":
        """The server when `url` is given, else the folder `db`, else the default folder."""
        return cls(url=location(None, url)) if url else cls(db=db or default_db_path())

    @property
    def where(self) -> str:
        """How messages name the index (a normalised URL, or the folder)."""
        return location(self.db, self.url)

    @property
    def results_path(self) -> str:
        """The last search's results, for `scenegrep open`."""
        from .present.results_file import results_path

        return results_path(self.db, self.url)

    def cache_folder(self, info: IndexInfo) -> str:
        return cache_folder(self.where, info.collection)

    def writer_running(self) -> bool:
        """Whether an `index` or `prune` run writes to this embedded folder now
        (a server serialises writes itself: never known, so False)."""
        from .lock import index_is_busy

        return bool(self.db) and index_is_busy(self.db)


class OpenIndex:
    """A connected store and the indexes in it; see `open_index`."""

    def __init__(self, where: Location, client, writable: bool):
        self.location = where
        self.where = where.where
        self.client = client
        self.writable = writable
        self.indexes = list_indexes(client)

    def choose(self, model: str | None, *, creating: bool = False) -> IndexInfo | None:
        """The index of `model` (a hub id or folder; None: the store's only one),
        by the one rule in `catalogue.choose_index`."""
        return choose_index(self.indexes, fingerprint_of(model), self.where, model, creating=creating)

    def model_to_load(self, requested: str | None, default: str) -> str:
        """The model a command should load: the one asked for, else the one the
        chosen index was built with, else `default` (a writer's empty store)."""
        if requested:
            return requested
        chosen = self.choose(None, creating=self.writable)
        return chosen.model if chosen else default

    def selected(self, model: str | None) -> list[IndexInfo]:
        """Every index (no `model`), or the one of `model`: for commands that
        act on all models at once (`info`, `prune`).
        Raises ModelMismatchError when `model` built none of them."""
        if not model:
            return list(self.indexes)
        wanted = fingerprint_of(model)
        chosen = [index for index in self.indexes if index.fingerprint == wanted]
        if not chosen:
            raise ModelMismatchError(f"nothing at {self.where} was indexed with {model}; see `scenegrep info`")
        return chosen

    def store(self, info: IndexInfo) -> FrameStore:
        """The FrameStore of `info`: writable only inside a writing `open_index`."""
        return FrameStore(self.client, info, writable=self.writable,
                          cache=VectorCache(self.location.cache_folder(info)), where=self.where,
                          writer_running=(lambda: False) if self.writable else self.location.writer_running)

    def for_reading(self, model_info) -> FrameStore:
        """The index built with `model_info` (`encode.ModelInfo`).
        Raises IndexNotFoundError or ModelMismatchError."""
        return self.store(choose_index(self.indexes, model_info.fingerprint, self.where, model_info.name))

    def for_writing(self, model_info, every: float | None = None) -> FrameStore:
        """The index of `model_info`, created when missing. `every` None means
        the existing index's interval, else DEFAULT_EVERY. Raises
        ModelMismatchError when the index samples at another interval: mixing
        intervals would skew clips; ValueError for an interval that is not a
        positive finite number (it would break the index for good)."""
        from .sample import DEFAULT_EVERY

        if every is not None and not (math.isfinite(every) and every > 0):
            raise ValueError(f"the sampling interval must be a positive number of seconds, not {every!r}")
        if not self.writable:
            raise RuntimeError("for_writing needs open_index(..., write=True)")
        index = choose_index(self.indexes, model_info.fingerprint, self.where, model_info.name, creating=True)
        if index is None:
            index = create_index(self.client, model_info, DEFAULT_EVERY if every is None else every)
            self.indexes.append(index)
        elif every is not None and abs(index.every - every) > 1e-9:
            other = "another database (--chroma-url http://HOST:PORT/NAME)" if is_server(self.where) else "another --db folder"
            raise ModelMismatchError(
                f"the index at {self.where} samples every {index.every:g} s with this model; index with "
                f"--every {index.every:g}, or use {other} for a separate index at --every {every:g}"
            )
        return self.store(index)


@contextlib.contextmanager
def open_index(where: Location, *, write: bool = False, create: bool | None = None, wait: bool = False,
               on_wait: Callable[[str], None] | None = None) -> Iterator[OpenIndex]:
    """Open the index at `where`. A writer (`write`) holds the embedded
    folder's lock (waiting for another writer with `wait`, telling `on_wait`
    who holds it) and creates the store if needed (unless `create` is False:
    `prune` only changes what exists); a reader needs an existing index and
    creates nothing (see the module docstring).

    Raises IndexNotFoundError (nothing there, for a reader), IndexBusyError
    (another writer, without `wait`), DamagedIndexError, ScenegrepError
    (unreachable server, unusable folder)."""
    from .lock import IndexLock

    create = write if create is None else create
    if where.db and not create and not folder_has_index(where.db):
        raise no_index_at(where.db)  # before the lock, which would make the folder
    lock = IndexLock(where.db, wait=wait, on_wait=on_wait) if write and where.db else contextlib.nullcontext()
    with lock:
        yield OpenIndex(where, open_client(where.db, url=where.url, create=create), writable=write)


def fingerprint_of(model: str | None) -> str | None:
    from .encode import model_fingerprint, resolve_model_name

    return model_fingerprint(resolve_model_name(model)) if model else None

