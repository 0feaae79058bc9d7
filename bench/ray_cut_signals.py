"""What recording shot changes sends from a `--ray` decoding task, and what it leaves the driver to do.

    python bench/ray_cut_signals.py                      # the 2-minute 720p bench video, every 2 s
    python bench/ray_cut_signals.py --minutes 3 --every 1 --workers 8

The video is bench/index_speed.make_video's (720p H.264 at 23.976 fps, a shot
change every ~4 s, a keyframe every 10 s), cut into segments as a `--ray` run
with `--workers` decoding slots cuts it (`segments.plan_recording`). Each
segment is decoded once, with every frame's shot signature; then its signals
are built two ways, as a decoding task sends them:

  every     every frame's signature (what `--ray` sent before segments
            recorded their own intervals: the baseline)
  edges     the segment records its intervals where it is decoded
            (`segment_cuts.record_within`) and sends its head and hand-off

For each: the bytes a task returns for them (pickled, as Ray moves them), the
driver's time to record the segment (`ray_index.record_segment`, summed over
the video), and the decoding task's added time (edges only). Both ways must
give the single pass's cuts; the script stops if they do not. Times are CPU-
bound single-thread work, best of --repeat, so ratios hold on a busy machine.
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from index_speed import make_video  # noqa: E402

from scenegrep.pipeline import segments  # noqa: E402
from scenegrep.pipeline.cuts import CutRecorder  # noqa: E402
from scenegrep.pipeline.decode_worker import FrameSignals, SegmentTask  # noqa: E402
from scenegrep.pipeline.decode_worker import decode_segment as candidates_of  # noqa: E402
from scenegrep.pipeline.decoders import PyAVDecoder  # noqa: E402
from scenegrep.pipeline.files import video_for  # noqa: E402
from scenegrep.pipeline.ray_index import record_segment  # noqa: E402
from scenegrep.pipeline.ray_tasks import SegmentSignals, _narrowed, _signals  # noqa: E402
from scenegrep.pipeline.sample import VideoSampler  # noqa: E402


def decoded(path: str, segment, every: float):
    """(candidate times, before, frame times, int16 signatures) of one segment, as a decoding task has them."""
    times, before, frame_times, signatures = [], [], [], []
    for item in candidates_of(SegmentTask(0, path, segment.start_pts, segment.end_pts, every, None, 1, True)):
        if isinstance(item, FrameSignals):
            frame_times.extend(item.times)
            signatures.append(item.signatures)
        elif not isinstance(item, int):
            times.append(item[0])
            before.append(len(frame_times))
    return times, before, frame_times, np.concatenate(signatures)


def best(repeat: int, work) -> tuple[float, object]:
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        seconds.append(time.perf_counter() - started)
    return min(seconds), result


def drive(parts: list, signals: list[SegmentSignals], every: float) -> tuple[float, ...]:
    """The driver's side: the grid rule and one recorder over the segments in order."""
    rule, recorder = segments.GridRule(every), CutRecorder(every)
    for (times, *_), segment_signals in zip(parts, signals):
        kept = [rule.keeps(t) for t in times]
        assert record_segment(recorder, times, kept, segment_signals)
    return recorder.finish()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="video length (default 2)")
    parser.add_argument("--every", type=float, default=2.0, help="sampling interval N (default 2)")
    parser.add_argument("--workers", type=int, default=4, help="decoding slots the segments are planned for (default 4)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed step, best kept (default 3)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    path = make_video(os.path.join(args.work, f"bench_720p_{args.minutes:g}min.mp4"), args.minutes * 60)

    decoder = PyAVDecoder(path)
    keyframes, duration = decoder.keyframes(), decoder.info().duration
    decoder.close()
    planned, recording = segments.plan_recording(keyframes, args.every, duration, args.workers, True)
    assert recording, "the plan skips GOPs: nothing to record"
    parts = [decoded(path, segment, args.every) for segment in planned]
    frames = sum(len(part[2]) for part in parts)
    with VideoSampler(video_for(path), args.every, strategy="decode", record_cuts=True) as sampler:
        for _ in sampler:
            pass
    single_pass = sampler.cuts

    every_signals = [SegmentSignals(tuple(ft), _narrowed(sig), tuple(b)) for _, b, ft, sig in parts]
    task_seconds, edge_signals = best(args.repeat, lambda: [_signals(c, b, ft, sig, args.every)
                                                             for c, b, ft, sig in parts])
    rows = []
    for name, signals in (("every", every_signals), ("edges", edge_signals)):
        sent = sum(len(pickle.dumps(s, protocol=5)) for s in signals)
        seconds, cuts = best(args.repeat, lambda: drive(parts, signals, args.every))
        assert cuts == single_pass, f"{name}: {len(cuts)} cuts, the single pass has {len(single_pass)}"
        rows.append((name, sent, seconds))

    hand_offs = sum(s.hand_off is not None for s in edge_signals)
    print(f"{os.path.basename(path)}: {duration:.0f} s, {frames} frames, every {args.every:g} s, "
          f"{len(planned)} segments for {args.workers} slots ({hand_offs} hand off), {len(single_pass)} cuts "
          "(both ways equal the single pass's)\n")
    print(f"{'signals':<8} {'sent MB':>8} {'KB/video-s':>11} {'driver ms':>10} {'task ms':>8}")
    for name, sent, seconds in rows:
        task = f"{task_seconds * 1000:8.0f}" if name == "edges" else f"{'-':>8}"
        print(f"{name:<8} {sent / 1e6:8.2f} {sent / 1e3 / duration:11.1f} {seconds * 1000:10.0f} {task}")
    (_, every_sent, every_seconds), (_, edge_sent, edge_seconds) = rows
    print(f"\nedges / every: sent ×{edge_sent / every_sent:.3f}, driver time ×{edge_seconds / every_seconds:.3f}; "
          "the tasks' added time runs on the decoding nodes, spread over their slots")


if __name__ == "__main__":
    main()
