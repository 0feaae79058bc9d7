"""The search engine a server keeps: the model loaded once, the index opened once."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from scenegrep.pipeline.clips import ClipRules
from scenegrep.pipeline.errors import DamagedIndexError
from scenegrep.pipeline.files import video_for
from scenegrep.pipeline.frame_matrix import stop_building
from scenegrep.pipeline.index_access import Location, open_index
from scenegrep.pipeline.lock import LOCK_FILE
from scenegrep.pipeline.query import Query, query_vector
from scenegrep.pipeline.records import Clip
from scenegrep.pipeline.registry import VideoEntry
from scenegrep.pipeline.search import Filters, search

TEXTS_KEPT = 1024
"""Text terms whose embeddings are kept (2 KB each at 512-d): the page searches
the same terms again whenever a filter changes or an export is asked for, and
the text tower is most of a warm search's time."""

REOPEN_AFTER_S = 2.0
"""Least seconds between two reopenings of an embedded index that another
process writes to (a running `scenegrep index`): Chroma's client keeps the
vector index it loaded, so without reopening new frames stay unseen (and a
half-seen index looks damaged); each reopening reloads it (seconds at 200k
frames on a busy machine), and results a moment old are fine."""

VIDEO_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
"""What a registry id looks like (`files.video_for` makes 16 hex digits); anything
else is refused before the registry is asked."""


@dataclass(frozen=True)
class Answer:
    """One search: its query as a line, the clips best first, how long it took,
    and the notes `scenegrep search` would print (videos whose clip edges were
    found by decoding them, indexed before shot changes were recorded)."""

    query: str
    clips: list[Clip]
    seconds: float
    notes: list[str] = field(default_factory=list)


class Engine:
    """The index at `location` and the CLIP model that searches it, for many requests.

    Raises IndexNotFoundError, ModelMismatchError, ScenegrepError (on construction)
    as `scenegrep search` would."""

    def __init__(self, location: Location, model: str | None = None, device: str = "auto", precision: str = "auto"):
        from scenegrep.pipeline.blas_threads import search_on_one_blas_thread
        from scenegrep.pipeline.encode import DEFAULT_MODEL, ClipEncoder

        search_on_one_blas_thread()
        self.location = location
        self._stack = contextlib.ExitStack()
        opened = self._stack.enter_context(open_index(location))
        self.encoder = ClipEncoder(opened.model_to_load(model, DEFAULT_MODEL), device=device, precision=precision)
        self.store = opened.for_reading(self.encoder.info, many_searches=True)
        self.texts = KeptTexts(self.encoder)
        self._using = threading.Lock()  # one request at a time uses the model and the store (which a reopening swaps)
        self._seen = self._written()
        self._opened_at = time.monotonic()

    def _written(self) -> tuple:
        """What changes when a scenegrep writer works on the embedded folder: the
        lock file, which each writer rewrites on entry, and whether one holds it
        now. (The database file itself is no sign: opening a client, a reader's
        too, writes to it.) () for a server, whose answers are never stale."""
        if not self.location.db:
            return ()
        try:
            entered = os.stat(os.path.join(self.location.db, LOCK_FILE)).st_mtime_ns
        except OSError:
            entered = None
        return entered, self.location.writer_running()

    def _reopen(self) -> None:
        """Open the index again, so what another process wrote since is seen."""
        from scenegrep.pipeline.connect import forget_client

        stop_building(self.store)  # a frame matrix built from the old store would read a closed client
        close = getattr(self.store.client, "close", None)
        if close:
            close()
        self._stack.close()
        forget_client(self.location.db)
        self._stack = contextlib.ExitStack()
        self.store = self._stack.enter_context(open_index(self.location)).for_reading(self.encoder.info, many_searches=True)
        self._seen = self._written()
        self._opened_at = time.monotonic()

    def _refresh(self) -> None:
        """Reopen while a writer works (every REOPEN_AFTER_S), and once after it ends."""
        if not self.location.db or time.monotonic() - self._opened_at < REOPEN_AFTER_S:
            return
        now = self._written()
        if now != self._seen or now[1]:
            self._reopen()

    def warm_up(self) -> None:
        """Build the text path now, so the first request is as fast as the rest."""
        self.encoder.embed_texts(["warm-up"])

    def close(self) -> None:
        stop_building(self.store)
        self._stack.close()

    def search(self, query: Query, pictures: dict[str, np.ndarray], k: int, filters: Filters, rules: ClipRules) -> Answer:
        """The `k` best clips, as `scenegrep search` finds them. Raises ScenegrepError."""
        began = time.perf_counter()
        with self._using:
            self._refresh()
            vector = query_vector(self.texts, query, pictures)
            notes: list[str] = []
            try:
                clips = search(self.store, vector, k=k, filters=filters, rules=rules, on_note=notes.append)
            except DamagedIndexError:
                if not self.location.db:
                    raise
                self._reopen()  # an index written since the last opening looks damaged to the old one
                notes.clear()
                clips = search(self.store, vector, k=k, filters=filters, rules=rules, on_note=notes.append)
        return Answer(query.describe(), clips, time.perf_counter() - began, notes)

    def video(self, video_id: str) -> VideoEntry | None:
        """The registered video with this id; None for an id that is malformed or not in the index."""
        if not VIDEO_ID.match(video_id or ""):
            return None
        with self._using:
            return self.store.indexed_video(video_id)

    def status(self) -> dict:
        """What `scenegrep info` shows, and whether an index run is writing now.

        A running index registers each video after its last frame, so frames
        stored beyond the registered ones are the video it is working on."""
        with self._using:
            self._refresh()
            info = self.store.info
            videos = self.store.indexed_videos()
            frames = self.store.frame_count()
        registered = sum(entry.frames for entry in videos)
        return {
            "db": self.location.where,
            "model": info.model,
            "dim": info.dim,
            "every": info.every,
            "videos": len(videos),
            "frames": frames,
            "indexing": self.location.writer_running(),
            "unregistered_frames": max(0, frames - registered),
            "per_video": [{"video_id": v.video_id, "episode": v.episode, "path": v.path, "frames": v.frames,
                           "duration": v.duration} for v in videos],
        }


class KeptTexts:
    """The encoder, with the embeddings of the last TEXTS_KEPT text terms kept."""

    def __init__(self, encoder, kept: int = TEXTS_KEPT):
        self.encoder = encoder
        self.kept = kept
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed_texts(self, texts) -> np.ndarray:
        missing = [text for text in dict.fromkeys(texts) if text not in self._vectors]
        if missing:
            for text, vector in zip(missing, self.encoder.embed_texts(missing)):
                self._vectors[text] = vector
        for text in texts:
            self._vectors.move_to_end(text)
        vectors = np.stack([self._vectors[text] for text in texts])
        while len(self._vectors) > self.kept:
            self._vectors.popitem(last=False)
        return vectors

    def embed_images(self, images) -> np.ndarray:
        return self.encoder.embed_images(images)


def video_id_of(clip: Clip) -> str:
    """A clip's video id: derived from its path, as indexing derived it."""
    return video_for(clip.path).video_id
