"""Search stage: a text or image query → nearest frames → clips.

Neighbouring hits in one video merge into a clip: start at the first hit,
end one sampling interval after the last, scored by the best hit.
"""

from __future__ import annotations

import os
from itertools import groupby
from typing import Sequence

import numpy as np

from .errors import ScenegrepError
from .records import Clip, Hit

MERGE_GAP_INTERVALS = 1.5
"""Hits of one video at most this many sampling intervals apart join one clip.
Adjacent samples (one interval apart, a hair more with true frame times) merge;
a sample in between that did not match splits the clip."""

CANDIDATE_FRAMES_PER_CLIP = 10
"""Frames fetched per requested clip: a clip usually spans a few frames, and
fetching more lets near-duplicate frames of one shot merge instead of pushing
other shots out of the top k."""

MIN_CANDIDATE_FRAMES = 100


def load_image(path: str) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB. Raises ScenegrepError if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise ScenegrepError(f"query image {path}: no such file")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ScenegrepError(f"query image {path}: not a readable image ({exc.__class__.__name__}); use a JPEG or PNG") from exc


def query_embedding(encoder, texts: Sequence[str] = (), images: Sequence[np.ndarray] = ()) -> np.ndarray:
    """One unit vector for a query made of texts and/or images (their mean direction)."""
    parts = []
    texts = [text for text in texts if text.strip()]
    if texts:
        parts.append(encoder.embed_texts(texts))
    if len(images):
        parts.append(encoder.embed_images(list(images)))
    if not parts:
        raise ScenegrepError("empty query: give search text, --image FILE, or both")
    vector = np.concatenate(parts).mean(axis=0)
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def merge_hits(hits: Sequence[Hit], every: float, gap_intervals: float = MERGE_GAP_INTERVALS) -> list[Clip]:
    """Merge hits of the same video that are close in time into clips, best first."""
    clips: list[Clip] = []
    by_video = sorted(hits, key=lambda hit: (hit.path, hit.t))
    for _, group in groupby(by_video, key=lambda hit: hit.path):
        run: list[Hit] = []
        for hit in group:
            if run and hit.t - run[-1].t > every * gap_intervals + 1e-6:
                clips.append(_clip_of(run, every))
                run = []
            run.append(hit)
        clips.append(_clip_of(run, every))
    return sorted(clips, key=lambda clip: (-clip.score, clip.path, clip.start))


def _clip_of(run: list[Hit], every: float) -> Clip:
    first = run[0]
    return Clip(
        episode=first.episode,
        path=first.path,
        start=first.t,
        end=run[-1].t + every,
        score=max(hit.score for hit in run),
        hits=tuple(run),
    )


def search(store, embedding: np.ndarray, k: int = 10, episode: str | None = None) -> list[Clip]:
    """The `k` best clips for a query vector in `store` (a `FrameStore`)."""
    n = max(k * CANDIDATE_FRAMES_PER_CLIP, MIN_CANDIDATE_FRAMES)
    hits = store.query(embedding, n, episode=episode)
    return merge_hits(hits, store.info.every)[:k]
