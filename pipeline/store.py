"""Store stage: frame embeddings in Chroma, one collection per model.

Each model gets two collections: `sg-…` holds one record per sampled frame
(embedding + episode, path, time, video id), `sgv-…` one record per fully
indexed video (its frame count and file fingerprint). A video enters the
registry only after all its frames are written, and leaves it only after they
are deleted, so the registry never claims frames that are not there. Frames of
a video missing from the registry are leftovers of an interrupted run: they
are deleted before that video is indexed again.

The store is an embedded Chroma folder (`--db`) or a Chroma server
(`--chroma-url http://host:port[/database]`).
"""

from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass
from typing import Iterable, Sequence
from urllib.parse import urlparse

import numpy as np

from .encode import ModelInfo
from .errors import IndexNotFoundError, ModelMismatchError, ScenegrepError
from .records import Hit, Video
from .vector_cache import VectorCache, cache_folder

SCHEMA_VERSION = 1
FRAMES_PREFIX = "sg-"
VIDEOS_PREFIX = "sgv-"

HNSW_CONFIGURATION = {"space": "cosine", "ef_search": 200}
"""The frames collection's HNSW settings, set when the collection is created.
On archive-shaped vectors (bench/search_scale.py) Chroma's default graph
already has recall@10 = 1.0 against exact search at 10k and 50k frames; a
wider graph (ef_construction 200, 32 neighbours) made adds 1.65x slower for no
gain there, so only the query-time beam is widened (search asks for 100+
candidates anyway, which widens it to at least that)."""

DEFAULT_DATABASE = "default_database"
"""Chroma's own name for a server's default database."""

OPEN_ATTEMPTS = 3
"""Tries to open an embedded folder. Two processes opening a brand-new folder at
once (an `index` creating it, a `search` or `info` started that instant) can
both run Chroma's schema setup, and one fails ("table ... already exists");
a moment later the schema is complete and opening succeeds."""

OPEN_RETRY_PAUSE = 0.5
"""Seconds between those tries: far longer than the schema setup takes."""

GET_PAGE_SIZE = 5000
"""Records fetched per `get` when listing a whole collection: bounded memory per page."""


def default_db_path() -> str:
    """$SCENEGREP_DB, else $XDG_DATA_HOME/scenegrep (~/.local/share/scenegrep)."""
    if os.environ.get("SCENEGREP_DB"):
        return os.environ["SCENEGREP_DB"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "scenegrep")


def location(db: str | None, url: str | None) -> str:
    """How messages (and the vector cache) name the index: the server URL,
    with its scheme spelled out in lower case (`host:8000` → `http://host:8000`),
    or the folder."""
    if url:
        parsed = urlparse(url.strip() if "://" in url else f"http://{url.strip()}")
        return parsed._replace(scheme=parsed.scheme.lower()).geturl()
    return db or default_db_path()


def open_client(db: str | None = None, url: str | None = None, create: bool = True):
    """An embedded Chroma at folder `db`, or a Chroma server at `url`
    (http://host:port, optionally /DATABASE for one of the server's databases).

    Raises IndexNotFoundError when `create` is False and there is no index,
    ScenegrepError when the server cannot be reached.
    """
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url:
        return _open_server(url, create, settings)
    db = db or default_db_path()
    if not create and not os.path.exists(os.path.join(db, "chroma.sqlite3")):
        raise IndexNotFoundError(f"no index at {db}; build one with `scenegrep index VIDEOS --db {db}`")
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        try:
            os.makedirs(db, exist_ok=True)
            return chromadb.PersistentClient(path=db, settings=settings)
        except OSError as exc:
            raise ScenegrepError(f"cannot use {db} for the index: {exc.strerror or exc}; pass --db to choose another folder") from exc
        except Exception as exc:  # chromadb's own errors: a damaged folder, or one being created right now
            _forget_failed_client(db)
            if attempt == OPEN_ATTEMPTS:
                raise ScenegrepError(
                    f"cannot open the index at {db} ({_first_line(exc)}); if another scenegrep is creating it right "
                    "now, try again in a moment"
                ) from exc
            time.sleep(OPEN_RETRY_PAUSE)


def _forget_failed_client(db: str) -> None:
    """Chroma caches one client system per folder, even one whose start failed; drop it so a retry starts afresh."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient

        SharedSystemClient._identifier_to_system.pop(str(db), None)
    except (ImportError, AttributeError):  # another chromadb layout: a retry then reuses the cached system
        pass


def _open_server(url: str, create: bool, settings):
    import chromadb

    parsed = urlparse(url if "://" in url else f"http://{url}")
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ScenegrepError(f"--chroma-url {url}: expected http://HOST:PORT or http://HOST:PORT/DATABASE")
    database = parsed.path.strip("/") or DEFAULT_DATABASE
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    except ValueError as exc:
        raise ScenegrepError(f"--chroma-url {url}: {exc}") from None
    server = dict(host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=settings)
    try:
        admin = chromadb.HttpClient(**server)
        admin.heartbeat()
    except Exception as exc:  # the client raises many kinds; all mean "not reachable"
        raise ScenegrepError(
            f"cannot reach the Chroma server at {url} ({_first_line(exc)}); is `chroma run` running there?"
        ) from exc
    if database != DEFAULT_DATABASE:
        admin_client = chromadb.AdminClient(settings=admin.get_settings())
        try:
            admin_client.get_database(database)
        except Exception:  # NotFoundError, whose module moved between chromadb versions
            if not create:
                raise IndexNotFoundError(
                    f"the Chroma server at {url} has no database {database!r}; "
                    f"build one with `scenegrep index VIDEOS --chroma-url {url}`"
                ) from None
            try:
                admin_client.create_database(database)
            except Exception as exc:  # chromadb's errors for invalid names vary by version
                raise ScenegrepError(f"cannot create database {database!r} on {url}: {_first_line(exc)}") from exc
    return chromadb.HttpClient(database=database, **server)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class IndexInfo:
    """What a frames collection says about itself."""

    collection: str
    model: str
    fingerprint: str
    dim: int
    every: float


def list_indexes(client) -> list[IndexInfo]:
    """Every scenegrep frames collection in this store."""
    found = []
    for collection in client.list_collections():
        name = collection.name if hasattr(collection, "name") else str(collection)
        if not name.startswith(FRAMES_PREFIX):
            continue
        meta = client.get_collection(name, embedding_function=None).metadata or {}
        found.append(
            IndexInfo(name, str(meta.get("model")), str(meta.get("fingerprint")), int(meta.get("dim", 0)), float(meta.get("every", 0)))
        )
    return found


def collection_name(model: ModelInfo) -> str:
    stem = os.path.basename(model.name.rstrip("/")) or "model"
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", stem).strip("-._")[:40] or "model"
    return f"{FRAMES_PREFIX}{slug}-{model.fingerprint}"


def frame_id(video: Video | str, t: float) -> str:
    """Deterministic per (video or video id, timestamp): indexing again overwrites, never duplicates."""
    return f"{getattr(video, 'video_id', video)}:{round(t * 1_000_000)}"


class FrameStore:
    """The frames and video registry of one model in one Chroma store."""

    def __init__(self, client, info: IndexInfo, cache: VectorCache | None = None):
        self.client = client
        self.info = info
        self.cache = cache  # local copies of videos' vectors (search only; see pipeline/vector_cache.py)
        self.frames = client.get_collection(info.collection, embedding_function=None)
        self.videos = client.get_or_create_collection(
            VIDEOS_PREFIX + info.collection[len(FRAMES_PREFIX):], embedding_function=None
        )

    # -- opening -----------------------------------------------------------

    @classmethod
    def for_indexing(cls, client, model: ModelInfo, every: float | None = None, where: str = "this index") -> "FrameStore":
        """Open (or create) the model's collection. Another model gets its own
        collection (searches then pick one with --model). `every` None means the
        existing index's interval, else DEFAULT_EVERY. Raises ModelMismatchError
        when the index samples at another interval: mixing intervals would skew clips,
        ValueError for an interval that is not a positive finite number."""
        from .sample import DEFAULT_EVERY

        if every is not None and not (math.isfinite(every) and every > 0):
            raise ValueError(f"the sampling interval must be a positive number of seconds, not {every!r}")
        name = collection_name(model)
        existing = {index.collection: index for index in list_indexes(client)}
        if name in existing:
            index = existing[name]
            if every is not None and abs(index.every - every) > 1e-9:
                other = "another --db folder" if not where.startswith(("http://", "https://")) else \
                    "another database (--chroma-url http://HOST:PORT/NAME)"
                raise ModelMismatchError(
                    f"the index at {where} samples every {index.every:g} s with this model; index with "
                    f"--every {index.every:g}, or use {other} for a separate index at --every {every:g}"
                )
            return cls(client, index)
        every = DEFAULT_EVERY if every is None else every
        metadata = {"scenegrep": SCHEMA_VERSION, "model": model.name, "fingerprint": model.fingerprint,
                    "dim": model.dim, "every": float(every)}
        client.get_or_create_collection(
            name, configuration={"hnsw": dict(HNSW_CONFIGURATION)}, metadata=metadata, embedding_function=None
        )
        return cls(client, IndexInfo(name, model.name, model.fingerprint, model.dim, float(every)))

    @classmethod
    def for_search(cls, client, model: ModelInfo, where: str) -> "FrameStore":
        """Open the index built with `model`.

        Raises ModelMismatchError if `model` did not build any index here.
        """
        indexes = list_indexes(client)
        for index in indexes:
            if index.fingerprint == model.fingerprint:
                return cls(client, index, VectorCache(cache_folder(where, index.collection)))
        if not indexes:
            raise IndexNotFoundError(f"no videos are indexed at {where}; run `scenegrep index VIDEOS` first")
        built = ", ".join(index.model for index in indexes)
        raise ModelMismatchError(
            f"the index at {where} was built with {built}, not {model.name}; search with --model {indexes[0].model} "
            "or index the videos with this model first"
        )

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

    def mark_indexed(self, video: Video, frames: int, fingerprint: dict) -> None:
        """Record that every frame of `video` is stored (the last step of indexing it).

        `fingerprint` is the file's size, mtime_ns and hash (plus its duration
        and, when known, its frame rate `fps` as an exact fraction like "30000/1001").
        """
        self.videos.upsert(
            ids=[video.video_id],
            embeddings=[[1.0]],
            metadatas=[{"episode": video.episode, "path": video.path, "frames": int(frames), **fingerprint}],
        )

    def update_fingerprint(self, video_id: str, fingerprint: dict) -> None:
        """Refresh a registered video's fingerprint (a touched but unchanged file)."""
        self.videos.update(ids=[video_id], metadatas=[fingerprint])

    def remove_video(self, video_id: str) -> None:
        """Drop a video: its frames first, then its registry entry, so that an
        interruption in between leaves a registered video to remove again, never
        frames nobody knows about."""
        self.remove_leftovers(video_id)
        self.videos.delete(ids=[video_id])

    def remove_leftovers(self, video_id: str) -> None:
        """Delete any frames stored under `video_id` (from an interrupted run)."""
        self.frames.delete(where={"video_id": video_id})

    def copy_video(self, source: dict, video: Video) -> int:
        """Store the frames of registered video `source` again as `video`'s
        (a moved or copied file with the same content): no decoding, no model.
        Returns the number of frames copied; `video` is not registered yet."""
        copied = 0
        for page in _pages(self.frames, include=["embeddings", "metadatas"], where={"video_id": source["video_id"]}):
            times = [float(meta["t"]) for meta in page["metadatas"]]
            self.add_frames(video, times, np.asarray(page["embeddings"], np.float32))
            copied += len(times)
        return copied

    # -- reading -----------------------------------------------------------

    def indexed_video(self, video_id: str) -> dict | None:
        found = self.videos.get(ids=[video_id], include=["metadatas"])
        return {"video_id": video_id, **found["metadatas"][0]} if found["ids"] else None

    def videos_with_content(self, size: int, content: str) -> list[dict]:
        """Registry entries whose file had this size and content hash."""
        found = self.videos.get(where={"$and": [{"hash": content}, {"size": size}]}, include=["metadatas"])
        return [{"video_id": video_id, **meta} for video_id, meta in zip(found["ids"], found["metadatas"])]

    def indexed_videos(self) -> list[dict]:
        """Registry entries of fully indexed videos, sorted by path."""
        entries: list[dict] = []
        for page in _pages(self.videos, include=["metadatas"]):
            for video_id, meta in zip(page["ids"], page["metadatas"]):
                entries.append({"video_id": video_id, **meta})
        return sorted(entries, key=lambda entry: entry["path"])

    def frames_per_video(self) -> dict[str, int]:
        """Stored frames counted by video id (a pass over the whole collection)."""
        counts: dict[str, int] = {}
        for page in _pages(self.frames, include=["metadatas"]):
            for meta in page["metadatas"]:
                video_id = str((meta or {}).get("video_id"))
                counts[video_id] = counts.get(video_id, 0) + 1
        return counts

    def frame_count(self) -> int:
        return self.frames.count()

    def nearest(self, embedding: np.ndarray, n: int) -> list[tuple[str, float, float]]:
        """The `n` frames nearest to `embedding` in the whole collection, best
        first, as (video id, time, score). Reads no metadata:
        the frame id carries the video and the time (see `frame_id`), which
        makes a large `n` several times cheaper.
        Raises ScenegrepError while a running `index` writes its first frames."""
        result = self._query(embedding, n, None, ["distances"])
        return [(*parse_frame_id(frame), 1.0 - float(distance)) for frame, distance in zip(result["ids"][0], result["distances"][0])]

    def frame_records(self, frames: Sequence[tuple[str, float]], vectors: bool = False, metadata: bool = False
                      ) -> dict[tuple[str, float], tuple[dict | None, np.ndarray | None]]:
        """(metadata, embedding) of these (video id, time) frames, each None unless asked for."""
        include = (["embeddings"] if vectors else []) + (["metadatas"] if metadata else [])
        if not frames or not include:
            return {}
        found = self.frames.get(ids=[frame_id(video_id, t) for video_id, t in frames], include=include)
        metas = found["metadatas"] if metadata else [None] * len(found["ids"])
        embeddings = found["embeddings"] if vectors else [None] * len(found["ids"])
        return {parse_frame_id(frame): (meta, None if vector is None else np.asarray(vector, np.float32))
                for frame, meta, vector in zip(found["ids"], metas, embeddings)}

    def frames_of(self, entries: Sequence[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(times ascending, vectors) of each registered video in `entries`, by
        video id: from the local vector cache, the rest fetched from Chroma in
        one pass and cached for next time."""
        found, missing = {}, []
        for entry in entries:
            cached = self.cache.load(entry) if self.cache else None
            if cached is None:
                missing.append(entry)
            else:
                found[entry["video_id"]] = cached
        if missing:
            fetched: dict[str, tuple[list, list]] = {entry["video_id"]: ([], []) for entry in missing}
            ids = list(fetched)
            where = {"video_id": ids[0]} if len(ids) == 1 else {"video_id": {"$in": ids}}
            for page in _pages(self.frames, include=["embeddings"], where=where):
                for frame, vector in zip(page["ids"], page["embeddings"]):
                    video_id, t = parse_frame_id(frame)
                    fetched[video_id][0].append(t)
                    fetched[video_id][1].append(vector)
            for entry in missing:
                times, vectors = fetched[entry["video_id"]]
                times = np.asarray(times, np.float64)
                vectors = np.asarray(vectors, np.float32).reshape(len(times), self.info.dim)
                order = np.argsort(times, kind="stable")
                times, vectors = times[order], vectors[order]
                found[entry["video_id"]] = (times, vectors)
                if self.cache and len(times) == int(entry.get("frames", -1)):  # never cache a damaged video
                    self.cache.save(entry, times, vectors)
        return found

    def _query(self, embedding: np.ndarray, n: int, where: dict | None, include: list[str]) -> dict:
        from chromadb.errors import ChromaError

        try:
            return self.frames.query(
                query_embeddings=np.asarray(embedding, np.float32).reshape(1, -1), n_results=n, where=where, include=include,
            )
        except ChromaError as exc:
            # Embedded store only: another process has stored frames but not yet
            # written the vector index to disk (the first moments of an `index` run).
            raise ScenegrepError(
                f"cannot search the index yet ({_first_line(exc)}); a running `scenegrep index` is writing its "
                "first frames: try again in a moment"
            ) from exc

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


def parse_frame_id(frame: str) -> tuple[str, float]:
    """(video id, time in seconds) from a frame id made by `frame_id`."""
    video_id, _, micros = frame.rpartition(":")
    return video_id, int(micros) / 1_000_000


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


def _pages(collection, include: list[str], where: dict | None = None) -> Iterable[dict]:
    offset = 0
    while True:
        page = collection.get(include=include, where=where, limit=GET_PAGE_SIZE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])  # no early stop on a short page: a server may cap pages below our limit



def model_to_use(client, requested: str | None, default: str) -> str:
    """The model `index` should load: the one asked for, else the one the
    store's only index was built with, else `default` for an empty store.

    Raises ModelMismatchError when the store holds several models and none
    was asked for: guessing would add videos to the wrong one."""
    if requested:
        return requested
    indexes = list_indexes(client)
    if len(indexes) > 1:
        names = ", ".join(index.model for index in indexes)
        raise ModelMismatchError(f"this index holds several models ({names}); choose one with --model")
    return indexes[0].model if indexes else default


def model_for_search(client, requested: str | None, where: str) -> str:
    """The model a search should load. Raises IndexNotFoundError when nothing
    is indexed, ModelMismatchError when several models are and none was chosen."""
    indexes = list_indexes(client)
    if not indexes:
        raise IndexNotFoundError(f"no videos are indexed at {where}; run `scenegrep index VIDEOS` first")
    if requested:
        return requested
    if len(indexes) > 1:
        names = ", ".join(index.model for index in indexes)
        raise ModelMismatchError(f"{where} holds indexes for several models ({names}); choose one with --model")
    return indexes[0].model
