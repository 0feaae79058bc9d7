"""Search stage: a query vector → nearest frames (filtered) → clips.

`search` asks the store for the frames nearest to the query, restricted to
the chosen episodes and time window, and shapes them into clips
(`pipeline/clips.py`: cut-offs, gap rule, padding, clamping, near-duplicate
collapse, per-episode cap); the returned clips' edges then move to the shot
changes around them (`pipeline/snap.py`) before padding. Queries are built in `pipeline/query.py`.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np

from .clips import ClipRules, pad_and_clamp, shape_clips
from .errors import ScenegrepError
from .nearest import nearest_frames
from .records import Clip
from .present.names import first_few, visible
from .registry import IRREGULAR_SAMPLING, VideoEntry
from .snap import snap_all

CANDIDATE_FRAMES_PER_CLIP = 10
"""Frames fetched per requested clip: a clip usually spans a few frames, and
fetching more lets near-duplicate frames of one shot merge instead of pushing
other shots out of the top k."""

MIN_CANDIDATE_FRAMES = 100
"""Frames fetched at least, whatever k: the score split and the cut-offs judge a
query's scale from its candidates, which a handful of frames cannot show."""


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


def resolve_episodes(patterns: Sequence[str], names: Sequence[str]) -> list[str]:
    """The indexed episode names matching any of `patterns` (shell globs, case-sensitive).

    Raises ScenegrepError when none matches."""
    globs = [re.compile(fnmatch.translate(pattern)).match for pattern in patterns]  # as fnmatchcase, compiled once
    matched = sorted({name for name in names if any(glob(name) for glob in globs)})
    if not matched:
        shown = first_few(sorted(set(names)), 8)
        raise ScenegrepError(
            f"no indexed episode matches {' or '.join(map(repr, patterns))}; indexed: {shown or 'none'} "
            "(see `scenegrep info`)"
        )
    return matched


def search(
    store,
    embedding: np.ndarray,
    k: int = 10,
    *,
    filters: Filters = Filters(),
    rules: ClipRules = ClipRules(),
    on_note: Callable[[str], None] | None = None,
) -> list[Clip]:
    """The `k` best clips for a query vector in `store` (a `FrameStore`), best first.

    Clips carry the video's frame rate when the index recorded it. Their edges
    snap to the shot changes recorded while indexing (`rules.snap`); videos
    indexed without them are decoded around each clip instead, and `on_note`
    gets one line saying so.
    Raises ScenegrepError for an empty time window or episodes that match nothing.
    """
    filters.check()
    entries = store.indexed_videos()
    videos = {entry.path: entry for entry in entries}
    chosen = None
    if filters.episodes:
        episodes = set(resolve_episodes(filters.episodes, [entry.episode for entry in entries]))
        chosen = [entry for entry in entries if entry.episode in episodes]
    n = max(k * CANDIDATE_FRAMES_PER_CLIP, MIN_CANDIDATE_FRAMES)
    hits = nearest_frames(
        store, embedding, n, entries, chosen, filters.start, filters.end,
        with_vectors=rules.duplicate_similarity is not None,
    )
    durations = {path: entry.duration for path, entry in videos.items()}
    samples = irregular_samples(store, [videos[path] for path in {hit.path for hit in hits} if path in videos])
    window = (filters.start, filters.end)
    if rules.snap:  # edges move to shot changes first, padding after
        shaped = shape_clips(hits, store.info.every, replace(rules, pad=0.0), durations, window, samples)
        clips, decoded = _snapped_and_padded(store, shaped, k, videos, samples, rules.pad, durations, window)
        damaged = [path for path in decoded if path in videos and videos[path].cuts_damaged]
        never_recorded = [path for path in decoded if path not in damaged]
        if never_recorded and on_note is not None:
            on_note(unrecorded_note(never_recorded))
        if damaged and on_note is not None:
            on_note(damaged_cuts_note(damaged))
    else:
        clips = shape_clips(hits, store.info.every, rules, durations, window, samples)
    return [replace(clip, fps=videos[clip.path].rate if clip.path in videos else None) for clip in clips[:k]]


def _snapped_and_padded(store, shaped: list[Clip], k: int, videos: dict[str, VideoEntry],
                        samples: dict[str, np.ndarray], pad: float, durations: dict[str, float | None],
                        window) -> tuple[list[Clip], list[str]]:
    """The best `k` of the `shaped` clips (best first) snapped to shot changes, then padded:
    padded clips of a video that overlap merge, so more are snapped until `k` remain or none
    is left. Returns them and the paths of the videos decoded to snap them."""
    recorded = {path: entry.cuts for path, entry in videos.items() if entry.cuts is not None}
    snapped: list[Clip] = []
    decoded: set[str] = set()
    clips: list[Clip] = []
    taken = 0
    while taken < len(shaped) and len(clips) < k:
        batch = shaped[taken: taken + k - len(clips)]
        taken += len(batch)
        unrecorded = [videos[path] for path in {clip.path for clip in batch} - set(recorded) - set(samples)
                      if path in videos]
        # Decoding looks at the frames from sample to sample, as the recorder does: their stored times
        samples = {**samples, **sample_times(store, unrecorded)}
        more, paths = snap_all(batch, store.info.every, recorded, samples)
        snapped += more
        decoded.update(paths)
        clips = pad_and_clamp(snapped, pad, durations, window)
    return clips[:k], sorted(decoded)


def unrecorded_note(paths: Sequence[str]) -> str:
    """The line telling that clip edges of these videos were found by decoding them now."""
    count = f"{len(paths)} video{'s' if len(paths) != 1 else ''}"
    return (f"{count} in these results {'were' if len(paths) != 1 else 'was'} indexed without recorded shot "
            "changes (an older scenegrep, or --sampling keyframes): their clip edges were found by decoding them "
            "now, which is slower; index them again into a new index to record them, or pass --no-snap")


def damaged_cuts_note(paths: Sequence[str]) -> str:
    """The line telling that the recorded shot changes of these videos are damaged, so they were decoded."""
    shown = first_few([visible(path) for path in paths])
    return (f"the shot changes stored for {len(paths)} video{'s' if len(paths) != 1 else ''} in these results are "
            f"damaged ({shown}): their clip edges were found by decoding them now; `scenegrep doctor` lists every "
            "such video; index them again into a new index")


def irregular_samples(store, entries: Sequence[VideoEntry]) -> dict[str, np.ndarray]:
    """Stored sample times (ascending) of those registered `entries` whose
    samples are not on the interval grid (indexed with `--sampling keyframes`),
    by path. Entries written before the sampling was recorded are grid videos."""
    return sample_times(store, [entry for entry in entries if entry.sampling == IRREGULAR_SAMPLING])


def sample_times(store, entries: Sequence[VideoEntry]) -> dict[str, np.ndarray]:
    """Stored sample times (ascending) of registered `entries`, by path.
    Reads the local vector cache (a Chroma fetch the first time)."""
    if not entries:
        return {}
    found = store.frames_of(entries)
    return {entry.path: found[entry.video_id][0] for entry in entries if entry.video_id in found}
