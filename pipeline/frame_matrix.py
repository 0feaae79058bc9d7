"""Every registered frame's vector in one matrix in memory, for exact search within narrow windows over many videos.

A time window across the whole archive (`--to 0:10`: the first seconds of
every video) keeps too few frames for over-fetching from the HNSW index
(`pipeline/nearest.py`) and too many videos for reading their files one by
one; Chroma's own `where` filter scans every frame's metadata (~290 ms at a
million frames). Here the frames of all registered videos sit in one float32
matrix, video after video, each video's frames sorted by time: a window is a
mask over the times, and the frames it keeps are ranked exactly in numpy.

The matrix is built from the local vector copies (`pipeline/vector_cache.py`,
written at index time; fetched from Chroma and saved when missing) in the
background, the first time a search of a process that searches many times
needs it (searches go another way until it is ready), and kept while the
registry does not change; a change reuses the rows of the videos still registered and
unchanged, so it is rebuilt, not regrown: its size follows the registry, never
the number of searches. It holds 2 KB per 512-d frame: 2 GB per million frames.
A build that finds the index damaged makes the searches that need the matrix
report it until the registry changes; a store about to be closed (`serve`
reopening the index, or stopping) stops its build first (`stop_building`),
and the videos read so far wait for the next build.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import DamagedIndexError
from .registry import VideoEntry
from .store import frame_groups


@dataclass
class FrameMatrix:
    """The frames of `entries` (registered videos), video after video, each video's frames by time."""

    entries: tuple[VideoEntry, ...]
    offsets: np.ndarray  # row where each entry's frames start; one more at the end: the row count
    times: np.ndarray  # float64, one per row
    vectors: np.ndarray  # float32, (rows, dim)
    complete: bool = True  # False: a stopped build's, whose whole videos the next build reuses; never searched

    def kept(self, chosen: Sequence[VideoEntry] | None, start: float | None, end: float | None) -> np.ndarray:
        """A mask of the rows of the `chosen` entries (None: all) at times `start` ≤ t ≤ `end`."""
        keep = np.ones(len(self.times), bool)
        if chosen is not None:
            wanted = {entry.video_id for entry in chosen}
            per_video = np.fromiter((entry.video_id in wanted for entry in self.entries), bool, len(self.entries))
            keep = np.repeat(per_video, np.diff(self.offsets))
        if start is not None:
            keep &= self.times >= start
        if end is not None:
            keep &= self.times <= end
        if start is None and end is None:
            keep &= ~np.isnan(self.times)  # (a window's comparisons leave out unfilled rows already)
        return keep

    def scores(self, keep: np.ndarray, embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores): the kept rows in row order and each one's dot product with `embedding`.

        A window keeps one run of rows per video (frames sorted by time), so
        long runs are scored where they lie: gathering them first copies every
        kept vector. Short runs are gathered (SCORE_IN_PLACE_MIN_RUN)."""
        rows = np.flatnonzero(keep)
        edges = np.diff(keep.view(np.int8), prepend=0, append=0)
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        if not len(rows) or len(rows) < SCORE_IN_PLACE_MIN_RUN * len(starts):
            return rows, np.take(self.vectors, rows, axis=0) @ embedding
        scores = np.empty(len(rows), np.float32)
        at = 0
        for first, last in zip(starts.tolist(), ends.tolist()):
            np.matmul(self.vectors[first:last], embedding, out=scores[at:at + last - first])
            at += last - first
        return rows, scores

    def owner_of(self, rows: np.ndarray) -> np.ndarray:
        """The index into `entries` of each of `rows`."""
        return np.searchsorted(self.offsets, rows, side="right") - 1

    def video(self, entry: VideoEntry) -> tuple[np.ndarray, np.ndarray] | None:
        """(times, vectors) of `entry` as views into the matrix, or None when it is
        not held as it is now or not whole (a damaged video)."""
        index = self._index().get(_identity(entry))
        if index is None:
            return None
        first, last = self.offsets[index], self.offsets[index + 1]
        if np.isnan(self.times[first:last]).any():
            return None
        return self.times[first:last], self.vectors[first:last]

    def identities(self) -> list[tuple]:
        """What names each entry's frames (see `_identity`), in order."""
        found = getattr(self, "_identities", None)
        if found is None:
            found = [_identity(entry) for entry in self.entries]
            self._identities = found
        return found

    def _index(self) -> dict[tuple, int]:
        found = getattr(self, "_by_identity", None)
        if found is None:
            found = {_identity(entry): i for i, entry in enumerate(self.entries)}
            self._by_identity = found
        return found


SCORE_IN_PLACE_MIN_RUN = 8
"""Mean run of kept rows from which each run is scored where it lies instead of
gathering the rows first. `bench/matrix_scoring.py` at a million frames: 60-row
runs (`--from 20:00`) 1.6-2.1x faster in place, 121-row runs 1.6-2.9x; 6-row
runs (`--to 0:10`) came out anywhere from 0.7x to 3.4x (1M and 200k frames), so runs
that short stay gathered (one call per run is the cost that grows)."""

_HELD: dict[tuple[str, str], FrameMatrix] = {}
"""One matrix per index (where, collection) in this process."""

_BUILDING = threading.Lock()
_STARTING = threading.Lock()


@dataclass
class _Builder:
    """A background build of one index's matrix, on one opened store."""

    thread: threading.Thread
    store_serial: int
    stop: threading.Event


_BUILDERS: dict[tuple[str, str], _Builder] = {}
_FAILED: dict[tuple[str, str], tuple[int, list[tuple]]] = {}
"""The store (serial) and registry whose background build failed, by index: not started again for them."""
_DAMAGED: dict[tuple[str, str], tuple[list[tuple], str]] = {}
"""The registry whose build found the index damaged, by index: a search that needs the
matrix reports it again (a reopened store too) until the registry changes."""


class _Stopped(Exception):
    """A background build told to stop (its store is being closed)."""


RECENT_MAX_FRAMES = 100_000
"""Frames of single videos (read for a search within a few episodes, or for
the neighbours of over-fetched candidates) kept in memory besides the matrix,
the least recently used dropped first: 200 MB at 512-d. Reading a video's
file costs 1-6 ms (zip checksums, validation): a server searching the same
episodes again reads none."""

_RECENT: "OrderedDict[tuple, tuple[np.ndarray, np.ndarray]]" = OrderedDict()


def frame_matrix(store, entries: Sequence[VideoEntry]) -> FrameMatrix:
    """The matrix of the registered `entries` of `store` (a FrameStore), built
    or brought up to date with the registry when it changed since.
    Raises DamagedIndexError when a video must be fetched and Chroma cannot read it."""
    key, identities = _index_of(store), [_identity(entry) for entry in entries]
    held = _current(key, identities)
    if held is not None:
        return held
    return _build_and_hold(store, entries, key, identities, None)


def _build_and_hold(store, entries: Sequence[VideoEntry], key: tuple[str, str], identities: list[tuple],
                    stop: threading.Event | None) -> FrameMatrix:
    with _BUILDING:  # one build at a time: two would hold the archive twice
        held = _current(key, identities)
        if held is not None:
            return held
        built = _build(store, list(entries), key, stop)
        _HELD[key] = built
        return built


def ready_frame_matrix(store, entries: Sequence[VideoEntry]) -> FrameMatrix | None:
    """The matrix of the registered `entries` when this process holds it up to
    date; else None, and in a process that searches many times
    (`store.many_searches`) it starts being built in the background. A search
    meanwhile goes another way: Chroma's `where` answers in ~0.3 s at a million
    frames, where waiting for the build took 12-21 s.

    Raises DamagedIndexError when a build for this registry found the index damaged."""
    key, identities = _index_of(store), [_identity(entry) for entry in entries]
    held = _current(key, identities)
    if held is not None or not store.many_searches:
        return held
    with _STARTING:
        damaged = _DAMAGED.get(key)
        if damaged is not None and damaged[0] == identities:
            raise DamagedIndexError(damaged[1])  # a new one each time: a raised one keeps its traceback
        builder = _BUILDERS.get(key)
        if (builder is None or not builder.thread.is_alive()) and _FAILED.get(key) != (store.serial, identities):
            stop = threading.Event()
            thread = threading.Thread(target=_build_in_background, args=(store, list(entries), key, identities, stop),
                                      name="scenegrep-frame-matrix", daemon=True)
            _BUILDERS[key] = _Builder(thread, store.serial, stop)
            thread.start()
    return None


def stop_building(store) -> None:
    """Stop a background build on `store` (about to be closed) at its next read, and wait for it."""
    with _STARTING:
        builder = _BUILDERS.get(_index_of(store))
    if builder is not None and builder.store_serial == store.serial:
        builder.stop.set()
        builder.thread.join()


def wait_for_frame_matrices() -> None:
    """Return once no frame matrix is being built in the background."""
    for builder in list(_BUILDERS.values()):
        builder.thread.join()


def _build_in_background(store, entries: list[VideoEntry], key: tuple[str, str], identities: list[tuple],
                         stop: threading.Event) -> None:
    try:
        _build_and_hold(store, entries, key, identities, stop)
    except _Stopped:
        pass
    except DamagedIndexError as exc:  # searches that need the matrix report it (see ready_frame_matrix)
        _DAMAGED[key] = (identities, str(exc))
    except Exception:  # e.g. "cannot read the index yet" while a writer starts: searches keep to
        # the other ways, and this store is not tried again for this registry (a reopened one is)
        _FAILED[key] = (store.serial, identities)


def _index_of(store) -> tuple[str, str]:
    """What names one index in this process: where it is, and its collection."""
    return store.where, store.info.collection


def _current(key: tuple[str, str], identities: list[tuple]) -> FrameMatrix | None:
    """The held matrix of index `key` when it holds exactly the videos named by `identities`."""
    held = _HELD.get(key)
    return held if held is not None and held.complete and held.identities() == identities else None


def local_copies(store, entries: Sequence[VideoEntry], files: bool = True) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(times, vectors) by video id of those registered `entries` this process
    holds (the matrix, or a recently read video) or, with `files`, finds in the
    vector cache: never asking Chroma. Only whole, unchanged videos: a held copy
    is named by the video's id, content hash and frame count."""
    matrix = _HELD.get(_index_of(store))
    found = {}
    for entry in entries:
        key = (*_index_of(store), *_identity(entry))
        local = matrix.video(entry) if matrix is not None else None
        if local is None:
            local = _RECENT.get(key)
            if local is not None:
                _RECENT.move_to_end(key)
        if local is None and files and store.cache is not None:
            local = store.cache.load(entry, store.info.dim)
            if local is not None:
                remember(store, entry, *local)
        if local is not None:
            found[entry.video_id] = local
    return found


def remember(store, entry: VideoEntry, times: np.ndarray, vectors: np.ndarray) -> None:
    """Keep a whole video's frames among the recent ones (RECENT_MAX_FRAMES),
    in a process that searches many times (`store.many_searches`)."""
    if not store.many_searches or len(times) != entry.frames or entry.frames > RECENT_MAX_FRAMES:
        return
    _RECENT[(*_index_of(store), *_identity(entry))] = (times, vectors)
    while sum(len(times) for times, _ in _RECENT.values()) > RECENT_MAX_FRAMES:
        _RECENT.popitem(last=False)


def forget_held_copies() -> None:
    """Drop every matrix and recent video this process holds, as a new process starts."""
    wait_for_frame_matrices()
    _HELD.clear()
    _FAILED.clear()
    _DAMAGED.clear()
    _RECENT.clear()


def _build(store, entries: list[VideoEntry], key: tuple[str, str], stop: threading.Event | None) -> FrameMatrix:
    """The matrix of `entries`: the rows of the one held for `key` reused, that one freed (where
    no search still holds it) before the videos it lacks are read, so two are not held meanwhile."""
    previous = _HELD.pop(key, None)
    offsets = np.zeros(len(entries) + 1, np.int64)
    np.cumsum([entry.frames for entry in entries], out=offsets[1:])
    times = np.full(int(offsets[-1]), np.nan)  # NaN: a row no stored frame filled (a damaged video's missing frames)
    vectors = np.zeros((int(offsets[-1]), store.info.dim), np.float32)
    missing = []
    for i, entry in enumerate(entries):
        found = previous.video(entry) if previous is not None else None
        if found is None:
            missing.append(entry)
        else:
            times[offsets[i]:offsets[i + 1]], vectors[offsets[i]:offsets[i + 1]] = found
    del previous, found  # (`found` holds views of its arrays)
    position = {entry.video_id: i for i, entry in enumerate(entries)}
    for group in frame_groups(missing, LOAD_GROUP_FRAMES):
        if stop is not None and stop.is_set():  # what is read so far goes to the next build
            _HELD[key] = FrameMatrix(tuple(entries), offsets, times, vectors, complete=False)
            raise _Stopped()
        for video_id, (video_times, video_vectors) in store.frames_of(group).items():
            first = offsets[position[video_id]]
            count = min(len(video_times), offsets[position[video_id] + 1] - first)
            times[first:first + count], vectors[first:first + count] = video_times[:count], video_vectors[:count]
    return FrameMatrix(tuple(entries), offsets, times, vectors)


LOAD_GROUP_FRAMES = 50_000
"""Frames read per `frames_of` call while building: bounds the memory held
twice (the group's arrays and their place in the matrix)."""


def _identity(entry: VideoEntry) -> tuple:
    """What names one video's frames exactly: the same id, content hash and frame count mean the same frames."""
    return entry.video_id, entry.hash, entry.frames
