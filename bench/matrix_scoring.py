"""Scoring a time window in the frame matrix: gathering the kept rows first, or scoring each video's run where it lies.

`pipeline/frame_matrix.py` holds every frame, video after video, each video's
frames by time, so a window keeps one run of rows per video. This bench
builds such a matrix of random unit vectors (no Chroma: only the scoring is
measured), and times both ways on the same windows, interleaved, in one run:

    python bench/matrix_scoring.py                            # a million frames: 1,515 videos of 660 (22 min at N=2)
    python bench/matrix_scoring.py --videos 303 --rounds 15   # 200k frames

The shipped rule (`frame_matrix.SCORE_IN_PLACE_MIN_RUN`) scores in place when
the mean run is at least that many rows, else gathers.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from scenegrep.pipeline import frame_matrix
from scenegrep.pipeline.frame_matrix import FrameMatrix

WINDOWS = {  # label: (start, end) in seconds, as `--from` / `--to`
    "--to 0:10": (None, 10.0),
    "--from 20:00": (1200.0, None),
    "--from 1:00 --to 5:00": (60.0, 300.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=1515)
    parser.add_argument("--frames-per-video", type=int, default=660)
    parser.add_argument("--rounds", type=int, default=15, help="timings of each way per window (default 15)")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    rows = args.videos * args.frames_per_video
    vectors = rng.standard_normal((rows, 512), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    matrix = FrameMatrix(entries=(), offsets=np.arange(args.videos + 1) * args.frames_per_video,
                         times=np.tile(np.arange(args.frames_per_video) * 2.0, args.videos), vectors=vectors)
    query = vectors[0].copy()
    frame_matrix_threshold = frame_matrix.SCORE_IN_PLACE_MIN_RUN
    print(f"{rows} frames ({args.videos} videos of {args.frames_per_video}), 512-d float32, {os.cpu_count()} CPU(s), "
          f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"{'window':24} {'kept':>8} {'run':>5} {'gathered p50':>13} {'p95':>7} {'in place p50':>13} {'p95':>7} "
          f"{'speed-up':>9} {'shipped':>9}")
    for label, (start, end) in WINDOWS.items():
        keep = matrix.kept(None, start, end)
        runs = int(np.count_nonzero(np.diff(keep.view(np.int8), prepend=0) == 1))
        timings = {"gathered": [], "in place": []}
        expected = None
        for _ in range(args.rounds):
            for way, threshold in (("gathered", 10**9), ("in place", 1)):
                frame_matrix.SCORE_IN_PLACE_MIN_RUN = threshold
                began = time.perf_counter()
                _, scores = matrix.scores(keep, query)
                timings[way].append((time.perf_counter() - began) * 1000)
                expected = scores if expected is None else expected
                assert np.allclose(scores, expected, atol=1e-5)  # both ways score the same rows alike
        p = {way: np.percentile(ms, [50, 95]) for way, ms in timings.items()}
        mean_run = int(keep.sum()) / max(runs, 1)
        shipped = "in place" if mean_run >= frame_matrix_threshold else "gathered"
        print(f"{label:24} {int(keep.sum()):8d} {mean_run:5.0f} {p['gathered'][0]:10.1f} ms {p['gathered'][1]:7.1f} "
              f"{p['in place'][0]:10.1f} ms {p['in place'][1]:7.1f} {p['gathered'][0] / p['in place'][0]:8.2f}x "
              f"{shipped:>9}")
    print(f"(load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
