"""Search at archive scale: HNSW recall@10 against exact search, and query latency with and without filters.

Vectors are synthetic but shaped like an archive's CLIP frame embeddings: all
in one narrow cone (trained CLIP image embeddings have cosines of ~0.5 between
unrelated frames), episodes share a direction, shots are thousands of
distinct directions, and the frames of a shot are near-duplicates (cosine
~0.95). Queries are text-like: near one shot's direction but off the frame
cloud. Exact search is numpy over all vectors.

    python bench/search_scale.py            # 10k and 50k frames (about 2-4 min on 2 busy cores)
    python bench/search_scale.py --full     # also 200k (about 10-15 min more)

For each size it compares the collection settings scenegrep creates
(store.HNSW_CONFIGURATION) with Chroma's defaults.
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


def text_queries(shot_dirs: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    picks = shot_dirs[rng.integers(0, len(shot_dirs), n)]
    queries = picks + 0.5 * rng.standard_normal(picks.shape) / np.sqrt(DIM)
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000])
    parser.add_argument("--full", action="store_true", help="add 200,000 frames")
    parser.add_argument("--queries", type=int, default=50)
    args = parser.parse_args()
    sizes = args.sizes + ([200_000] if args.full else [])

    from scenegrep.pipeline.encode import ModelInfo
    from scenegrep.pipeline.records import Video
    from scenegrep.pipeline.store import HNSW_CONFIGURATION, FrameStore, open_client

    configs = {"chroma default": {"space": "cosine"}, "scenegrep": HNSW_CONFIGURATION}
    print(f"{'frames':>8} {'settings':16} {'add s':>7} {'recall@10':>10} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'ep p50':>8} {'ep p95':>8} {'ep recall':>10} {'exact ms':>9}")
    for size in sizes:
        vectors, episode_of, shot_dirs = archive_vectors(size)
        queries = text_queries(shot_dirs, args.queries)
        start = time.perf_counter()
        exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
        exact_ms = (time.perf_counter() - start) / len(queries) * 1000
        for label, hnsw in configs.items():
            with tempfile.TemporaryDirectory() as db:
                client = open_client(db)
                model = ModelInfo(name=f"bench-{label}", fingerprint=label.replace(" ", "-"), dim=DIM)
                import scenegrep.pipeline.store as store_module

                saved = store_module.HNSW_CONFIGURATION
                store_module.HNSW_CONFIGURATION = hnsw
                try:
                    store = FrameStore.for_indexing(client, model, 2.0)
                finally:
                    store_module.HNSW_CONFIGURATION = saved
                start = time.perf_counter()
                limit = 5000
                episodes = episode_of.max() + 1
                for ep in range(episodes):
                    rows = np.nonzero(episode_of == ep)[0]
                    video = Video(path=f"/archive/ep{ep:04d}.mp4", episode=f"ep{ep:04d}", video_id=f"{ep:016x}")
                    for i in range(0, len(rows), limit):
                        chunk = rows[i : i + limit]
                        store.add_frames(video, [float(r) for r in chunk], vectors[chunk])
                add_s = time.perf_counter() - start
                # frame t was set to the row number, so hits map back to rows
                latencies, hits_ok = [], 0
                ep_latencies, ep_ok, ep_total = [], 0, 0
                store.query(queries[0], 10)  # first query loads the index
                for qi, query in enumerate(queries):
                    start = time.perf_counter()
                    hits = store.query(query, 10)
                    latencies.append((time.perf_counter() - start) * 1000)
                    hits_ok += len({int(h.t) for h in hits} & set(exact[qi].tolist()))
                    ep = int(episode_of[exact[qi][0]])
                    start = time.perf_counter()
                    ep_hits = store.query(query, 10, episode=f"ep{ep:04d}")
                    ep_latencies.append((time.perf_counter() - start) * 1000)
                    mask = np.nonzero(episode_of == ep)[0]
                    truth = set(mask[np.argsort(-(vectors[mask] @ query))[:10]].tolist())
                    ep_ok += len({int(h.t) for h in ep_hits} & truth)
                    ep_total += len(truth)
                p = lambda xs, q: float(np.percentile(xs, q))
                print(f"{size:8d} {label:16} {add_s:7.1f} {hits_ok / (10 * len(queries)):10.3f} {p(latencies, 50):8.1f} "
                      f"{p(latencies, 95):8.1f} {p(ep_latencies, 50):8.1f} {p(ep_latencies, 95):8.1f} "
                      f"{ep_ok / ep_total:10.3f} {exact_ms:9.2f}", flush=True)


if __name__ == "__main__":
    main()
