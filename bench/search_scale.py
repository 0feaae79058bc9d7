"""Search at archive scale: recall@10 against exact search, and query latency with and without filters.

Vectors are synthetic but shaped like an archive's CLIP frame embeddings: all
in one narrow cone (trained CLIP image embeddings have cosines of ~0.5 between
unrelated frames), episodes share a direction, shots are thousands of
distinct directions, and the frames of a shot are near-duplicates (cosine
~0.95). Queries are text-like: near one shot's direction but off the frame
cloud. Exact search is numpy over all vectors.

    python bench/search_scale.py                  # 10k and 50k frames (~3 min on 2 cores)
    python bench/search_scale.py --sizes 200000   # ~4 min to add 200k frames, then the queries
    python bench/search_scale.py --sizes 200000,1000000   # ~15 min more to add a million frames

Each archive is built once and kept in --work ($TMPDIR/scenegrep-bench/search-scale-SIZE):
a rerun measures the queries again on the same index (`--build-only` only builds).

Each row is one kind of query, answered the way `scenegrep search` answers it
(`pipeline/nearest.py`: "index" is Chroma's query, with its `where` filter
when there is one; "exact" ranks from the vector cache; "overfetch" filters
a larger unfiltered top m; "matrix" ranks exactly in the frame matrix held in
memory); the baseline row is Chroma's `where` filter for the same episode,
which every filtered search used before. Each query asks for 100 frames, as a
search for 10 clips does. Whole searches (`search.search`, 10 clips) include
the registry read and clip shaping. A fresh process then measures its own RSS
(after the HNSW index loads, with the frame matrix, and after many searches:
no growth per search), and the archive's disk use is summed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

DIM = 512
FRAMES_PER_SHOT = 12  # a 24 s shot at N=2
SHOTS_PER_EPISODE = 55  # a 22-minute episode


def archive_vectors(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vectors, episode of each, shot direction of each shot) for `frames` frames, unit length, float32."""
    rng = np.random.default_rng(seed)
    shots = -(-frames // FRAMES_PER_SHOT)
    episodes = -(-shots // SHOTS_PER_EPISODE)
    cone = rng.standard_normal(DIM)
    cone /= np.linalg.norm(cone)
    episode_dirs = rng.standard_normal((episodes, DIM)) / np.sqrt(DIM)
    shot_episode = np.arange(shots) // SHOTS_PER_EPISODE
    shot_dirs = 0.7 * cone + 0.35 * episode_dirs[shot_episode] + 0.6 * rng.standard_normal((shots, DIM)) / np.sqrt(DIM)
    frame_shot = np.arange(frames) // FRAMES_PER_SHOT
    vectors = shot_dirs[frame_shot] + 0.2 * rng.standard_normal((frames, DIM)) / np.sqrt(DIM)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), shot_episode[frame_shot], shot_dirs


def store_archive(writer, vectors: np.ndarray, episode_of: np.ndarray, times: np.ndarray) -> None:
    """Store synthetic episodes through a writable FrameStore and register each, as `index` does."""
    from scenegrep.pipeline.records import Video

    for ep in range(int(episode_of.max()) + 1):
        rows = np.nonzero(episode_of == ep)[0]
        video = Video(path=f"/archive/ep{ep:04d}.mp4", episode=f"ep{ep:04d}", video_id=f"{ep:016x}")
        writer.add_frames(video, [float(t) for t in times[rows]], vectors[rows])
        writer.mark_indexed(video, len(rows), {"size": 1, "mtime_ns": 1, "hash": f"h{ep}",
                                               "duration": float(len(rows) * 2.0)})


def text_queries(shot_dirs: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = shot_dirs[rng.integers(0, len(shot_dirs), n)]
    queries = picks + 0.5 * rng.standard_normal(picks.shape) / np.sqrt(DIM)
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


BUILT_MARK = "scenegrep-bench-complete"
"""Written into a kept archive's folder after its last frame: an archive without it was cut short and is rebuilt."""


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def kept_archive(work: str, size: int, model, vectors, episode_of, times) -> str:
    """The folder of the index of the `size`-frame archive, built (and timed) when not kept from an earlier run."""
    from scenegrep.pipeline.index_access import Location, open_index

    db = os.path.join(work, f"search-scale-{size}")
    if os.path.exists(os.path.join(db, BUILT_MARK)):
        print(f"{size:8d} frames: kept archive {db}", flush=True)
        return db
    shutil.rmtree(db, ignore_errors=True)
    os.makedirs(db)
    with open_index(Location(db=db), write=True) as opened:
        writer = opened.for_writing(model, 2.0)
        start = time.perf_counter()
        store_archive(writer, vectors, episode_of, times)
    print(f"{size:8d} frames added in {time.perf_counter() - start:.1f} s (load average {os.getloadavg()[0]:.1f})",
          flush=True)
    open(os.path.join(db, BUILT_MARK), "w").close()
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, nargs="*", default=[[10_000, 50_000]],
                        help="archive sizes in frames, comma- or space-separated (default 10000,50000)")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"),
                        help="where built archives are kept for reruns")
    parser.add_argument("--build-only", action="store_true", help="build (or find) the archives, measure nothing")
    parser.add_argument("--rss-probe", metavar="DB", help=argparse.SUPPRESS)  # the memory measurement's own process
    args = parser.parse_args()
    args.sizes = [size for group in args.sizes for size in group]
    if args.rss_probe:
        rss_probe(args.rss_probe, args.queries)
        return

    from scenegrep.pipeline.encode import ModelInfo
    from scenegrep.pipeline.frame_matrix import forget_held_copies

    for size in args.sizes:
        vectors, episode_of, shot_dirs = archive_vectors(size)
        queries = text_queries(shot_dirs, args.queries)
        episodes = int(episode_of.max()) + 1
        first_row = np.searchsorted(episode_of, np.arange(episodes))
        times = (np.arange(size) - first_row[episode_of]) * 2.0  # a frame every 2 s within its episode
        model = ModelInfo(name="bench", fingerprint="bench", dim=DIM)
        db = kept_archive(args.work, size, model, vectors, episode_of, times)
        if args.build_only:
            continue
        measure(store_of(db, model), size, vectors, episode_of, times, queries, shot_dirs)
        forget_held_copies()  # this process's frame matrix goes before the probe's own is built
        del vectors
        probe = subprocess.run([sys.executable, __file__, "--rss-probe", db, "--queries", str(args.queries)],
                               capture_output=True, text=True, check=True)
        print(probe.stdout, end="", flush=True)
        print(f"{size:8d} disk: Chroma {du(db, skip='vectors') / 2**30:.2f} GB, vector copies "
              f"{du(os.path.join(db, 'vectors')) / 2**30:.2f} GB ({size} frames)", flush=True)


def store_of(db: str, model):
    from scenegrep.pipeline.index_access import Location, open_index

    with open_index(Location(db=db)) as opened:
        return opened.for_reading(model, many_searches=True)  # a server's store: the frame matrix pays


def du(folder: str, skip: str | None = None) -> int:
    total = 0
    for root, dirs, files in os.walk(folder):
        if skip and root == folder and skip in dirs:
            dirs.remove(skip)
        total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
    return total


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS")) / 1024


def percentiles(latencies) -> tuple[float, float]:
    return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95))


WINDOW_ROWS = (  # (label, episodes glob or None, window): the filtered rows
    ("--from 1:00 --to 5:00", None, (60.0, 300.0)),
    ("--to 0:10", None, (None, 10.0)),
    ("--from 20:00", None, (1200.0, None)),
    ("--episode 'ep00*' --to 1:00", "ep00*", (None, 60.0)),
)


def measure(store, size, vectors, episode_of, times, queries, shot_dirs) -> None:
    import fnmatch

    from scenegrep.pipeline.frame_matrix import frame_matrix
    from scenegrep.pipeline.nearest import nearest_frames, plan
    from scenegrep.pipeline.search import Filters, search

    n = 100  # frames a 10-clip search asks for
    print(f"{size:8d} frames, load average {os.getloadavg()[0]:.1f}", flush=True)
    videos = store.indexed_videos()
    episodes = len(videos)
    first_row = np.searchsorted(episode_of, np.arange(episodes))
    first_row_of = {f"ep{ep:04d}": int(first_row[ep]) for ep in range(episodes)}
    scores = [vectors @ query for query in queries]  # exact scores of every frame, once per query
    best_episode = [videos[int(episode_of[int(np.argmax(row))])] for row in scores]

    def rows_of(hits):
        return {first_row_of[hit.episode] + round(hit.t / 2.0) for hit in hits}

    def run(chosen_of=None, window=(None, None), answer=None):
        """p50/p95 ms and recall@10 against exact search under the same filter."""
        latencies, found = [], 0
        for qi, query in enumerate(queries):
            chosen = chosen_of(qi) if chosen_of else None
            allowed = np.ones(size, bool)
            if chosen is not None:
                allowed &= np.isin(episode_of, [int(entry.episode[2:]) for entry in chosen])
            if window[0] is not None:
                allowed &= times >= window[0]
            if window[1] is not None:
                allowed &= times <= window[1]
            candidates = np.nonzero(allowed)[0]
            truth = set(candidates[np.argsort(-scores[qi][candidates], kind="stable")[:10]].tolist())
            began = time.perf_counter()
            if answer:
                hits = answer(query, chosen, window)
            else:
                hits = nearest_frames(store, query, n, videos, chosen, *window, with_vectors=True)
            latencies.append((time.perf_counter() - began) * 1000)
            found += len(rows_of(hits[:10]) & truth)
        return (*percentiles(latencies), found / (10 * len(queries)))

    def show(label, result, way):
        p50, p95, recall = result
        print(f"{size:8d} {label + ' (' + way + ')':52} {p50:8.1f} {p95:8.1f} {recall:10.3f}", flush=True)

    print(f"{'frames':>8} {'query (way)':52} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10}")
    began = time.perf_counter()
    nearest_frames(store, queries[0], n, videos)  # the first query loads the HNSW index
    print(f"{size:8d} first query of the process (Chroma loads its HNSW index): "
          f"{(time.perf_counter() - began) * 1000:.0f} ms", flush=True)
    show("baseline: 1 episode, Chroma where",
         run(lambda qi: [best_episode[qi]], answer=lambda query, chosen, window: store.query(
             query, n, episodes=[entry.episode for entry in chosen], with_vectors=True)), "index")
    show("no filter, before the frame matrix is held", run(), plan(n, videos, None, None, None).way)

    latencies = []  # each query's best episode, never searched before: its file, written at index time, is read
    for entry in {entry.video_id: entry for entry in best_episode}.values():
        began = time.perf_counter()
        nearest_frames(store, queries[0], n, videos, [entry])
        latencies.append((time.perf_counter() - began) * 1000)
    print(f"{size:8d} first search of an episode (reads the copy written at index time): "
          f"mean {np.mean(latencies):.1f} ms, max {np.max(latencies):.1f} ms ({len(latencies)} episodes)", flush=True)
    show("1 episode", run(lambda qi: [best_episode[qi]]), plan(n, videos, [best_episode[0]], None, None).way)

    began = time.perf_counter()
    frame_matrix(store, videos)
    print(f"{size:8d} frame matrix built from the copies (once per process, first narrow window): "
          f"{time.perf_counter() - began:.1f} s", flush=True)
    show("no filter", run(), plan(n, videos, None, None, None).way)
    filters_of = {}
    for label, pattern, window in WINDOW_ROWS:
        chosen = None if pattern is None else [entry for entry in videos if fnmatch.fnmatchcase(entry.episode, pattern)]
        filters_of[label] = Filters(() if pattern is None else (pattern,), *window)
        show(label, run(lambda qi: chosen, window), plan(n, videos, chosen, *window).way)

    cases = [("no filter", lambda qi: Filters()), ("1 episode", lambda qi: Filters((best_episode[qi].episode,)))]
    cases += [(label, lambda qi, f=filters: f) for label, filters in filters_of.items()]
    for label, case in cases:
        latencies = []
        for qi, query in enumerate(queries):
            began = time.perf_counter()
            search(store, query, 10, filters=case(qi))
            latencies.append((time.perf_counter() - began) * 1000)
        p50, p95 = percentiles(latencies)
        print(f"{size:8d} search.search, 10 clips, {label + ' (registry and clip shaping included)':60} "
              f"p50 {p50:.1f} ms, p95 {p95:.1f} ms", flush=True)


def rss_probe(db: str, queries: int) -> None:
    """In a fresh process: RSS after the HNSW index loads, after the frame matrix, and after many more searches."""
    from scenegrep.pipeline.encode import ModelInfo
    from scenegrep.pipeline.frame_matrix import frame_matrix
    from scenegrep.pipeline.search import Filters, search

    store = store_of(db, ModelInfo(name="bench", fingerprint="bench", dim=DIM))
    videos = store.indexed_videos()
    size = sum(entry.frames for entry in videos)
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((queries, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kinds = [Filters(), Filters((videos[0].episode,)), Filters(end=10.0), Filters(start=1200.0),
             Filters(("ep00*",), end=60.0), Filters(start=60.0, end=300.0)]
    base = rss_mb()
    search(store, vectors[0], 10)
    loaded = rss_mb()
    frame_matrix(store, videos)
    held = rss_mb()
    for vector in vectors:  # one round of every kind, so every cache is filled
        for filters in kinds:
            search(store, vector, 10, filters=filters)
    warm = rss_mb()
    for _ in range(3):
        for vector in vectors:
            for filters in kinds:
                search(store, vector, 10, filters=filters)
    after = rss_mb()
    print(f"{size:8d} RSS of a search process: {base:.0f} MB at start, {loaded:.0f} MB after the first search "
          f"(HNSW index), {held:.0f} MB with the frame matrix, {warm:.0f} MB after {len(vectors) * len(kinds)} searches, "
          f"{after:.0f} MB after {3 * len(vectors) * len(kinds)} more", flush=True)

if __name__ == "__main__":
    main()
