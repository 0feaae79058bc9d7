"""Clip shaping (search stage): matching frames → the clips a person wants to watch.

In order:

1. **Cut-offs.** Hits below `min_score` (absolute) or more than `within`
   below the best hit (relative) are dropped. A flat threshold fails across
   queries because CLIP's score scale moves with the query; the relative one
   keeps "the few that stand out" whatever the scale.
2. **Gap rule.** Hits of one video at most `gap` seconds apart (default 1.5
   sampling intervals) join one clip: adjacent samples merge, a sample in
   between that did not match splits the clip. Neighbours whose scores
   differ by more than `score_jump` split too: a cut to another shot changes
   the score abruptly, so a clip ends where its shot does (on a small index
   every frame is a candidate, and without this a clip would span the whole
   video). A clip starts at its first hit, ends one interval after its last
   (the last hit's frame stands for that interval), and scores as its best hit.
   Videos sampled at irregular times (`--sampling keyframes`: samples can be
   0.4 s apart on an index whose interval is 2 s) follow their own samples
   instead of the interval: hits join when no stored sample lies between
   them (what the 1.5-interval gap means on a grid), and a clip ends at the
   stored sample after its last hit (one interval after it for the last
   sample). An explicit `gap` is seconds for every video.
3. **Padding and clamping.** (`search` snaps the returned clips' edges to
   shot changes first, `pipeline/snap.py`, and pads after.) `pad` seconds are added before and after; a clip
   never starts before 0 or ends after the video (nor leaves the searched
   time window). Clips of one video that now overlap merge.
4. **Near-duplicate collapse.** Animation holds drawings for seconds and
   reuses shots (openings, recaps, stock shots), so one image could fill the
   top 10. A clip whose best frame is nearly identical (cosine ≥
   `duplicate_similarity`) to the best frame of a better clip is folded into
   that clip's `duplicates` instead of taking a place of its own.
5. **Per-episode cap.** At most `per_episode` clips of one episode.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import groupby
from typing import Mapping, Sequence

import numpy as np

from .records import Clip, Hit

MERGE_GAP_INTERVALS = 1.5
"""Hits of one video at most this many sampling intervals apart join one clip.
Adjacent samples (one interval apart, a hair more with true frame times) merge;
a sample in between that did not match splits the clip."""

DUPLICATE_SIMILARITY = 0.97
"""Cosine similarity of two clips' best frames above which they show the same
shot. Re-encoded copies and held drawings of one shot score 0.98-1.0 with CLIP;
different shots of one scene rarely pass 0.95."""

SCORE_JUMP_OF_SPREAD = 0.25
"""The default `score_jump`, as a share of the query's spread (best hit score −
median candidate score). Scores live on different scales per model and query
(real CLIP text queries: 0.15-0.35; image queries and small models: up to 1),
so the split threshold scales with them. Within one shot CLIP scores move by a
few hundredths; across a cut to an unrelated shot by a large part of the spread."""

MIN_HITS_FOR_SPREAD = 10
"""Fewer candidate hits than this say nothing about a query's score scale (their
median may itself be a match), so the default score split stays off."""

TIME_EPSILON = 1e-6
"""Slack for float time comparisons, far below one frame at any frame rate."""


@dataclass(frozen=True)
class ClipRules:
    """How hits become clips (see the module docstring). Defaults: the v1 clips plus duplicate collapse."""

    gap: float | None = None  # seconds; None: MERGE_GAP_INTERVALS × the sampling interval
    pad: float = 0.0  # seconds added before and after each clip
    min_score: float | None = None  # absolute cut-off on hit scores
    within: float | None = None  # relative cut-off: keep hits scoring at least best − within
    per_episode: int | None = None  # at most this many clips per episode
    score_jump: float | None = None  # neighbours differing more split; None: SCORE_JUMP_OF_SPREAD × spread
    duplicate_similarity: float | None = DUPLICATE_SIMILARITY  # None keeps near-duplicates apart
    snap: bool = True  # move the returned clips' edges to shot changes (pipeline/snap.py), then pad


def cut_off(hits: Sequence[Hit], min_score: float | None = None, within: float | None = None) -> list[Hit]:
    """The hits that pass the absolute and the relative cut-off."""
    if not hits:
        return []
    floor = -np.inf
    if min_score is not None:
        floor = min_score
    if within is not None:
        floor = max(floor, max(hit.score for hit in hits) - within)
    return [hit for hit in hits if hit.score >= floor]


def merge_hits(
    hits: Sequence[Hit],
    every: float,
    gap: float | None = None,
    score_jump: float = np.inf,
    samples: Mapping[str, np.ndarray] | None = None,
) -> list[Clip]:
    """Merge hits of the same video at most `gap` seconds apart (default
    MERGE_GAP_INTERVALS × `every`) and at most `score_jump` apart in score into
    clips, best first. `samples` (path → stored sample times, ascending) names
    the videos sampled at irregular times; their default gap and clip ends
    follow those samples (see the module docstring)."""
    samples = samples or {}
    clips: list[Clip] = []
    by_video = sorted(hits, key=lambda hit: (hit.path, hit.t))
    for path, group in groupby(by_video, key=lambda hit: hit.path):
        times = samples.get(path)
        run: list[Hit] = []
        for hit in group:
            if run and (_apart(run[-1].t, hit.t, every, gap, times) or abs(hit.score - run[-1].score) > score_jump):
                clips.append(_clip_of(run, every, times))
                run = []
            run.append(hit)
        clips.append(_clip_of(run, every, times))
    return best_first(clips)


def _apart(earlier: float, later: float, every: float, gap: float | None, times: np.ndarray | None) -> bool:
    """Whether hits at these times of one video are too far apart to share a clip."""
    if gap is None and times is not None:
        between = np.searchsorted(times, later - TIME_EPSILON, "left") - np.searchsorted(times, earlier + TIME_EPSILON, "right")
        return int(between) > 0
    limit = every * MERGE_GAP_INTERVALS if gap is None else gap
    return later - earlier > limit + TIME_EPSILON


def _end_after(t: float, every: float, times: np.ndarray | None) -> float:
    """Until when the frame sampled at `t` stands for the video: the next stored
    sample (irregular sampling), else one interval later."""
    if times is not None:
        following = int(np.searchsorted(times, t + TIME_EPSILON, "right"))
        if following < len(times):
            return float(times[following])
    return t + every


def default_score_jump(hits: Sequence[Hit]) -> float:
    """SCORE_JUMP_OF_SPREAD × (best score − median score) of a query's hits
    (no split with fewer than MIN_HITS_FOR_SPREAD hits)."""
    if len(hits) < MIN_HITS_FOR_SPREAD:
        return np.inf
    scores = np.array([hit.score for hit in hits])
    return SCORE_JUMP_OF_SPREAD * float(scores.max() - np.median(scores))


def _clip_of(run: list[Hit], every: float, times: np.ndarray | None = None) -> Clip:
    first = run[0]
    return Clip(
        episode=first.episode,
        path=first.path,
        start=first.t,
        end=_end_after(run[-1].t, every, times),
        score=max(hit.score for hit in run),
        hits=tuple(run),
    )


def best_first(clips: Sequence[Clip]) -> list[Clip]:
    return sorted(clips, key=lambda clip: (-clip.score, clip.path, clip.start))


def pad_and_clamp(
    clips: Sequence[Clip],
    pad: float = 0.0,
    durations: Mapping[str, float | None] | None = None,
    window: tuple[float | None, float | None] = (None, None),
) -> list[Clip]:
    """Widen each clip by `pad` seconds on both sides, keep it inside its video
    (`durations`: path → seconds, None when unknown) and inside `window`
    (start, end; None: open), and merge clips of one video that then overlap.
    Returns clips best first."""
    durations = durations or {}
    low, high = window
    shaped = []
    for clip in clips:
        start, end = clip.start - pad, clip.end + pad
        lower = max(0.0, low or 0.0)
        upper = _min_known(durations.get(clip.path), high)
        start = max(start, lower)
        if upper is not None and upper > clip.start:  # a hit past the recorded end keeps its own end
            end = min(end, upper)
        shaped.append(replace(clip, start=start, end=max(end, start)))
    return _merge_overlapping(shaped)


def _min_known(*values: float | None) -> float | None:
    known = [value for value in values if value is not None]
    return min(known) if known else None


def _max_known(*values: float | None) -> float | None:
    known = [value for value in values if value is not None]
    return max(known) if known else None


def _merge_overlapping(clips: Sequence[Clip]) -> list[Clip]:
    merged: list[Clip] = []
    for _, group in groupby(sorted(clips, key=lambda c: (c.path, c.start)), key=lambda c: c.path):
        for clip in group:
            last = merged[-1] if merged and merged[-1].path == clip.path else None
            if last is not None and clip.start < last.end - TIME_EPSILON:  # overlapping, not just touching
                merged[-1] = replace(
                    last,
                    end=max(last.end, clip.end),
                    grid_start=_min_known(last.grid_start, clip.grid_start),
                    grid_end=_max_known(last.grid_end, clip.grid_end),
                    score=max(last.score, clip.score),
                    hits=tuple(sorted(last.hits + clip.hits, key=lambda hit: hit.t)),
                    duplicates=last.duplicates + clip.duplicates,
                )
            else:
                merged.append(clip)
    return best_first(merged)


def collapse_duplicates(clips: Sequence[Clip], similarity: float = DUPLICATE_SIMILARITY) -> list[Clip]:
    """Fold each clip whose best frame is at least `similarity` (cosine) like a
    better clip's best frame into that clip's `duplicates`. `clips` must be
    best first; clips without frame vectors are kept as they are."""
    rows = {index: clip.best.vector for index, clip in enumerate(clips) if clip.best.vector is not None}
    row_of = {index: row for row, index in enumerate(rows)}
    # Every pair compared in one matrix product instead of a Python loop over
    # the kept clips for each clip: a filtered search folds hundreds of clips.
    matrix = np.stack(list(rows.values())).astype(np.float32, copy=False) if rows else np.zeros((0, 0), np.float32)
    alike = matrix @ matrix.T >= similarity
    kept_rows = np.empty(len(rows), np.intp)
    owners: list[int] = []  # the kept clip of each of kept_rows
    kept: list[Clip] = []
    folded: list[list[Clip]] = []
    for index, clip in enumerate(clips):
        row = row_of.get(index)
        target = None
        if row is not None:
            matches = np.flatnonzero(alike[row, kept_rows[: len(owners)]])
            if len(matches):
                target = owners[matches[0]]
            else:
                kept_rows[len(owners)] = row
                owners.append(len(kept))
        if target is None:
            kept.append(clip)
            folded.append([])
        else:
            folded[target].append(clip)
    return [replace(clip, duplicates=clip.duplicates + tuple(more)) if more else clip
            for clip, more in zip(kept, folded)]


def cap_per_episode(clips: Sequence[Clip], limit: int) -> list[Clip]:
    """The first `limit` clips of each episode (each video file), order kept."""
    seen: dict[str, int] = {}
    capped = []
    for clip in clips:
        seen[clip.path] = seen.get(clip.path, 0) + 1
        if seen[clip.path] <= limit:
            capped.append(clip)
    return capped


def shape_clips(
    hits: Sequence[Hit],
    every: float,
    rules: ClipRules = ClipRules(),
    durations: Mapping[str, float | None] | None = None,
    window: tuple[float | None, float | None] = (None, None),
    samples: Mapping[str, np.ndarray] | None = None,
) -> list[Clip]:
    """Hits → clips, best first, by `rules` (the steps in the module docstring).
    `samples`: stored sample times (ascending) of the videos sampled at
    irregular times, by path; the others are on the `every` grid."""
    kept = cut_off(hits, rules.min_score, rules.within)
    jump = default_score_jump(hits) if rules.score_jump is None else rules.score_jump
    clips = merge_hits(kept, every, gap=rules.gap, score_jump=jump, samples=samples)
    clips = pad_and_clamp(clips, rules.pad, durations, window)
    if rules.duplicate_similarity is not None:
        clips = collapse_duplicates(clips, rules.duplicate_similarity)
    if rules.per_episode is not None:
        clips = cap_per_episode(clips, rules.per_episode)
    return clips
