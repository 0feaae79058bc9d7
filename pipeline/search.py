"""Search stage: a query vector → nearest frames (filtered) → clips.

`search` asks the store for the frames nearest to the query, restricted to
the chosen episodes and time window, and shapes them into clips
(`pipeline/clips.py`: cut-offs, gap rule, padding, clamping, near-duplicate
collapse, per-episode cap). Queries are built in `pipeline/query.py`.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Sequence

import numpy as np

from .clips import MERGE_GAP_INTERVALS, ClipRules, merge_hits, shape_clips  # noqa: F401  (merge_hits: v1 API)
from .errors import ScenegrepError
from .query import Query, load_image, query_vector  # noqa: F401  (load_image: v1 API)
from .records import Clip

CANDIDATE_FRAMES_PER_CLIP = 10
"""Frames fetched per requested clip: a clip usually spans a few frames, and
fetching more lets near-duplicate frames of one shot merge instead of pushing
other shots out of the top k."""

MIN_CANDIDATE_FRAMES = 100


@dataclass(frozen=True)
class Filters:
    """Which frames a search looks at: episodes by name or glob, and a time window in seconds."""

    episodes: tuple[str, ...] = ()  # names or globs (`episode_0[1-3]`, `s01*`); empty: all
    start: float | None = None  # only frames at or after this time
    end: float | None = None  # only frames at or before this time

    def check(self) -> None:
        """Raises ScenegrepError when the window is empty."""
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ScenegrepError(f"--from ({self.start:g} s) is after --to ({self.end:g} s); swap them")


def query_embedding(encoder, texts: Sequence[str] = (), images: Sequence[np.ndarray] = ()) -> np.ndarray:
    """One unit vector for texts and already-loaded images (their mean direction).

    The v1 library call; `query.query_vector` takes weights and negatives.
    Raises ScenegrepError for an empty query."""
    from .query import combine

    parts = []
    texts = [text for text in texts if text.strip()]
    if texts:
        parts.append(encoder.embed_texts(texts))
    if len(images):
        parts.append(encoder.embed_images(list(images)))
    if not parts:
        raise ScenegrepError("empty query: give search text, --image FILE, or both")
    vectors = np.concatenate(parts)
    return combine(vectors, [1.0] * len(vectors))


def resolve_episodes(patterns: Sequence[str], names: Sequence[str]) -> list[str]:
    """The indexed episode names matching any of `patterns` (shell globs, case-sensitive).

    Raises ScenegrepError when none matches."""
    matched = sorted({name for name in names for pattern in patterns if fnmatch.fnmatchcase(name, pattern)})
    if not matched:
        shown = ", ".join(sorted(set(names))[:8]) + (" …" if len(set(names)) > 8 else "")
        raise ScenegrepError(
            f"no indexed episode matches {' or '.join(map(repr, patterns))}; indexed: {shown or 'none'} "
            "(see `scenegrep info`)"
        )
    return matched


def search(
    store,
    embedding: np.ndarray,
    k: int = 10,
    episode: str | None = None,
    *,
    filters: Filters | None = None,
    rules: ClipRules = ClipRules(),
) -> list[Clip]:
    """The `k` best clips for a query vector in `store` (a `FrameStore`), best first.

    `episode` (one name or glob) is the v1 shorthand for `filters`. Clips carry
    the video's frame rate when the index recorded it.
    Raises ScenegrepError for an empty time window or episodes that match nothing.
    """
    filters = filters or Filters(episodes=(episode,) if episode else ())
    filters.check()
    videos = {entry["path"]: entry for entry in store.indexed_videos()}
    episodes = None
    if filters.episodes:
        episodes = resolve_episodes(filters.episodes, [entry["episode"] for entry in videos.values()])
    n = max(k * CANDIDATE_FRAMES_PER_CLIP, MIN_CANDIDATE_FRAMES)
    hits = store.query(
        embedding, n, episodes=episodes, start=filters.start, end=filters.end,
        with_vectors=rules.duplicate_similarity is not None,
    )
    durations = {path: _number(entry.get("duration")) for path, entry in videos.items()}
    clips = shape_clips(hits, store.info.every, rules, durations, (filters.start, filters.end))
    return [replace(clip, fps=_rate(videos.get(clip.path))) for clip in clips[:k]]


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _rate(entry: dict | None) -> Fraction | None:
    """The frame rate a registry entry recorded (`fps`, e.g. "30000/1001"), if any."""
    try:
        return Fraction(str(entry["fps"])) if entry and entry.get("fps") else None
    except (ValueError, ZeroDivisionError):
        return None
