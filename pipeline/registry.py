"""The video registry: one typed record per fully indexed video.

A video enters the registry only after all its frames are stored, and leaves
it only after they are deleted, so the registry never claims frames that are
not there (`pipeline/store.py` keeps that order). Entries are read into
`VideoEntry` records here and nowhere else, so a missing field has one default.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

from .files import video_for
from .records import Video

IRREGULAR_SAMPLING = "keyframes"
"""The `sampling` of videos whose samples follow their keyframes, not the grid
(`--sampling keyframes`): search shapes their clips by the stored samples."""

VERSION_KEY = "scenegrep_registry_version"
"""The registry collection's metadata key holding a fresh random token after
every change (`Registry.add`, `update`, `remove`), written after the change
itself: a reader that read the token before the entries and finds the same
token later knows its copy of the entries is still whole (`RegistryCache`).
A random token, not a counter: two writers to one server cannot both write
the same new value, so no change goes unnoticed."""

GET_PAGE_SIZE = 5000
"""Records fetched per `get` when listing a whole collection: bounded memory per page."""


@dataclass(frozen=True)
class VideoEntry:
    """What the index knows about one fully indexed video."""

    video_id: str
    episode: str
    path: str
    frames: int  # frames stored for it; 0 when an entry lacks the count (then any stored frame is a mismatch)
    size: int | None = None  # the file's size, mtime and partial content hash when it was indexed
    mtime_ns: int | None = None
    hash: str | None = None
    duration: float | None = None  # seconds, as its container states (or the last decoded frame)
    fps: str | None = None  # exact frame rate as a fraction ("30000/1001"), when the video has a constant one
    sampling: str = "grid"  # how its frames were sampled: "grid" or "keyframes"
    cuts: tuple[float, ...] | None = None  # shot changes recorded while indexing (seconds); None: not recorded
    cuts_damaged: bool = False  # a cuts field is there but is not what `index` writes (cuts then None)

    @classmethod
    def from_metadata(cls, video_id: str, meta: dict | None) -> "VideoEntry":
        meta = meta or {}
        duration = _positive(meta.get("duration"))
        cuts = parse_cuts(meta.get(CUTS_KEY), duration)
        return cls(
            video_id=video_id,
            episode=str(meta.get("episode", "")),
            path=str(meta.get("path", "")),
            frames=_int(meta.get("frames")) or 0,
            size=_int(meta.get("size")),
            mtime_ns=_int(meta.get("mtime_ns")),
            hash=str(meta["hash"]) if meta.get("hash") else None,
            duration=duration,
            fps=str(meta["fps"]) if meta.get("fps") else None,
            sampling=str(meta.get("sampling") or "grid"),
            cuts=cuts,
            cuts_damaged=CUTS_KEY in meta and cuts is None,
        )

    @property
    def video(self) -> Video:
        return Video(path=self.path, episode=self.episode, video_id=self.video_id)

    @property
    def rate(self) -> Fraction | None:
        """The recorded frame rate, if any and if it is one (positive and finite)."""
        from .timecode import parse_rate

        try:
            return parse_rate(self.fps) if self.fps else None
        except (TypeError, ValueError, ZeroDivisionError):
            return None


def names_its_file(entry: VideoEntry) -> bool:
    """Whether the entry's path is absolute and the one its id was made from (`files.video_for`):
    an edited or damaged registry entry could name any file."""
    return os.path.isabs(entry.path) and video_for(entry.path).video_id == entry.video_id


CUTS_KEY = "cuts"
"""The registry field of a video's recorded shot changes (`pipeline/cuts.py`):
times in seconds, space-separated, ascending ("" when it has none). Absent in
entries written before they were recorded, or when they could not be."""

MAX_CUTS_TEXT = 1 << 20
"""A recorded cut list longer than this (a day of video with a cut every
second is ~800 KB) is not read: it is damaged or not ours."""


def cuts_metadata(cuts: tuple[float, ...] | None) -> dict:
    """The registry fields for recorded shot changes; none when not recorded."""
    return {} if cuts is None else {CUTS_KEY: " ".join(f"{t:.6f}".rstrip("0").rstrip(".") for t in cuts)}


CUT_TIME = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")
"""One recorded time as `cuts_metadata` writes it: plain decimal seconds, at most microseconds."""

CUTS_PAST_DURATION = 1.0
"""Seconds past a video's recorded duration a recorded cut may lie (its last frame's time, give or take)."""


def parse_cuts(value, duration: float | None = None) -> tuple[float, ...] | None:
    """Recorded shot changes from a registry field; None when absent or not exactly
    what `cuts_metadata` writes: plain decimal times, strictly ascending, within the
    video (the field is read from disk: untrusted, and a damaged list would move
    clip edges silently)."""
    if not isinstance(value, str) or len(value) > MAX_CUTS_TEXT:
        return None
    parts = value.split(" ") if value else []
    if not all(CUT_TIME.fullmatch(part) for part in parts):
        return None
    cuts = tuple(float(part) for part in parts)
    if any(b <= a for a, b in zip(cuts, cuts[1:])):
        return None
    if cuts and duration is not None and cuts[-1] > duration + CUTS_PAST_DURATION:
        return None
    return cuts


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _positive(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


class Registry:
    """The registry collection of one index. `collection` None: it does not
    exist (yet), which reads as empty; only writers create it."""

    def __init__(self, collection):
        self.collection = collection

    def get(self, video_id: str) -> VideoEntry | None:
        if self.collection is None:
            return None
        found = self.collection.get(ids=[video_id], include=["metadatas"])
        return VideoEntry.from_metadata(video_id, found["metadatas"][0]) if found["ids"] else None

    def with_content(self, size: int, content: str) -> list[VideoEntry]:
        """Entries whose file had this size and content hash."""
        if self.collection is None:
            return []
        found = self.collection.get(where={"$and": [{"hash": content}, {"size": size}]}, include=["metadatas"])
        return [VideoEntry.from_metadata(video_id, meta) for video_id, meta in zip(found["ids"], found["metadatas"])]

    def all(self) -> list[VideoEntry]:
        """Every entry, sorted by path."""
        if self.collection is None:
            return []
        entries = [VideoEntry.from_metadata(video_id, meta)
                   for page in pages(self.collection, include=["metadatas"])
                   for video_id, meta in zip(page["ids"], page["metadatas"])]
        return sorted(entries, key=lambda entry: entry.path)

    def add(self, video: Video, frames: int, details: dict) -> None:
        """Register `video` with `frames` stored frames; `details` are the file's
        fingerprint (size, mtime_ns, hash) plus duration, fps and sampling."""
        self.collection.upsert(ids=[video.video_id], embeddings=[[1.0]],
                               metadatas=[{"episode": video.episode, "path": video.path, "frames": int(frames), **details}])
        self._changed()

    def update(self, video_id: str, details: dict) -> None:
        self.collection.update(ids=[video_id], metadatas=[details])
        self._changed()

    def remove(self, video_id: str) -> None:
        if self.collection is not None:
            self.collection.delete(ids=[video_id])
            self._changed()

    def _changed(self) -> None:
        self.collection.modify(metadata={VERSION_KEY: uuid.uuid4().hex})


class RegistryCache:
    """The entries of registries read in this process, kept while their
    version token (VERSION_KEY) stays the same: a warm search reads one small
    collection record (~0.3 ms embedded) instead of every entry (~20 ms for
    300 videos, far more for thousands)."""

    def __init__(self):
        self._kept: dict[tuple[str, str], tuple[tuple, list[VideoEntry]]] = {}

    def entries(self, client, where: str, name: str) -> list[VideoEntry]:
        """Every entry of registry collection `name` at `where` (sorted by path),
        from memory when its token is unchanged since it was read; [] when the
        collection does not exist. The token is read before the entries, so a
        change made while they are read shows as a new token next time."""
        try:
            collection = client.get_collection(name, embedding_function=None)
        except Exception:  # NotFoundError (its module moved between chromadb versions): nothing registered yet
            self._kept.pop((where, name), None)
            return []
        stamp = (str(collection.id), (collection.metadata or {}).get(VERSION_KEY))
        kept = self._kept.get((where, name))
        if kept is not None and kept[0] == stamp and stamp[1] is not None:
            return list(kept[1])
        entries = Registry(collection).all()
        self._kept[(where, name)] = (stamp, entries)
        return list(entries)


REGISTRY_CACHE = RegistryCache()
"""The process's one RegistryCache: every FrameStore of the process shares it."""


def pages(collection, include: list[str], where: dict | None = None) -> Iterable[dict]:
    """A whole collection (or the part `where` selects), GET_PAGE_SIZE records at a time."""
    offset = 0
    while True:
        page = collection.get(include=include, where=where, limit=GET_PAGE_SIZE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])  # no early stop on a short page: a server may cap pages below our limit
