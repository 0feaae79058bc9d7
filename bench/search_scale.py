"""Search at archive scale: recall@10 against exact search, and query latency with and without filters.

Vectors are synthetic but shaped like an archive's CLIP frame embeddings: all
in one narrow cone (trained CLIP image embeddings have cosines of ~0.5 between
unrelated frames), episodes share a direction, shots are thousands of
distinct directions, and the frames of a shot are near-duplicates (cosine
~0.95). Queries are text-like: near one shot's direction but off the frame
cloud. Exact search is numpy over all vectors.

    python bench/search_scale.py                  # 10k and 50k frames (~3 min on 2 cores)
    python bench/search_scale.py --sizes 200000   # ~4 min to add 200k frames, then the queries

Each row is one kind of query, answered the way `scenegrep search` answers it
(`pipeline/nearest.py`: "index" is Chroma's query, with its `where` filter
when there is one; "exact" ranks from the vector cache; "overfetch" filters
a larger unfiltered top m); the baseline row is Chroma's
`where` filter for the same episode, which every filtered search used before.
Each query asks for 100 frames, as a search for 10 clips does.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000])
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()

    from scenegrep.pipeline.encode import ModelInfo
    from scenegrep.pipeline.nearest import nearest_frames, plan
    from scenegrep.pipeline.records import Video
    from scenegrep.pipeline.search import Filters, search
    from scenegrep.pipeline.index_access import Location, open_index

    n = 100  # frames a 10-clip search asks for
    print(f"{'frames':>8} {'query':44} {'p50 ms':>8} {'p95 ms':>8} {'recall@10':>10} {'vs baseline p95':>16}")
    for size in args.sizes:
        vectors, episode_of, shot_dirs = archive_vectors(size)
        queries = text_queries(shot_dirs, args.queries)
        episodes = int(episode_of.max()) + 1
        first_row = np.searchsorted(episode_of, np.arange(episodes))
        times = (np.arange(size) - first_row[episode_of]) * 2.0  # a frame every 2 s within its episode
        with tempfile.TemporaryDirectory() as db:
            model = ModelInfo(name="bench", fingerprint="bench", dim=DIM)
            with open_index(Location(db=db), write=True) as opened:
                writer = opened.for_writing(model, 2.0)
            start = time.perf_counter()
            store_archive(writer, vectors, episode_of, times)
            print(f"{size:8d} frames added in {time.perf_counter() - start:.1f} s", flush=True)
            with open_index(Location(db=db)) as opened:
                store = opened.for_reading(model)
            videos = store.indexed_videos()
            first_row_of = {f"ep{ep:04d}": int(first_row[ep]) for ep in range(episodes)}

            def rows_of(hits):
                return {first_row_of[hit.episode] + round(hit.t / 2.0) for hit in hits}

            def run(label, chosen_of=None, window=(None, None), answer=None):
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
                    truth = set(candidates[np.argsort(-(vectors[candidates] @ query))[:10]].tolist())
                    began = time.perf_counter()
                    if answer:
                        hits = answer(query, chosen, window)
                    else:
                        hits = nearest_frames(store, query, n, videos, chosen, *window, with_vectors=True)
                    latencies.append((time.perf_counter() - began) * 1000)
                    found += len(rows_of(hits[:10]) & truth)
                return float(np.percentile(latencies, 50)), float(np.percentile(latencies, 95)), found / (10 * len(queries))

            def episode_of_query(qi):
                best = int(np.argmax(vectors @ queries[qi]))
                return [videos[int(episode_of[best])]]

            nearest_frames(store, queries[0], n, videos)  # the first query loads the HNSW index
            chroma_where = lambda query, chosen, window: store.query(  # noqa: E731
                query, n, episodes=[entry.episode for entry in chosen], with_vectors=True)
            baseline = run("baseline", episode_of_query, answer=chroma_where)
            rows = [("no filter", run("plain"))]
            first_of = {entry.video_id: entry for qi in range(len(queries)) for entry in episode_of_query(qi)}
            cold_start = time.perf_counter()
            for entry in first_of.values():  # fills the vector cache for the episodes the next row uses
                store.frames_of([entry])
            cold_ms = (time.perf_counter() - cold_start) * 1000 / len(first_of)
            rows.append(("1 episode", run("episode", episode_of_query)))
            rows.append(("--from 1:00 --to 5:00", run("window", window=(60.0, 300.0))))
            rows.append(("--to 0:10", run("narrow", window=(None, 10.0))))
            ways = [plan(n, videos, chosen, *window).way
                    for chosen, window in ((None, (None, None)), (episode_of_query(0), (None, None)),
                                           (None, (60.0, 300.0)), (None, (None, 10.0)))]
            rows = [(f"{label} ({way})", result) for (label, result), way in zip(rows, ways)]
            rows.append(("baseline: 1 episode, Chroma where", baseline))
            for label, (p50, p95, recall) in rows:
                print(f"{size:8d} {label:44} {p50:8.1f} {p95:8.1f} {recall:10.3f} {baseline[1] / p95:15.1f}x", flush=True)
            print(f"{size:8d} first search of an episode (fills its vector cache from Chroma): {cold_ms:.1f} ms "
                  f"(mean of {len(first_of)} episodes)", flush=True)
            for label, filters_of in (("no filter", lambda qi: Filters()),
                                      ("1 episode", lambda qi: Filters((episode_of_query(qi)[0].episode,)))):
                latencies = []
                for qi, query in enumerate(queries):
                    began = time.perf_counter()
                    search(store, query, 10, filters=filters_of(qi))
                    latencies.append((time.perf_counter() - began) * 1000)
                print(f"{size:8d} search.search, 10 clips, {label} (registry read and clip shaping included): "
                      f"p50 {np.percentile(latencies, 50):.1f} ms, p95 {np.percentile(latencies, 95):.1f} ms", flush=True)


if __name__ == "__main__":
    main()
