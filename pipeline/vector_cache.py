"""A local copy of each video's frame vectors, for exact search within a few videos.

Chroma answers a query restricted to one episode by scanning metadata for the
whole collection (~150 ms at 200k frames) and fetches one video's vectors
almost as slowly (~80 ms). A search within a few episodes instead reads those
videos' vectors from small files here and ranks them exactly in numpy
(well under a millisecond per episode).

The copy is derived, never the source of truth: a file is named by the video
id, its content hash and its frame count from the registry, so a re-indexed
or changed video simply misses the cache and is fetched from Chroma again,
and a stale file is never read. Every load also checks the file (its video
id and content hash, row count, dimension, finite values, ascending times);
one that fails is deleted and fetched again. Files are written whole and
renamed into place, so a reader never sees half a file. Deleting the folder
loses nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

import numpy as np

from .connect import is_server
from .encode import all_unit_length
from .registry import VideoEntry

CACHE_DIR_NAME = "vectors"


def cache_folder(where: str, collection: str) -> str:
    """Where the vectors of `collection` are kept: inside an embedded index's
    folder, or under $XDG_CACHE_HOME/scenegrep for a Chroma server (one folder per
    `where`, a location as `connect.location` spells it)."""
    if is_server(where):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        digest = hashlib.sha1(where.encode("utf-8")).hexdigest()[:12]
        return os.path.join(base, "scenegrep", f"server-{digest}", CACHE_DIR_NAME, collection)
    return os.path.join(where, CACHE_DIR_NAME, collection)


class VectorCache:
    """Frame vectors of registered videos, one `.npz` file (times, vectors, and
    the video id and content hash they belong to) per video."""

    def __init__(self, folder: str):
        self.folder = folder

    def _path(self, entry: VideoEntry) -> str:
        content = re.sub(r"[^0-9a-zA-Z]", "", entry.hash or "")[:16] or "nohash"
        return os.path.join(self.folder, f"{entry.video_id}-{content}-{entry.frames}.npz")

    def load(self, entry: VideoEntry, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(times sorted ascending, vectors) of the registered video `entry`, or
        None when it is not cached or its file does not hold exactly that video's
        `entry.frames` finite `dim`-d vectors at ascending times (a damaged,
        stale or foreign file: deleted, so the caller fetches from the index)."""
        path = self._path(entry)
        if not os.path.exists(path):
            return None
        found = _read(path, entry, dim)
        if found is None:
            self._discard(path)
        return found

    def inspect(self, entry: VideoEntry, dim: int, times: np.ndarray, vectors: np.ndarray) -> bool:
        """Whether a cached file of `entry` exists that `load` would reject or
        that differs from `times` and `vectors` (read from the index). Reads only."""
        path = self._path(entry)
        if not os.path.exists(path):
            return False
        found = _read(path, entry, dim)
        return (found is None or not np.array_equal(found[0], times)
                or not np.allclose(found[1], vectors, atol=1e-6))

    def save(self, entry: VideoEntry, times: np.ndarray, vectors: np.ndarray) -> None:
        """Keep the frames of `entry`, `times` ascending (best effort: a cache that
        cannot be written is only slower)."""
        temporary = None
        try:
            os.makedirs(self.folder, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(handle, "wb") as fh:
                np.savez(fh, times=np.asarray(times, np.float64), vectors=np.asarray(vectors, np.float32),
                         video_id=np.str_(entry.video_id), hash=np.str_(entry.hash or ""))
            os.replace(temporary, self._path(entry))
        except OSError:
            if temporary:
                self._discard(temporary)

    def forget_others(self, entries: list[VideoEntry]) -> int:
        """Delete cached files that no registered video in `entries` names; returns how many."""
        keep = {os.path.basename(self._path(entry)) for entry in entries}
        removed = 0
        try:
            names = os.listdir(self.folder)
        except OSError:
            return 0
        for name in names:
            if name not in keep and self._discard(os.path.join(self.folder, name)):
                removed += 1
        return removed

    @staticmethod
    def _discard(path: str) -> bool:
        try:
            os.unlink(path)
            return True
        except OSError:
            return False


def _read(path: str, entry: VideoEntry, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(times, vectors) of the file at `path` if it holds exactly `entry`'s frames, else None."""
    try:
        with np.load(path) as data:
            times, vectors = data["times"], data["vectors"]
            owner = (str(data["video_id"]), str(data["hash"]))
    except Exception:  # gone meanwhile, or damaged (cut short by a crash: EOFError, BadZipFile, KeyError, ...)
        return None
    if owner != (entry.video_id, entry.hash or "") or not _well_formed(times, vectors, entry.frames, dim):
        return None
    return times, vectors


def _well_formed(times: np.ndarray, vectors: np.ndarray, frames: int, dim: int) -> bool:
    return (times.ndim == 1 and vectors.ndim == 2 and len(times) == frames and vectors.shape == (frames, dim)
            and bool(np.all(np.isfinite(times))) and all_unit_length(vectors) and bool(np.all(np.diff(times) > 0)))
