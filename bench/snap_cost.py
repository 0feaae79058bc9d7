"""What snapping clip edges to shot changes costs a search, and what it buys.

Part 1, the sample index: indexes sample_videos/ and sample_shots/ with the
trained mini CLIP (kept in $TMPDIR/scenegrep-bench/snap-db), then asks every
annotated caption in-process with k = 10, alternating `--no-snap` (the
baseline: grid clips) and snapped, and reports the per-query latency of each
and the difference, in wall time and in CPU time of all threads (the machine
these numbers come from is shared, so wall time swings with its load; CPU time
bounds what an idle 2-core machine takes). Model loading, the query's text
encoding and process start are outside the timer; the store is warm.

Part 2, a 720p video (`--hd`): bench/index_speed.py's 720p H.264 at 23.976 fps
(shot changes every ~4 s, a keyframe every 10 s, 3 B-frames) and 10 grid clips
of two hits each spread over it: the time `snap_clips` takes for k = 10 there,
where decoding a window costs what it costs on real footage.

    python bench/snap_cost.py           # ~1 min on 2 cores (indexing the samples the first time)
    python bench/snap_cost.py --hd      # plus ~40 s to make the 720p video the first time
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

K = 10


def sample_part(work: str, rounds: int) -> None:
    from scenegrep.pipeline.clips import ClipRules
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.evaluate import read_annotations
    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.index_access import open_index
    from scenegrep.pipeline.indexer import index_videos
    from scenegrep.pipeline.query import Query, query_vector
    from scenegrep.pipeline.search import search
    from scenegrep.cli.common import index_location

    annotated = read_annotations(os.path.join(REPO, "sample_videos", "annotations.json"))
    annotated += read_annotations(os.path.join(REPO, "sample_shots", "annotations.json"))
    place = index_location(os.path.join(work, "snap-db"), None)
    with open_index(place, write=True) as opened:
        encoder = ClipEncoder(os.path.join(REPO, "sample_videos", "mini_clip"))
        store = opened.for_writing(encoder.info, 2.0)
        for _ in index_videos([video_for(v["path"]) for v in annotated], encoder, store):
            pass
        vectors = [query_vector(encoder, Query.parse([s["caption"]])) for v in annotated for s in v["scenes"]]
        for vector in vectors[:3]:  # warm the store's caches
            search(store, vector, k=K, rules=ClipRules(snap=False))
        times: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(rounds):
            for vector in vectors:
                for snap in (False, True):
                    began, began_cpu = time.perf_counter(), time.process_time()
                    search(store, vector, k=K, rules=ClipRules(snap=snap))
                    times[snap].append(time.perf_counter() - began)
                    cpu[snap].append(time.process_time() - began_cpu)
    grid, snapped = times[False], times[True]
    extra = [b - a for a, b in zip(grid, snapped)]
    extra_cpu = [b - a for a, b in zip(cpu[False], cpu[True])]
    print(f"sample index: {len(vectors)} queries x {rounds} rounds, k = {K}, load average {os.getloadavg()[0]:.1f}")
    print(f"  --no-snap (baseline)  median {1000 * statistics.median(grid):6.1f} ms")
    print(f"  snapped               median {1000 * statistics.median(snapped):6.1f} ms   "
          f"p90 {1000 * _p90(snapped):6.1f} ms")
    print(f"  snapping adds         median {1000 * statistics.median(extra):6.1f} ms   p90 {1000 * _p90(extra):6.1f} ms"
          f"   (target <= 300 ms)   ratio {statistics.median(snapped) / statistics.median(grid):.2f}x")
    print(f"  snapping adds CPU     median {1000 * statistics.median(extra_cpu):6.1f} ms   p90 {1000 * _p90(extra_cpu):6.1f} ms"
          "   (all threads; on an idle 2-core machine the wall time is at most this)")


def hd_part(work: str, rounds: int) -> None:
    from index_speed import make_video

    from scenegrep.pipeline.records import Clip, Hit
    from scenegrep.pipeline.snap import snap_clips

    path = make_video(os.path.join(work, "snap-720p-60s.mp4"), 60.0)
    clips = []
    for n in range(K):  # two hits 2 s apart every 6 s: 10 clips over the minute
        first = 1.0 + 6.0 * n
        hits = (Hit("hd", path, first, 0.5), Hit("hd", path, first + 2.0, 0.5))
        clips.append(Clip("hd", path, first, first + 4.0, 0.5, hits))
    spent, spent_cpu = [], []
    for _ in range(rounds):
        began, began_cpu = time.perf_counter(), time.process_time()
        snapped = snap_clips(clips, every=2.0)
        spent.append(time.perf_counter() - began)
        spent_cpu.append(time.process_time() - began_cpu)
    moved = sum((c.start, c.end) != (c.grid_start, c.grid_end) for c in snapped)
    print(f"720p H.264 23.976 fps, k = {K} clips, {rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"  snap_clips            median {1000 * statistics.median(spent):6.1f} ms   min {1000 * min(spent):6.1f} ms"
          f"   CPU {1000 * statistics.median(spent_cpu):6.1f} ms   ({moved} of {K} clips moved an edge)")


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hd", action="store_true", help="also time snapping on a 720p video")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    sample_part(args.work, args.rounds)
    if args.hd:
        hd_part(args.work, args.rounds)


if __name__ == "__main__":
    main()
