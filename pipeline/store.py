"""Store stage: frame embeddings in Chroma, one collection per model.

Each model gets two collections: `sg-…` holds one record per sampled frame
(embedding + episode, path, time), `sgv-…` one record per fully indexed
video (its frame count and file signature). A video enters the registry only
after all its frames are written, so an interrupted run is visible as a video
missing from the registry and is simply indexed again.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable, Sequence
from urllib.parse import urlparse

import numpy as np

from .encode import ModelInfo
from .errors import IndexNotFoundError, ModelMismatchError, ScenegrepError
from .records import Hit, Video

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

GET_PAGE_SIZE = 5000
"""Records fetched per `get` when listing a whole collection: bounded memory per page."""


def default_db_path() -> str:
    """$SCENEGREP_DB, else $XDG_DATA_HOME/scenegrep (~/.local/share/scenegrep)."""
    if os.environ.get("SCENEGREP_DB"):
        return os.environ["SCENEGREP_DB"]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "scenegrep")


def open_client(db: str | None = None, url: str | None = None, create: bool = True):
    """An embedded Chroma at folder `db`, or a Chroma server at `url` (http://host:port).

    Raises IndexNotFoundError when `create` is False and the folder has no index.
    """
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if url:
        parsed = urlparse(url if "://" in url else f"http://{url}")
        try:
            client = chromadb.HttpClient(
                host=parsed.hostname or "localhost",
                port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                ssl=parsed.scheme == "https",
                settings=settings,
            )
            client.heartbeat()
        except Exception as exc:  # the client raises many kinds; all mean "not reachable"
            raise ScenegrepError(f"cannot reach the Chroma server at {url}: {exc}; is `chroma run` running there?") from exc
        return client
    db = db or default_db_path()
    if not create and not os.path.exists(os.path.join(db, "chroma.sqlite3")):
        raise IndexNotFoundError(f"no index at {db}; build one with `scenegrep index VIDEOS --db {db}`")
    try:
        os.makedirs(db, exist_ok=True)
        return chromadb.PersistentClient(path=db, settings=settings)
    except OSError as exc:
        raise ScenegrepError(f"cannot use {db} for the index: {exc.strerror or exc}; pass --db to choose another folder") from exc


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


def frame_id(video: Video, t: float) -> str:
    """Deterministic per (video, timestamp): indexing again overwrites, never duplicates."""
    return f"{video.video_id}:{round(t * 1_000_000)}"


class FrameStore:
    """The frames and video registry of one model in one Chroma store."""

    def __init__(self, client, info: IndexInfo):
        self.client = client
        self.info = info
        self.frames = client.get_collection(info.collection, embedding_function=None)
        self.videos = client.get_or_create_collection(
            VIDEOS_PREFIX + info.collection[len(FRAMES_PREFIX):], embedding_function=None
        )

    # -- opening -----------------------------------------------------------

    @classmethod
    def for_indexing(cls, client, model: ModelInfo, every: float) -> "FrameStore":
        """Open (or create) the model's collection. Raises ModelMismatchError when
        the index samples at another interval: mixing intervals would skew clips."""
        name = collection_name(model)
        existing = {index.collection: index for index in list_indexes(client)}
        if name in existing:
            index = existing[name]
            if abs(index.every - every) > 1e-9:
                raise ModelMismatchError(
                    f"this index samples every {index.every:g} s; index with --every {index.every:g}, "
                    "or use another --db for a different interval"
                )
            return cls(client, index)
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
                return cls(client, index)
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

    def mark_indexed(self, video: Video, frames: int, signature: dict) -> None:
        """Record that every frame of `video` is stored (the last step of indexing it)."""
        self.videos.upsert(
            ids=[video.video_id],
            embeddings=[[1.0]],
            metadatas=[{"episode": video.episode, "path": video.path, "frames": int(frames), **signature}],
        )

    def remove_video(self, video_id: str) -> None:
        """Drop a video's frames and registry entry."""
        self.videos.delete(ids=[video_id])
        self.frames.delete(where={"video_id": video_id})

    # -- reading -----------------------------------------------------------

    def indexed_video(self, video_id: str) -> dict | None:
        found = self.videos.get(ids=[video_id], include=["metadatas"])
        return found["metadatas"][0] if found["ids"] else None

    def indexed_videos(self) -> list[dict]:
        """Registry entries of fully indexed videos, sorted by path."""
        entries: list[dict] = []
        for page in _pages(self.videos, include=["metadatas"]):
            for video_id, meta in zip(page["ids"], page["metadatas"]):
                entries.append({"video_id": video_id, **meta})
        return sorted(entries, key=lambda entry: entry["path"])

    def frame_count(self) -> int:
        return self.frames.count()

    def query(self, embedding: np.ndarray, n: int, episode: str | None = None) -> list[Hit]:
        """The `n` frames nearest to `embedding` by cosine similarity, best first."""
        total = self.frames.count()
        if total == 0:
            return []
        result = self.frames.query(
            query_embeddings=np.asarray(embedding, np.float32).reshape(1, -1),
            n_results=min(n, total),
            where={"episode": episode} if episode else None,
            include=["metadatas", "distances"],
        )
        return [
            Hit(episode=meta["episode"], path=meta["path"], t=float(meta["t"]), score=1.0 - float(distance))
            for meta, distance in zip(result["metadatas"][0], result["distances"][0])
        ]


def _pages(collection, include: list[str]) -> Iterable[dict]:
    offset = 0
    while True:
        page = collection.get(include=include, limit=GET_PAGE_SIZE, offset=offset)
        if not page["ids"]:
            return
        yield page
        offset += len(page["ids"])



def model_to_use(client, requested: str | None, default: str) -> str:
    """The model `index` should load: the one asked for, else the one the
    store's only index was built with, else `default`."""
    if requested:
        return requested
    indexes = list_indexes(client)
    return indexes[0].model if len(indexes) == 1 else default


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
