"""What snapping clip edges to shot changes costs a search, and what it buys.

Part 1, the sample index: indexes sample_videos/ and sample_shots/ with the
trained mini CLIP twice, with shot changes recorded (the default) and without
(an index from before issue 14), kept in $TMPDIR/scenegrep-bench/snap-db-*;
then asks every annotated caption in-process with k = 10 three ways in turn:
`--no-snap` (the baseline: grid clips), snapped from the recorded cuts, and
snapped by decoding (the fallback for indexes without them); reports each
one's latency and what it adds to the baseline, in wall time and in CPU time
of all threads (the machine these numbers come from is shared, so wall time
swings with its load; CPU time bounds what an idle 2-core machine takes), and
whether both snapped ways return the same clips. Model loading, the query's
text encoding and process start are outside the timer; the stores are warm.

Part 2, a 720p video (`--hd`): bench/index_speed.py's 720p H.264 at 23.976 fps
(shot changes every ~4 s, a keyframe every 10 s, 3 B-frames) and 10 grid clips
of two hits each spread over it: the time snapping takes for k = 10 there,
from recorded cuts and by decoding, where decoding a window costs what it
costs on real footage.

    python bench/snap_cost.py           # ~1 min on 2 cores (indexing the samples the first time)
    python bench/snap_cost.py --hd      # plus ~40 s to make the 720p video the first time
"""

from __future__ import annotations

import argparse
import contextlib
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
    encoder = ClipEncoder(os.path.join(REPO, "sample_videos", "mini_clip"))
    stores = {}
    with contextlib.ExitStack() as stack:
        for recorded in (True, False):  # the same videos, indexed with and without recording shot changes
            place = index_location(os.path.join(work, f"snap-db-{'recorded' if recorded else 'unrecorded'}"), None)
            opened = stack.enter_context(open_index(place, write=True))
            store = opened.for_writing(encoder.info, 2.0)
            for _ in index_videos([video_for(v["path"]) for v in annotated], encoder, store, workers=1,
                                  record_cuts=recorded):
                pass
            assert all((entry.cuts is not None) == recorded for entry in store.indexed_videos())
            stores[recorded] = store
        vectors = [query_vector(encoder, Query.parse([s["caption"]])) for v in annotated for s in v["scenes"]]
        modes = {"--no-snap (grid edges)": (stores[True], False), "snapped, recorded cuts": (stores[True], True),
                 "snapped, decoding (fallback)": (stores[False], True)}
        for store, snap in modes.values():  # warm the stores' caches
            for vector in vectors[:3]:
                search(store, vector, k=K, rules=ClipRules(snap=snap))
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        cpu: dict[str, list[float]] = {mode: [] for mode in modes}
        answers: dict[str, list] = {mode: [] for mode in modes}
        for _ in range(rounds):
            for vector in vectors:
                for mode, (store, snap) in modes.items():
                    began, began_cpu = time.perf_counter(), time.process_time()
                    clips = search(store, vector, k=K, rules=ClipRules(snap=snap))
                    times[mode].append(time.perf_counter() - began)
                    cpu[mode].append(time.process_time() - began_cpu)
                    answers[mode].append([(c.path, round(c.start, 5), round(c.end, 5)) for c in clips])
    grid = times["--no-snap (grid edges)"]
    print(f"sample index: {len(vectors)} queries x {rounds} rounds, k = {K}, load average {os.getloadavg()[0]:.1f}")
    for mode in modes:
        extra = [b - a for a, b in zip(grid, times[mode])]
        extra_cpu = [b - a for a, b in zip(cpu["--no-snap (grid edges)"], cpu[mode])]
        print(f"  {mode:30} median {1000 * statistics.median(times[mode]):7.1f} ms   p90 {1000 * _p90(times[mode]):7.1f} ms"
              f"   adds median {1000 * statistics.median(extra):7.1f} ms, p90 {1000 * _p90(extra):7.1f} ms,"
              f" CPU median {1000 * statistics.median(extra_cpu):7.1f} ms")
    same = answers["snapped, recorded cuts"] == answers["snapped, decoding (fallback)"]
    print(f"  (target: snapping adds <= 300 ms for k = {K}); recorded and decoded snapping give the same clips: {same}")


def hd_part(work: str, rounds: int) -> None:
    from index_speed import make_video

    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.records import Clip, Hit
    from scenegrep.pipeline.sample import VideoSampler
    from scenegrep.pipeline.snap import snap_all, snap_clips

    path = make_video(os.path.join(work, "snap-720p-60s.mp4"), 60.0)
    clips = []
    for n in range(K):  # two hits 2 s apart every 6 s: 10 clips over the minute
        first = 1.0 + 6.0 * n
        hits = (Hit("hd", path, first, 0.5), Hit("hd", path, first + 2.0, 0.5))
        clips.append(Clip("hd", path, first, first + 4.0, 0.5, hits))
    with VideoSampler(video_for(path), 1.0, strategy="decode", record_cuts=True) as sampler:  # samples at 1, 3, 5...
        for _ in sampler:
            pass
    recorded = {path: sampler.cuts}
    spent: dict[str, list[float]] = {"decoding": [], "recorded": []}
    spent_cpu: dict[str, list[float]] = {"decoding": [], "recorded": []}
    for _ in range(rounds):
        for mode in spent:
            began, began_cpu = time.perf_counter(), time.process_time()
            snapped = snap_clips(clips, every=2.0) if mode == "decoding" else snap_all(clips, 2.0, recorded)[0]
            spent[mode].append(time.perf_counter() - began)
            spent_cpu[mode].append(time.process_time() - began_cpu)
            if mode == "decoding":
                by_decoding = snapped
    moved = sum((c.start, c.end) != (c.grid_start, c.grid_end) for c in snapped)
    same = [(round(c.start, 5), round(c.end, 5)) for c in snapped] == [(round(c.start, 5), round(c.end, 5))
                                                                       for c in by_decoding]
    print(f"720p H.264 23.976 fps, k = {K} clips, {rounds} rounds, load average {os.getloadavg()[0]:.1f}")
    for mode in spent:
        print(f"  snap from {mode:10} median {1000 * statistics.median(spent[mode]):9.2f} ms   "
              f"min {1000 * min(spent[mode]):9.2f} ms   CPU {1000 * statistics.median(spent_cpu[mode]):9.2f} ms")
    print(f"  ({moved} of {K} clips moved an edge; recorded and decoded snapping agree: {same})")


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
