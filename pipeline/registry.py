"""The video registry: one typed record per fully indexed video.

A video enters the registry only after all its frames are stored, and leaves
it only after they are deleted, so the registry never claims frames that are
not there (`pipeline/store.py` keeps that order). Entries are read into
`VideoEntry` records here and nowhere else, so a missing field has one default.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

from .records import Video

IRREGULAR_SAMPLING = "keyframes"
"""The `sampling` of videos whose samples follow their keyframes, not the grid
(`--sampling keyframes`): search shapes their clips by the stored samples."""

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

    @classmethod
    def from_metadata(cls, video_id: str, meta: dict | None) -> "VideoEntry":
        meta = meta or {}
        return cls(
            video_id=video_id,
            episode=str(meta.get("episode", "")),
            path=str(meta.get("path", "")),
            frames=_int(meta.get("frames")) or 0,
            size=_int(meta.get("size")),
            mtime_ns=_int(meta.get("mtime_ns")),
            hash=str(meta["hash"]) if meta.get("hash") else None,
            duration=_positive(meta.get("duration")),
            fps=str(meta["fps"]) if meta.get("fps") else None,
            sampling=str(meta.get("sampling") or "grid"),
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

    def update(self, video_id: str, details: dict) -> None:
        self.collection.update(ids=[video_id], metadatas=[details])

    def remove(self, video_id: str) -> None:
        if self.collection is not None:
            self.collection.delete(ids=[video_id])


def pages(collection, include: list[str], where: dict | None = None) -> Iterable[dict]:
    """A whole collection (or the part `where` selects), GET_PAGE_SIZE records at a time."""
    offset = 0
    while True:
        page = collection.get(include=include, where=where, limit=GET_PAGE_SIZE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])  # no early stop on a short page: a server may cap pages below our limit
