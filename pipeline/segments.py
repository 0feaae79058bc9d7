"""Splitting a video into segments that decode apart, and keeping the grid samples of their frames.

A segment is a run of whole GOPs, from one keyframe up to (not including) a
later one, so it decodes on its own after a seek. Each worker keeps, of its
segment's frames, the *candidates*: its first frame, and every frame that is
the first at or after some grid time kN (see `is_candidate`). The grid
sampler keeps only frames of that kind, so running its rule over the
candidates of all segments in order (`GridRule`) keeps exactly the frames a
single pass keeps, with the same pts: whatever happened before a segment
(which the worker never sees) only decides which candidates the rule drops.

GOPs that cannot hold a sample are not decoded at all (`needed_gops`), which
is how a long interval over short GOPs saves decoding, as seeking does in
one process.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from .cuts import CutRecorder
from .records import SampledFrame, Video
from .sample import RECORDING_MAX_SAVING, TIME_EPSILON

SEGMENTS_PER_WORKER = 3
"""A long video is cut into about this many segments per worker, so a worker
that finishes early (an easier stretch of the video) picks up another one
instead of idling while the slowest segment ends."""

MIN_SEGMENT_SECONDS = 20.0
"""Segments shorter than this are not worth a seek and a decoder start
(~10-30 ms, and up to a GOP of frames decoded past the end): a video shorter
than this is one segment."""

MAX_SEGMENT_SECONDS = 120.0
"""The longest segment: what a worker decodes before the parent can hand out
more work, and what bounds the frames waiting for their turn in memory
(at N=2, 60 resized frames of ~0.27 MB)."""


@dataclass(frozen=True)
class Segment:
    """Stream pts [start_pts, end_pts) of one video; None: from the stream's start / to its end."""

    index: int  # its place in the video: candidates are merged in this order
    start_pts: int | None
    end_pts: int | None
    start_t: float  # seconds, for planning and messages


def needed_gops(keyframe_times: Sequence[float], every: float) -> list[bool]:
    """For each GOP (from keyframe i to keyframe i+1), whether it may hold a sample.

    A grid sample is the first frame at or after some kN; if it lies in GOP i,
    kN is after the frame before keyframe i (so after keyframe i-1) and at most
    the GOP's last frame (so before keyframe i+1). A GOP with no kN strictly
    between keyframes i-1 and i+1 holds no sample. The first GOP always counts
    (it holds the first frame, the sample for 0).
    """
    times = list(keyframe_times)
    needed = []
    for i in range(len(times)):
        if i == 0:
            needed.append(True)
            continue
        low = times[i - 1]
        high = times[i + 1] if i + 1 < len(times) else math.inf
        first_k = math.floor(low / every - TIME_EPSILON) + 1  # the first kN after low (or just at it: generous)
        needed.append(first_k * every < high + 2 * TIME_EPSILON)
    return needed


def plan_segments(keyframes: Sequence[tuple[float, int]], every: float, duration: float | None,
                  workers: int, every_gop: bool = False) -> list[Segment]:
    """Cut a video into segments at keyframes, skipping GOPs that hold no sample.

    `keyframes` are (time, pts) in time order, as `PyAVDecoder.keyframes` gives
    them. The first segment starts at the stream's start (frames before the
    first keyframe decode as a single pass decodes them). Segment length aims
    at duration / (workers × SEGMENTS_PER_WORKER), within
    [MIN_SEGMENT_SECONDS, MAX_SEGMENT_SECONDS]. `every_gop`: decode the GOPs
    without a sample too (every frame, for `cuts.CutRecorder`).
    """
    if not keyframes:
        return [Segment(0, None, None, 0.0)]
    length = (duration or keyframes[-1][0]) / max(1, workers * SEGMENTS_PER_WORKER)
    length = min(max(length, MIN_SEGMENT_SECONDS), MAX_SEGMENT_SECONDS)
    times = [t for t, _ in keyframes]
    needed = [True] * len(times) if every_gop else needed_gops(times, every)
    segments: list[Segment] = []
    open_start: int | None = None  # index of the keyframe the open segment starts at
    for i in range(len(keyframes) + 1):
        gop_needed = i < len(keyframes) and needed[i]
        if open_start is not None and (not gop_needed or times[i] - times[open_start] >= length):
            segments.append(_segment(len(segments), keyframes, open_start, i))
            open_start = None
        if gop_needed and open_start is None:
            open_start = i
    return segments


def _segment(index: int, keyframes, first: int, end: int) -> Segment:
    start_pts = None if first == 0 else keyframes[first][1]
    end_pts = keyframes[end][1] if end < len(keyframes) else None
    return Segment(index, start_pts, end_pts, keyframes[first][0] if first else 0.0)


def skipped_share(keyframe_times: Sequence[float], every: float, duration: float | None) -> float:
    """The share of the video's time in GOPs that hold no sample (`needed_gops`)."""
    if not keyframe_times:
        return 0.0
    ends = [*keyframe_times[1:], max(duration or 0.0, keyframe_times[-1])]
    total = ends[-1] - keyframe_times[0]
    skipped = sum(end - start for start, end, needed in zip(keyframe_times, ends, needed_gops(keyframe_times, every))
                  if not needed)
    return skipped / total if total > 0 else 0.0


def covers_every_frame(segments: Sequence[Segment]) -> bool:
    """Whether the segments, in order, decode every frame of the video: from
    the stream's start to its end, each starting where the one before ends."""
    return (bool(segments) and segments[0].start_pts is None and segments[-1].end_pts is None
            and all(a.end_pts == b.start_pts for a, b in zip(segments, segments[1:])))


def plan_recording(keyframes: Sequence[tuple[float, int]], every: float, duration: float | None, workers: int,
                   record_cuts: bool) -> tuple[list[Segment], bool]:
    """`plan_segments` for a video, and whether its segments' frames record its shot changes
    (`cuts.CutRecorder`, fed every frame of all segments in order).

    Recording needs every frame: with `record_cuts`, GOPs without a sample are
    decoded too, unless skipping them saves more than the single-pass sampler
    gives up for recording (`sample.RECORDING_MAX_SAVING`; it then seeks and
    records nothing, and so do these segments)."""
    every_gop = record_cuts and skipped_share([t for t, _ in keyframes], every, duration) <= RECORDING_MAX_SAVING
    segments = plan_segments(keyframes, every, duration, workers, every_gop)
    return segments, record_cuts and covers_every_frame(segments)


def is_candidate(previous_t: float | None, t: float, every: float) -> bool:
    """Whether a frame at `t`, decoded right after one at `previous_t` (None: the
    first frame its worker kept), can be a grid sample: whether some kN lies in
    (previous_t, t], with the sampler's slack. Generous on purpose: a frame
    too many costs a resize, a frame too few would change the index."""
    if previous_t is None or t <= previous_t:
        return True
    slack = 2 * TIME_EPSILON
    return math.floor((t + slack) / every + TIME_EPSILON) > math.floor((previous_t - slack) / every + TIME_EPSILON)


class GridRule:
    """The grid sampler's rule (sample.next_target), applied to candidate frames in order."""

    def __init__(self, every: float):
        from .sample import next_target

        self._next_target = next_target
        self.every = every
        self.target = 0.0

    def keeps(self, t: float) -> bool:
        if t + TIME_EPSILON >= self.target:
            self.target = self._next_target(t, self.every)
            return True
        return False


class SegmentedSampler:
    """Like `sample.VideoSampler` (grid sampling), but its segments decode in a `workers.DecodePool`.

    Yields the same frames with the same times as a single pass; pixels are
    resized by FFmpeg where they are decoded, to `size_for(height, width)` of
    the video (None: full size).
    Raises VideoError (on construction) when PyAV cannot open the file, and
    while iterating when a segment fails (its worker reports why). `ticket` is
    the video's `pool.open_video()` number when several samplers share the
    pool: taken in the order they will be consumed (default: one taken when
    iteration starts). With `record_cuts`, the workers also send every frame's
    shot signature and `cuts` holds the video's shot changes once iteration
    ended (`cuts.CutRecorder`, over the frames of all segments in order, so a
    cut at a segment's first frame is found against the previous segment's
    last). GOPs without a sample are then decoded too, unless skipping them
    saves more than `sample.RECORDING_MAX_SAVING` of the video (as the
    single-pass sampler then seeks): `cuts` is None in that case, or when a
    frame would not convert.
    """

    used_strategy = "segments"

    def __init__(self, video: Video, every: float, pool,
                 size_for: Callable[[int, int], tuple[int, int] | None] | None = None, ticket: int | None = None,
                 record_cuts: bool = False):
        from .decoders import PyAVDecoder

        self.video = video
        self.every = every
        self._pool = pool
        decoder = PyAVDecoder(video.path)
        try:
            self.info = decoder.info()
            keyframes = decoder.keyframes()
        finally:
            decoder.close()
        self._size = size_for(self.info.height, self.info.width) if size_for else None
        self.segments, self.record_cuts = plan_recording(keyframes, every, self.info.duration, pool.workers,
                                                         record_cuts)
        self.decode_errors = 0
        self._ticket = ticket
        self.cuts: tuple[float, ...] | None = None

    def __iter__(self) -> Iterator[SampledFrame]:
        from .decode_worker import FrameSignals  # it imports this module

        pool = self._pool
        cores = os.cpu_count() or 1
        threads = max(1, cores // pool.workers)  # FFmpeg threads per worker: the cores shared out
        ticket = self._ticket if self._ticket is not None else pool.open_video()
        try:
            keys = [pool.submit(ticket, self.video.path, s.start_pts, s.end_pts, self.every, self._size, threads,
                                self.record_cuts)
                    for s in self.segments]
            rule = GridRule(self.every)
            recorder = CutRecorder(self.every) if self.record_cuts else None
            self.cuts = None
            for key in keys:
                signalled = False
                for item in pool.frames(key):
                    if isinstance(item, int):
                        self.decode_errors += item
                    elif isinstance(item, FrameSignals):
                        signalled = True
                        if item.signatures is None:
                            recorder = None
                        elif recorder is not None:
                            for t, signature in zip(item.times, item.signatures):
                                recorder.add_frame(t, signature)
                    elif rule.keeps(item[0]):
                        if recorder is not None:
                            recorder.add_sample(item[0])
                        yield SampledFrame(video=self.video, t=item[0], pixels=item[1])
                if not signalled:
                    recorder = None  # a decoder that sends no signatures: nothing to record
            if recorder is not None:
                self.cuts = recorder.finish()
        finally:
            pool.close_video(ticket)

    def __enter__(self) -> "SegmentedSampler":
        return self

    def __exit__(self, *exc) -> None:
        pass
