"""A local copy of each video's frame vectors, for exact search within a few videos.

Chroma answers a query restricted to one episode by scanning metadata for the
whole collection (~150 ms at 200k frames) and fetches one video's vectors
almost as slowly (~80 ms). A search within a few episodes instead reads those
videos' vectors from small files here and ranks them exactly in numpy
(well under a millisecond per episode).

The copy is derived, never the source of truth: a file is named by the video
id, its content hash and its frame count from the registry, so a re-indexed
or changed video simply misses the cache and is fetched from Chroma again,
and a stale file is never read. Files are written whole and renamed into
place, so a reader never sees half a file. Deleting the folder loses nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile

import numpy as np

CACHE_DIR_NAME = "vectors"


def cache_folder(where: str, collection: str) -> str:
    """Where the vectors of `collection` are kept: inside an embedded index's
    folder, or under $XDG_CACHE_HOME/scenegrep for a Chroma server (one folder per URL)."""
    if where.startswith(("http://", "https://")):
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        digest = hashlib.sha1(where.strip().rstrip("/").encode("utf-8")).hexdigest()[:12]
        return os.path.join(base, "scenegrep", f"server-{digest}", CACHE_DIR_NAME, collection)
    return os.path.join(where, CACHE_DIR_NAME, collection)


class VectorCache:
    """Frame vectors of registered videos, one `.npz` file (times, vectors) per video."""

    def __init__(self, folder: str):
        self.folder = folder

    def _path(self, entry: dict) -> str:
        content = re.sub(r"[^0-9a-zA-Z]", "", str(entry.get("hash", "")))[:16] or "nohash"
        return os.path.join(self.folder, f"{entry['video_id']}-{content}-{int(entry.get('frames', 0))}.npz")

    def load(self, entry: dict) -> tuple[np.ndarray, np.ndarray] | None:
        """(times sorted ascending, vectors) of the registered video `entry`, or None if not cached."""
        path = self._path(entry)
        try:
            with np.load(path) as data:
                return data["times"], data["vectors"]
        except FileNotFoundError:
            return None
        except Exception:  # a damaged file (cut short by a crash: EOFError, BadZipFile, ...): fetch again
            try:
                os.unlink(path)
            except OSError:
                pass
            return None

    def save(self, entry: dict, times: np.ndarray, vectors: np.ndarray) -> None:
        """Keep the frames of `entry`, `times` ascending (best effort: a cache that
        cannot be written is only slower)."""
        try:
            os.makedirs(self.folder, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
            with os.fdopen(handle, "wb") as fh:
                np.savez(fh, times=np.asarray(times, np.float64), vectors=np.asarray(vectors, np.float32))
            os.replace(temporary, self._path(entry))
        except OSError:
            try:
                os.unlink(temporary)
            except (OSError, UnboundLocalError):
                pass

    def forget_others(self, entries: list[dict]) -> int:
        """Delete cached files that no registered video in `entries` names; returns how many."""
        keep = {os.path.basename(self._path(entry)) for entry in entries}
        removed = 0
        try:
            names = os.listdir(self.folder)
        except OSError:
            return 0
        for name in names:
            if name not in keep:
                try:
                    os.unlink(os.path.join(self.folder, name))
                    removed += 1
                except OSError:
                    pass
        return removed
