"""Ray's overhead: `scenegrep index --workers W` against `scenegrep index --ray` on the same machine.

    python bench/ray_overhead.py --workers 1,2 --videos 4 --seconds 120 --height 360

For each W, a fresh index is built twice from the same synthetic archive
(bench/index_speed.make_video: H.264, shot changes, 10 s GOPs), each run a
whole `scenegrep index` process timed from outside (imports, model loading,
Ray's connection and actors included, as a user waits for them):

  plain     `--workers W`: W decoding processes (W=1: decoding in the indexing
            process's threads) and the model in the indexing process
  ray       `--ray ADDRESS` on a one-node Ray cluster started on 127.0.0.1 with
            W + 1 CPUs: W decoding slots and one CPU encoding actor
            (the cluster's own start is timed apart: it happens once per cluster)

and a run of each over one 2 s video gives its fixed cost per run (imports and
model loading; for Ray also connecting, checking files and starting the actor). Columns: wall seconds, video-s/s, and
the overhead of ray over plain, whole and without the fixed cost. The model is
a ViT-B/32-sized CLIP with random weights (`--model` for another).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

from index_speed import make_video, vit_b32  # noqa: E402
from ray_cluster import RayCluster  # noqa: E402


RUN_TIMEOUT = 900.0
"""Seconds one run may take before it is reported as hung (and the bench goes on)."""


def index(paths: list[str], model: str, every: float, db: str, *extra: str) -> dict | None:
    """One whole `scenegrep index` process: wall seconds and its --json report; None when it hung."""
    shutil.rmtree(db, ignore_errors=True)
    started = time.perf_counter()
    try:
        result = subprocess.run([sys.executable, "-m", "scenegrep.cli", "index", *paths, "--model", model, "--every",
                                 str(every), "--db", db, "--json", *extra], capture_output=True, text=True,
                                env={**os.environ, "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1"},
                                timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(f"   scenegrep index {' '.join(extra)}: no result in {RUN_TIMEOUT:.0f} s (hung?)", flush=True)
        return None
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"scenegrep index {' '.join(extra)} failed: {result.stderr[-2000:]}")
    return {"wall": wall, "report": json.loads(result.stdout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,2", help="worker counts W (default 1,2)")
    parser.add_argument("--videos", type=int, default=4, help="videos in the archive (default 4)")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of each video (default 120)")
    parser.add_argument("--height", type=int, default=360, choices=[360, 720, 1080], help="video height (default 360)")
    parser.add_argument("--every", type=float, default=2.0, help="sampling interval (default 2)")
    parser.add_argument("--model", default="", help="CLIP model (default: a ViT-B/32 with random weights)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"),
                        help="folder for videos and indexes (kept between runs)")
    args = parser.parse_args()

    width = {360: 640, 720: 1280, 1080: 1920}[args.height]
    os.makedirs(args.work, exist_ok=True)
    archive = os.path.join(args.work, f"ray_archive_{args.videos}x{args.seconds:g}s_{args.height}p")
    os.makedirs(archive, exist_ok=True)
    paths = [make_video(os.path.join(archive, f"v{i}.mp4"), args.seconds, width, args.height, seed=i)
             for i in range(args.videos)]
    short = make_video(os.path.join(args.work, f"ray_short_{args.height}p.mp4"), 2.0, width, args.height, seed=99)
    model = args.model or vit_b32(os.path.join(args.work, "vit_b32"))
    video_seconds = args.videos * args.seconds
    db = os.path.join(args.work, "ray_db")
    print(f"archive: {args.videos} × {args.seconds:g} s {args.height}p, every {args.every:g} s, "
          f"{os.cpu_count()} cores, model {os.path.basename(model)}")
    print(f"{'W':>2} {'run':<6} {'wall s':>7} {'video-s/s':>9} {'frames':>6}  notes")
    for workers in [int(w) for w in args.workers.split(",")]:
        plain_fixed = index([short], model, args.every, db, "--workers", str(workers))
        plain = index(paths, model, args.every, db, "--workers", str(workers)) if plain_fixed else None
        if plain:
            plain_fixed = plain_fixed["wall"]
            print(f"{workers:>2} {'plain':<6} {plain['wall']:7.1f} {video_seconds / plain['wall']:9.1f} "
                  f"{sum(v['frames'] for v in plain['report']['videos']):>6}", flush=True)
        started = time.perf_counter()
        with RayCluster.start([workers + 1]) as cluster:
            cluster_start = time.perf_counter() - started
            fixed = index([short], model, args.every, db, "--ray", cluster.address)["wall"]  # a hang here is a bug
            ray = index(paths, model, args.every, db, "--ray", cluster.address)
        busy = {kind: sum(w["busy_seconds"] for w in ray["report"]["ray"]["workers"] if w["kind"] == kind)
                for kind in ("decode", "encode")}
        against = "no plain run to compare"
        if plain:
            whole = ray["wall"] / plain["wall"] - 1
            steady = (ray["wall"] - fixed) / max(plain["wall"] - plain_fixed, 1e-9) - 1
            against = (f"overhead {whole:+.0%} whole, {steady:+.0%} without each one's fixed cost "
                       f"(plain {plain_fixed:.1f} s)")
        print(f"{workers:>2} {'ray':<6} {ray['wall']:7.1f} {video_seconds / ray['wall']:9.1f} "
              f"{sum(v['frames'] for v in ray['report']['videos']):>6}  {against}; ray's fixed {fixed:.1f} s; cluster start {cluster_start:.1f} s; "
              f"busy: decode {busy['decode']:.1f} s, encode {busy['encode']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
