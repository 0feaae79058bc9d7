"""Store stage: the frames of one index in Chroma, and its video registry beside them.

`FrameStore` writes and reads the frames collection of one model
(`pipeline/catalogue.py` names it) and keeps the registry
(`pipeline/registry.py`) in step: a video is registered only after all its
frames are written and removed from the registry only after they are deleted.
Frames of a video missing from the registry are leftovers of an interrupted
run: they are deleted before that video is indexed again.

Commands get a FrameStore from `pipeline/index_access.py`, which also
decides how it is opened (read-only or for writing).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Callable, Sequence

import numpy as np

from .catalogue import IndexInfo
from .connect import first_line
from .encode import all_unit_length
from .errors import DamagedIndexError, ScenegrepError
from .records import Hit, Video
from .registry import REGISTRY_CACHE, Registry, VideoEntry, pages
from .vector_cache import VectorCache

FETCH_FRAMES_AT_ONCE = 50_000
"""Frames fetched from Chroma per `$in` request when reading whole videos:
50k×512 float32 is 100 MB, a bound on memory however many videos are read."""


VECTOR_INDEX_MIN_SHARE = 0.5
"""A vector index that answers a query for m frames with fewer than this share
of them, while more than m are stored, has lost frames. On a healthy index
Chroma's HNSW returned 89% when asked for all of 1,826 frames (an approximate
graph search does not reach them all), so a tighter bound would cry wolf.
With its segment folder lost Chroma still answers from the frames in its
write log (up to ~1,000): a search's few hundred candidates then come back
in full and this check cannot see the loss; `scenegrep doctor`, which reads
every video's frames back, does."""

KEEP_FOR_CACHE_MAX_FRAMES = 100_000
"""The most frames of one video a writer keeps in memory while indexing it, to
write its local vector copy when it is registered (`pipeline/vector_cache.py`):
200 MB at 512-d, a 55-hour video at N=2. A longer video's copy is fetched from
Chroma on its first filtered search instead."""

def frame_id(video: Video | str, t: float) -> str:
    """Deterministic per (video or video id, timestamp): indexing again overwrites, never duplicates."""
    return f"{getattr(video, 'video_id', video)}:{round(t * 1_000_000)}"


def parse_frame_id(frame: str) -> tuple[str, float]:
    """(video id, time in seconds) from a frame id made by `frame_id`."""
    video_id, _, micros = frame.rpartition(":")
    return video_id, int(micros) / 1_000_000


_SERIALS = itertools.count(1)
"""Serial numbers of the stores opened in this process."""


class FrameStore:
    """The frames and video registry of one model in one Chroma store.

    `writable` False opens what exists and creates nothing (a missing registry
    reads as empty). `where` names the index in messages; `writer_running`
    tells whether another process writes to it now, so that a read error can
    be told apart from damage. `many_searches`: this process searches again
    and again (a server), so building the frame matrix once pays
    (`pipeline/frame_matrix.py`); a one-off search asks Chroma instead."""

    def __init__(self, client, info: IndexInfo, *, writable: bool = False, cache: VectorCache | None = None,
                 where: str = "this index", writer_running: Callable[[], bool] = lambda: False,
                 many_searches: bool = False):
        self.serial = next(_SERIALS)  # names this opened store in this process (an id() is reused once it is freed)
        self.client = client
        self.info = info
        self.cache = cache  # local copies of videos' vectors (see pipeline/vector_cache.py)
        self.where = where
        self.writer_running = writer_running
        self.many_searches = many_searches
        self.frames = client.get_collection(info.collection, embedding_function=None)
        if writable:
            registry = client.get_or_create_collection(info.registry_collection, embedding_function=None)
        else:
            try:
                registry = client.get_collection(info.registry_collection, embedding_function=None)
            except Exception:  # NotFoundError (its module moved between chromadb versions): nothing registered yet
                registry = None
        self.registry = Registry(registry)
        self._kept: dict[str, tuple[list, list] | None] = {}  # video id: (times, vectors) written so far


    # -- writing -----------------------------------------------------------

    def add_frames(self, video: Video, times: Sequence[float], embeddings: np.ndarray) -> None:
        """Upsert frames in batches the server accepts."""
        limit = self.client.get_max_batch_size()
        for start in range(0, len(times), limit):
            chunk = times[start : start + limit]
            self.frames.upsert(
                ids=[frame_id(video, t) for t in chunk],
                embeddings=embeddings[start : start + limit],
                metadatas=[{"episode": video.episode, "path": video.path, "t": float(t), "video_id": video.video_id} for t in chunk],
            )
        self._keep(video.video_id, times, embeddings)

    def _keep(self, video_id: str, times: Sequence[float], embeddings: np.ndarray) -> None:
        """Remember a video's written frames until it is registered (KEEP_FOR_CACHE_MAX_FRAMES)."""
        if self.cache is None:
            return
        kept = self._kept.setdefault(video_id, ([], []))
        if kept is None:
            return
        if sum(len(part) for part in kept[0]) + len(times) > KEEP_FOR_CACHE_MAX_FRAMES:
            self._kept[video_id] = None  # too long to keep: its copy comes from Chroma later
            return
        kept[0].append(np.asarray([parse_frame_id(frame_id(video_id, t))[1] for t in times], np.float64))  # as read back
        kept[1].append(np.asarray(embeddings, np.float32))

    def mark_indexed(self, video: Video, frames: int, details: dict) -> None:
        """Record that every frame of `video` is stored (the last step of indexing it).

        `details`: the file's size, mtime_ns and hash, its duration and, when
        known, its frame rate `fps` (an exact fraction like "30000/1001") and
        how it was sampled (`sampling`: "grid" or registry.IRREGULAR_SAMPLING)."""
        self.registry.add(video, frames, details)
        self._save_kept(VideoEntry.from_metadata(video.video_id, {"episode": video.episode, "path": video.path,
                                                                  "frames": frames, **details}))

    def _save_kept(self, entry: VideoEntry) -> None:
        """Write the local vector copy of a just registered video from the frames
        this writer stored, when they are exactly its frames: its first filtered
        search then reads a small file instead of asking Chroma."""
        kept = self._kept.pop(entry.video_id, None)
        if self.cache is None or not kept or not kept[1]:
            return
        kept_times, kept_vectors = kept
        times = np.concatenate(kept_times)
        order = np.argsort(times, kind="stable")
        times = times[order]
        if len(times) != entry.frames or np.any(np.diff(times) <= 0):  # a partial write, or a frame written twice
            return
        vectors = np.concatenate(kept_vectors)[order]
        if vectors.shape == (entry.frames, self.info.dim) and all_unit_length(vectors):
            self.cache.save(entry, times, vectors)

    def update_fingerprint(self, video_id: str, fingerprint: dict) -> None:
        """Refresh a registered video's fingerprint (a touched but unchanged file)."""
        self.registry.update(video_id, fingerprint)

    def remove_video(self, video_id: str) -> None:
        """Drop a video: its frames first, then its registry entry, so that an
        interruption in between leaves a registered video to remove again, never
        frames nobody knows about."""
        self.remove_leftovers(video_id)
        self.registry.remove(video_id)

    def remove_leftovers(self, video_id: str) -> None:
        """Delete any frames stored under `video_id` (from an interrupted run)."""
        self._kept.pop(video_id, None)
        self.frames.delete(where={"video_id": video_id})

    def copy_video(self, source: VideoEntry, video: Video) -> int:
        """Store the frames of registered video `source` again as `video`'s
        (a moved or copied file with the same content): no decoding, no model.
        Returns the number of frames copied; `video` is not registered yet."""
        copied = 0
        with self.reading():
            for page in pages(self.frames, include=["embeddings", "metadatas"], where={"video_id": source.video_id}):
                times = [float(meta["t"]) for meta in page["metadatas"]]
                self.add_frames(video, times, np.asarray(page["embeddings"], np.float32))
                copied += len(times)
        return copied

    # -- reading: the registry ---------------------------------------------

    def indexed_video(self, video_id: str) -> VideoEntry | None:
        with self.reading():
            return self.registry.get(video_id)

    def videos_with_content(self, size: int, content: str) -> list[VideoEntry]:
        """Registry entries whose file had this size and content hash."""
        with self.reading():
            return self.registry.with_content(size, content)

    def indexed_videos(self) -> list[VideoEntry]:
        """Registry entries of fully indexed videos, sorted by path: kept in
        memory while no writer changed the registry (`registry.RegistryCache`)."""
        with self.reading():
            return REGISTRY_CACHE.entries(self.client, self.where, self.info.registry_collection)

    # -- reading: frames -----------------------------------------------------

    @contextlib.contextmanager
    def reading(self):
        """Turns Chroma's internal errors while reading into one clear message (see `damaged`)."""
        from chromadb.errors import ChromaError

        try:
            yield
        except ChromaError as exc:
            raise self.damaged(f"Chroma cannot read some stored frames: {first_line(exc)}") from exc

    def damaged(self, detail: str) -> ScenegrepError:
        """The error for frames that cannot be read back: a writer's first moments
        (embedded store only: frames stored, vector index not yet on disk), or
        else a damaged index."""
        if self.writer_running():
            return ScenegrepError(f"cannot read the index yet ({detail}); a running `scenegrep index` is writing to "
                                  "it: try again in a moment")
        return DamagedIndexError(
            f"the index at {self.where} is damaged ({detail}); `scenegrep doctor` names the videos affected; "
            "rebuild it: move the index aside and run `scenegrep index` on your videos again"
        )

    def frames_per_video(self) -> dict[str, int]:
        """Stored frames counted by video id (a pass over the whole collection's metadata)."""
        counts: dict[str, int] = {}
        with self.reading():
            for page in pages(self.frames, include=["metadatas"]):
                for meta in page["metadatas"]:
                    video_id = str((meta or {}).get("video_id"))
                    counts[video_id] = counts.get(video_id, 0) + 1
        return counts

    def frame_count(self) -> int:
        with self.reading():
            return self.frames.count()

    def nearest(self, embedding: np.ndarray, n: int, stored: int = 0) -> list[tuple[str, float, float]]:
        """The `n` frames nearest to `embedding` in the whole collection, best
        first, as (video id, time, score). Reads no metadata:
        the frame id carries the video and the time (see `frame_id`), which
        makes a large `n` several times cheaper. Raises DamagedIndexError when
        far fewer come back than the `stored` frames allow (VECTOR_INDEX_MIN_SHARE)."""
        result = self._query(embedding, n, None, ["distances"])
        found = [(*parse_frame_id(frame), 1.0 - float(distance))
                 for frame, distance in zip(result["ids"][0], result["distances"][0])]
        expected = min(n, stored)
        if len(found) < VECTOR_INDEX_MIN_SHARE * expected:
            raise self.damaged(f"its vector index returned {len(found)} of the {expected} frames asked")
        return found

    def frame_records(self, frames: Sequence[tuple[str, float]], vectors: bool = False, metadata: bool = False
                      ) -> dict[tuple[str, float], tuple[dict | None, np.ndarray | None]]:
        """(metadata, embedding) of these (video id, time) frames, each None unless asked for."""
        include = (["embeddings"] if vectors else []) + (["metadatas"] if metadata else [])
        if not frames or not include:
            return {}
        with self.reading():
            found = self.frames.get(ids=[frame_id(video_id, t) for video_id, t in frames], include=include)
        metas = found["metadatas"] if metadata else [None] * len(found["ids"])
        embeddings = found["embeddings"] if vectors else [None] * len(found["ids"])
        return {parse_frame_id(frame): (meta, None if vector is None else np.asarray(vector, np.float32))
                for frame, meta, vector in zip(found["ids"], metas, embeddings)}

    def fetch_frames(self, entries: Sequence[VideoEntry]):
        """(entry, times ascending, vectors) of each of `entries`, read from
        Chroma (never the local cache), FETCH_FRAMES_AT_ONCE frames at a time.
        Raises DamagedIndexError when Chroma cannot read them back."""
        for group in frame_groups(entries):
            yield from self._fetch_group(group)

    def _fetch_group(self, entries: Sequence[VideoEntry]):
        fetched: dict[str, tuple[list, list]] = {entry.video_id: ([], []) for entry in entries}
        ids = list(fetched)
        where = {"video_id": ids[0]} if len(ids) == 1 else {"video_id": {"$in": ids}}
        with self.reading():
            for page in pages(self.frames, include=["embeddings"], where=where):
                for frame, vector in zip(page["ids"], page["embeddings"]):
                    video_id, t = parse_frame_id(frame)
                    fetched[video_id][0].append(t)
                    fetched[video_id][1].append(vector)
        for entry in entries:
            times, vectors = fetched[entry.video_id]
            times = np.asarray(times, np.float64)
            vectors = np.asarray(vectors, np.float32).reshape(len(times), self.info.dim)
            if not all_unit_length(vectors):
                raise self.damaged(f"Chroma returns vectors of {entry.path} that are not unit length")
            order = np.argsort(times, kind="stable")
            yield entry, times[order], vectors[order]

    def frames_of(self, entries: Sequence[VideoEntry]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(times ascending, vectors) of each registered video in `entries`, by
        video id: from the local vector cache, the rest fetched from Chroma and
        cached for next time."""
        found, missing = {}, []
        for entry in entries:
            cached = self.cache.load(entry, self.info.dim) if self.cache else None
            if cached is None:
                missing.append(entry)
            else:
                found[entry.video_id] = cached
        for entry, times, vectors in self.fetch_frames(missing):
            found[entry.video_id] = (times, vectors)
            if self.cache and len(times) == entry.frames:  # never cache a damaged video
                self.cache.save(entry, times, vectors)
        return found

    def _query(self, embedding: np.ndarray, n: int, where: dict | None, include: list[str]) -> dict:
        with self.reading():
            return self.frames.query(
                query_embeddings=np.asarray(embedding, np.float32).reshape(1, -1), n_results=n, where=where, include=include,
            )

    def query(
        self,
        embedding: np.ndarray,
        n: int,
        *,
        episodes: Sequence[str] | None = None,
        start: float | None = None,
        end: float | None = None,
        with_vectors: bool = False,
    ) -> list[Hit]:
        """The `n` frames nearest to `embedding` by cosine similarity, best first,
        among frames of `episodes` at times `start` ≤ t ≤ `end` (None: no limit).
        `with_vectors` also returns each frame's embedding (`Hit.vector`)."""
        if episodes == []:
            return []
        include = ["metadatas", "distances"] + (["embeddings"] if with_vectors else [])
        result = self._query(embedding, n, frame_filter(episodes, start, end), include)
        vectors = result["embeddings"][0] if with_vectors else [None] * len(result["ids"][0])
        return [
            Hit(episode=meta["episode"], path=meta["path"], t=float(meta["t"]), score=1.0 - float(distance),
                vector=None if vector is None else np.asarray(vector, np.float32))
            for meta, distance, vector in zip(result["metadatas"][0], result["distances"][0], vectors)
        ]


def frame_groups(entries: Sequence[VideoEntry], limit: int = FETCH_FRAMES_AT_ONCE):
    """`entries` in consecutive groups of at most `limit` frames (a larger video alone)."""
    group: list[VideoEntry] = []
    size = 0
    for entry in entries:
        if group and size + entry.frames > limit:
            yield group
            group, size = [], 0
        group.append(entry)
        size += entry.frames
    if group:
        yield group


def frame_filter(episodes: Sequence[str] | None = None, start: float | None = None, end: float | None = None) -> dict | None:
    """A Chroma `where` for frames of these episodes within [start, end] seconds (None: no limit)."""
    conditions: list[dict] = []
    if episodes:
        conditions.append({"episode": episodes[0]} if len(episodes) == 1 else {"episode": {"$in": list(episodes)}})
    if start is not None:
        conditions.append({"t": {"$gte": float(start)}})
    if end is not None:
        conditions.append({"t": {"$lte": float(end)}})
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else {"$and": conditions}
