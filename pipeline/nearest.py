"""The frames nearest to a query vector, within chosen videos and a time window, fast at any size.

Chroma applies a `where` filter by scanning metadata for the whole
collection: at 200k frames an episode filter costs ~60-150 ms and a time
window ~140-700 ms, against ~3-15 ms unfiltered (bench/search_scale.py). So
a filtered search picks the cheapest way that still returns the filtered
top n:

1. **exact**: when the chosen videos hold few frames (a handful of
   episodes), rank all of their frames in numpy from the local vector cache
   (`pipeline/vector_cache.py`; written at index time, else filled from
   Chroma on first use): the true filtered top n.
2. **over-fetch**: otherwise, when the filter keeps a good share of the
   frames (a time window, many episodes), ask the unfiltered index for the
   best m ≈ 2·n·total/kept frames and keep those that pass; the best n
   passing frames among the best m overall are the best n passing frames
   overall, as long as at least n passed (and as far as the HNSW index
   found the true best m: recall@10 0.97-1.0 at 200k, bench/search_scale.py).
   An unfiltered search is the same with nothing to filter: at least
   `CANDIDATES_FOR_RECALL` candidates, for recall. The frames next in time to
   the best candidates (the rest of their shots, near-duplicates the graph
   search may not reach) are then scored exactly from the local copies this
   process has: at a million frames recall@10 rose from 0.985 to 1.000 on
   frame-like queries (and is 0.967 on bench/search_scale.py's text-like ones).
3. **matrix**: a filter too narrow to over-fetch for that still keeps few
   frames (`--to 0:10` over every video: 0.9 % of the frames): rank exactly
   the frames it keeps in the matrix of every registered frame held in memory
   (`pipeline/frame_matrix.py`, built from the vector cache in the background
   by a process that searches many times, `scenegrep serve`, the first time
   a search needs it): a one-off search would build it for one query.
4. **index**: Chroma's own query with its `where` filter: such narrow windows
   in a one-off search (`scenegrep search`) or while the matrix is being
   built, and filters that keep too many
   frames for the matrix and too few for over-fetching (more than 100k kept
   frames that are under 10 % of the archive: an archive over a million frames).

Unfiltered searches also find the frames of a video whose indexing has not
finished (Chroma's metadata names them; the registry does not yet), so a
search during a long `index` finds what is stored so far.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .frame_matrix import local_copies, ready_frame_matrix, remember
from .records import Hit
from .registry import VideoEntry

EXACT_MAX_FRAMES = 50_000
"""Rank exactly when the chosen videos hold at most this many frames: 50k×512
float32 is 100 MB and a few ms of numpy; beyond that the index is faster.
Videos not cached yet cost one Chroma fetch first (~0.1 s per 660-frame
episode at 200k frames), once."""

CANDIDATES_FOR_RECALL = 400
"""Frames asked of the HNSW index at least, whatever n: the index searches
with a beam as wide as the request. On one store of 200k archive-shaped
vectors recall@10 against exact search was 0.966 with a beam of 200 (the
collection's ef_search) and 0.997 with 400, for 3.5 → 6 ms; freshly built
stores in bench/search_scale.py gave 0.932 at 200 and 0.970-0.978 at 400
(each build's graph differs)."""

NEIGHBOURS_OF = 30
"""Over-fetched candidates (the best first) whose neighbours in time are scored
exactly from the local vector copies, when this process has them."""

NEIGHBOUR_ROWS = 8
"""Frames on each side of a candidate scored exactly: 16 s at N=2, most of a
shot, whose frames are near-duplicates the HNSW graph may leave unvisited."""

OVERFETCH_FACTOR = 2.0
"""How many more candidates than the filter's expected share: the share is an
estimate (time windows assume frames spread evenly over each video)."""

MATRIX_MAX_FRAMES = 100_000
"""Rank exactly in the frame matrix when the filter keeps (by the registry's
estimate) at most this many frames and over-fetching would need more than
OVERFETCH_MAX: gathering and scoring a frame took ~2.6 µs on 2 cores at load 6,
so 100k frames stay under Chroma's `where` (~290 ms at a million frames on a
quiet machine); with OVERFETCH_MAX no filter falls between the two below
1.25 million frames."""

OVERFETCH_MAX = 2500
"""The most candidates worth asking the unfiltered index for. At 200k frames
on 2 shared cores (load ~6) asking for 1,000 / 2,000 / 4,000 took 14 / 21 / 77
ms at the median: the graph search grows faster than linearly past ~2,000.
2,500 reaches a window keeping 8 % of the frames (`--from 20:00` in 22-minute
episodes: 9 %), cheaper than ranking its 90k frames in the frame matrix
(~2.6 µs a frame at that load, ~235 ms) or Chroma's `where` (~290 ms)."""


@dataclass(frozen=True)
class Plan:
    """How a search finds its frames (see the module docstring)."""

    way: str  # "exact", "overfetch" (also unfiltered searches), "matrix" or "index" (Chroma's `where` filter)
    wanted: int = 0  # candidates asked of the unfiltered index ("overfetch")


def plan(n: int, videos: Sequence[VideoEntry], chosen: Sequence[VideoEntry] | None, start: float | None,
         end: float | None) -> Plan:
    """The cheapest way to the best `n` frames of the `chosen` registered
    videos (None: no episode filter) of `videos`, within [start, end], when the
    frame matrix is held ("matrix": "index" without it). Reads only the
    registry: counting a collection costs Chroma ~20 ms at 200k frames."""
    if chosen is None and start is None and end is None:
        return Plan("overfetch", max(n, CANDIDATES_FOR_RECALL))
    frames = _frame_counts(videos if chosen is None else chosen)
    if frames.sum() <= EXACT_MAX_FRAMES:
        return Plan("exact")
    kept = float(frames @ _shares(videos if chosen is None else chosen, start, end))
    registered = int(frames.sum() if chosen is None else _frame_counts(videos).sum())
    wanted = max(math.ceil(n * registered / max(kept, 1.0) * OVERFETCH_FACTOR), CANDIDATES_FOR_RECALL)
    if wanted <= OVERFETCH_MAX:
        return Plan("overfetch", wanted)
    return Plan("matrix") if kept <= MATRIX_MAX_FRAMES else Plan("index")


def nearest_frames(
    store,
    embedding: np.ndarray,
    n: int,
    videos: Sequence[VideoEntry],
    chosen: Sequence[VideoEntry] | None = None,
    start: float | None = None,
    end: float | None = None,
    with_vectors: bool = False,
) -> list[Hit]:
    """The `n` frames of `store` (a FrameStore) nearest to `embedding`, best
    first, among the registered `videos` (registry entries), or only the
    `chosen` ones (None: no episode filter), at times `start` ≤ t ≤ `end`
    (None: no limit). `with_vectors` fills each Hit's `vector`.

    Only an unfiltered search also returns frames of unregistered videos (one
    being indexed); a filtered one looks at registered videos only, whichever
    way it takes."""
    unfiltered = chosen is None and start is None and end is None
    how = plan(n, videos, chosen, start, end)
    chosen = list(videos if chosen is None else chosen)
    if n <= 0 or (not unfiltered and not chosen):
        return []
    if how.way == "exact":
        return _exact(store, embedding, n, chosen, start, end, with_vectors)
    if how.way == "matrix":
        matrix = ready_frame_matrix(store, videos)
        if matrix is not None:
            return _from_matrix(matrix, embedding, n, videos, chosen, start, end, with_vectors)
        how = Plan("index")
    if how.way == "overfetch":
        registered = int(_frame_counts(videos).sum())
        hits = _overfetched(store, embedding, n, how.wanted, chosen, start, end, with_vectors, unfiltered, registered)
        if hits is not None:
            return hits
    return _filtered_by_chroma(store, embedding, n, chosen, len(chosen) < len(videos), start, end, with_vectors)


def _filtered_by_chroma(store, embedding, n, chosen, by_episode, start, end, with_vectors) -> list[Hit]:
    """A filter too narrow to over-fetch for, or over-fetching came up short:
    Chroma's filter answers. Frames of unregistered videos (one being indexed,
    sharing an episode name or window) pass that filter and are dropped here,
    so Chroma is asked for more until `n` registered frames are found or the
    filter has no more to give."""
    episodes = sorted({entry.episode for entry in chosen}) if by_episode else None
    paths = {entry.path for entry in chosen}
    asked = n
    while True:
        hits = store.query(embedding, asked, episodes=episodes, start=start, end=end, with_vectors=with_vectors)
        kept = [hit for hit in hits if hit.path in paths]
        if len(kept) >= n or len(hits) < asked:
            return kept[:n]
        asked *= 2


def _exact(store, embedding, n, chosen, start, end, with_vectors) -> list[Hit]:
    frames = local_copies(store, chosen)
    missing = [entry for entry in chosen if entry.video_id not in frames]
    fetched = store.frames_of(missing)  # from Chroma, saved as files for next time
    for entry in missing:
        if entry.video_id in fetched:
            frames[entry.video_id] = fetched[entry.video_id]
            remember(store, entry, *fetched[entry.video_id])
    query = np.asarray(embedding, np.float32)
    candidates = []
    for entry in chosen:
        times, vectors = frames[entry.video_id]
        first = 0 if start is None else int(np.searchsorted(times, start, side="left"))
        last = len(times) if end is None else int(np.searchsorted(times, end, side="right"))
        if first < last:
            scores = vectors[first:last] @ query
            candidates.append((entry, times[first:last], vectors[first:last], scores))
    if not candidates:
        return []
    scores = np.concatenate([c[3] for c in candidates])
    owner = np.concatenate([np.full(len(c[3]), i) for i, c in enumerate(candidates)])
    row = np.concatenate([np.arange(len(c[3])) for c in candidates])
    best = np.argsort(-scores, kind="stable")[:n]
    hits = []
    for index in best:
        entry, times, vectors, _ = candidates[owner[index]]
        vector = vectors[row[index]] if with_vectors else None
        hits.append(Hit(entry.episode, entry.path, float(times[row[index]]), float(scores[index]), vector))
    return hits


def _from_matrix(matrix, embedding, n, videos, chosen, start, end, with_vectors) -> list[Hit]:
    """The exact filtered top n, ranked in the `matrix` of every registered frame."""
    keep = matrix.kept(None if len(chosen) == len(videos) else chosen, start, end)
    rows, scores = matrix.scores(keep, np.asarray(embedding, np.float32))
    if not len(rows):
        return []
    best = _top(scores, n)
    owners = matrix.owner_of(rows[best])
    return [Hit(matrix.entries[owner].episode, matrix.entries[owner].path, float(matrix.times[rows[index]]),
                float(scores[index]), matrix.vectors[rows[index]].copy() if with_vectors else None)
            for index, owner in zip(best, owners)]


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` highest `scores`, best first (ties: lower index first, as a stable sort)."""
    if len(scores) > n:
        part = np.argpartition(-scores, n - 1)[:n]
        threshold = scores[part].min()
        part = np.flatnonzero(scores >= threshold)  # every tie at the threshold, so order is decided below
    else:
        part = np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")][:n]


def _overfetched(store, embedding, n, wanted, chosen, start, end, with_vectors, everything=False,
                 registered=0) -> list[Hit] | None:
    """The best n passing frames among the best `wanted` overall; None when
    fewer than n passed and frames were left unseen (over-fetching fell short).
    With `everything`, frames of unregistered videos pass too (a video being
    indexed: its names come from Chroma's metadata). Raises DamagedIndexError
    when the vector index answers with far fewer frames than the `registered`
    videos hold (a lost segment file: Chroma answers from what is left)."""
    by_id = {entry.video_id: entry for entry in chosen}
    candidates = store.nearest(embedding, wanted, stored=registered)
    asked = len(candidates)
    near = dict.fromkeys(video_id for video_id, _, _ in candidates[:NEIGHBOURS_OF])
    local = local_copies(store, [by_id[video_id] for video_id in near if video_id in by_id])
    candidates = _with_neighbours(embedding, candidates, local)
    passing = [(video_id, t, score) for video_id, t, score in candidates
               if (everything or video_id in by_id) and (start is None or t >= start) and (end is None or t <= end)]
    if len(passing) < n and asked == wanted:  # frames were left unseen
        return None
    passing = passing[:n]
    unnamed = {(video_id, t) for video_id, t, _ in passing if video_id not in by_id}
    if with_vectors:  # held copies (the frame matrix, recent videos) spare asking Chroma for the vectors
        held = [by_id[video_id] for video_id in dict.fromkeys(video_id for video_id, _, _ in passing)
                if video_id in by_id and video_id not in local]
        local = {**local, **local_copies(store, held, files=False)}
    known = _local_vectors(passing, local) if with_vectors else {}
    records = store.frame_records([(video_id, t) for video_id, t, _ in passing
                                   if (with_vectors and (video_id, t) not in known) or (video_id, t) in unnamed],
                                  vectors=with_vectors, metadata=bool(unnamed))
    hits = []
    for video_id, t, score in passing:
        meta, vector = records.get((video_id, t), (None, known.get((video_id, t))))
        entry = by_id.get(video_id)
        if entry is not None:
            hits.append(Hit(entry.episode, entry.path, t, score, vector))
        elif meta:  # None only for a frame deleted since the query: skip it
            hits.append(Hit(meta["episode"], meta["path"], t, score, vector))
    return hits


def _with_neighbours(embedding, candidates, local) -> list[tuple[str, float, float]]:
    """`candidates` (video id, t, score) and the frames within NEIGHBOUR_ROWS of
    each of the first NEIGHBOURS_OF in its video, scored exactly, best first.

    The frames an approximate index misses are mostly near-duplicates of frames
    it found: the rest of the same shot, next in time."""
    if not local:
        return candidates
    query = np.asarray(embedding, np.float32)
    seen = {(video_id, t) for video_id, t, _ in candidates}
    extra = []
    for video_id, t, _ in candidates[:NEIGHBOURS_OF]:
        if video_id not in local:
            continue
        times, vectors = local[video_id]
        at = int(np.searchsorted(times, t))
        first, last = max(0, at - NEIGHBOUR_ROWS), min(len(times), at + NEIGHBOUR_ROWS + 1)
        scores = vectors[first:last] @ query
        for row, score in zip(range(first, last), scores.tolist()):
            key = (video_id, float(times[row]))
            if key not in seen:
                seen.add(key)
                extra.append((video_id, key[1], score))
    if not extra:
        return candidates
    return sorted(candidates + extra, key=lambda candidate: -candidate[2])


def _local_vectors(passing, local) -> dict[tuple[str, float], np.ndarray]:
    """The vectors of the `passing` frames found in the `local` copies."""
    found = {}
    for video_id, t, _ in passing:
        if video_id in local:
            times, vectors = local[video_id]
            row = int(np.searchsorted(times, t))
            if row < len(times) and times[row] == t:
                found[(video_id, t)] = vectors[row].copy()
    return found


def _frame_counts(entries: Sequence[VideoEntry]) -> np.ndarray:
    # arrays, not sums over entries: a million-frame archive has ~1,500 videos, planned at every search
    return np.fromiter((entry.frames for entry in entries), np.float64, len(entries))


def _shares(entries: Sequence[VideoEntry], start: float | None, end: float | None) -> np.ndarray:
    """The share of each video's frames inside [start, end], assuming they are
    spread evenly; 1 for a video of unknown length (over-fetching checks the result)."""
    if start is None and end is None:
        return np.ones(len(entries))
    durations = np.fromiter((np.nan if entry.duration is None else entry.duration for entry in entries),
                            np.float64, len(entries))
    known = durations > 0  # (NaN compares False)
    lo = max(0.0, start or 0.0)
    hi = durations if end is None else np.minimum(durations, end)
    shares = np.ones(len(entries))
    shares[known] = np.maximum(0.0, hi[known] - lo) / durations[known]
    return shares
