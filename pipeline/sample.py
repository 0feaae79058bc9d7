"""Sample stage: one frame every N seconds of a video, with its true timestamp.

Frames stream through: memory does not depend on the video's length.
"""

from __future__ import annotations

import bisect
import math
from typing import Iterator, Sequence

from .cuts import CutRecorder
from .decoders import open_decoder
from .errors import VideoError
from .records import SampledFrame, Video
from .shots import frame_signature

DEFAULT_EVERY = 2.0
"""Seconds between samples. Shots in animation last a few seconds; 2 s catches
nearly all of them while keeping an hour of video to 1,800 frames."""

TIME_EPSILON = 1e-6
"""Slack for float time comparisons, far below one frame at any real frame rate."""


def next_target(t: float, every: float) -> float:
    """The first sample time after a frame kept at `t`.

    Targets sit on the grid 0, N, 2N…; when a gap in a variable-frame-rate
    video spans several targets, the one frame after the gap stands for them.
    """
    return (math.floor(t / every + TIME_EPSILON) + 1) * every


SAMPLINGS = ("grid", "keyframes")
"""grid: the first frame at or after every multiple of N seconds (the default).
keyframes: every keyframe with its own time, plus evenly spaced samples where
keyframes are more than N apart. Keyframes decode alone, several times faster
than decoding every frame, and encoders put them at most shot changes; but
samples are irregular in time and as dense as the encoder made keyframes."""

STRATEGIES = ("auto", "decode", "seek")
"""How grid samples are reached: decode every frame, or seek to the last
keyframe before a sample when that skips enough frames. Both give the same
frames and times; auto picks per video from its keyframe spacing and N."""

SEEK_MIN_SAVING = 0.1
"""auto seeks when it expects to skip at least this share of the frames.
Skipped share, with keyframes every g s and samples every N s: N/(2g) when
N < g, else 1 - g/(2N). Each seek flushes FFmpeg's frame threads, so small
savings are eaten by the seeks (measured: g=10 s, N=1 s is slower seeking)."""

RECORDING_MAX_SAVING = 0.25
"""With cuts to record (`record_cuts`), auto decodes through unless seeking is
expected to skip more than this share of the frames: recording needs every
frame, and at N = 2 over the usual 4-10 s GOPs seeking skips 10-25 %
on paper and less in practice (each seek decodes from a keyframe). Beyond it
(a long N over short GOPs) the sampler seeks and records nothing; searches
then find those videos' clip edges by decoding."""

SEEK_MIN_SKIP_FRAMES = 24
"""A seek is made only when it skips at least this many frames (about one
second): a seek costs about as much as decoding one frame per decoder thread,
plus the keyframe, so shorter jumps are cheaper to decode through."""


def expected_seek_saving(keyframe_times: Sequence[float], every: float) -> float:
    """The share of frames seeking would skip (see `SEEK_MIN_SAVING`)."""
    if len(keyframe_times) < 2:
        return 0.0
    gaps = sorted(b - a for a, b in zip(keyframe_times, keyframe_times[1:]))
    gop = gaps[len(gaps) // 2]
    if gop <= 0:
        return 0.0
    return every / (2 * gop) if every < gop else 1 - gop / (2 * every)


def keyframe_plan(keyframe_times: Sequence[float], every: float, end: float | None) -> list[float]:
    """Sample times for `--sampling keyframes`: every keyframe, and where two
    keyframes (or the last one and the end) are more than `every` apart, evenly
    spaced times in between so no gap exceeds `every`."""
    plan: list[float] = []
    bounds = list(keyframe_times) + ([end] if end is not None and keyframe_times and end > keyframe_times[-1] else [])
    for i, t in enumerate(keyframe_times):
        plan.append(t)
        if i + 1 < len(bounds):
            gap = bounds[i + 1] - t
            extra = math.ceil(gap / every - TIME_EPSILON) - 1
            plan.extend(t + gap * j / (extra + 1) for j in range(1, extra + 1))
    return plan


class _SeekMissed(Exception):
    """A seek landed after the sample it was for: this file's index cannot be trusted."""


class VideoSampler:
    """An open video that yields one `SampledFrame` every `every` seconds.

    Timestamps are the frames' own presentation times (pts × time_base), so
    29.97 fps and variable-frame-rate videos get true times. `sampling` and
    `strategy` are described at `SAMPLINGS` and `STRATEGIES`; every strategy
    yields the same frames. With `record_cuts`, a grid sampler that decodes
    through records the video's shot changes (`cuts.CutRecorder`) in `cuts`
    once iteration ends (None when it skipped frames or a frame would not
    convert). Use as a context manager so the file is closed however
    iteration ends.
    Raises VideoError (on construction) if the file cannot be opened as a video.
    """

    def __init__(self, video: Video, every: float = DEFAULT_EVERY, backend: str | None = None,
                 sampling: str = "grid", strategy: str = "auto", record_cuts: bool = False):
        if every <= 0:
            raise ValueError("the sampling interval must be positive")
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown sampling {sampling!r}")
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}")
        self.video = video
        self.every = every
        self.sampling = sampling
        self.strategy = strategy
        self._decoder = open_decoder(video.path, backend)
        self.info = self._decoder.info()
        self.used_strategy = "decode"  # what the last iteration did, once it started
        self.record_cuts = record_cuts
        self.cuts: tuple[float, ...] | None = None  # shot changes, once a recording iteration ended

    @property
    def decode_errors(self) -> int:
        """Corrupt packets skipped so far."""
        return self._decoder.decode_errors

    def __iter__(self) -> Iterator[SampledFrame]:
        decoder = self._decoder
        if not getattr(decoder, "supports_seeking", False) or (self.sampling == "grid" and self.strategy == "decode"):
            self.used_strategy = "decode"
            return self._decode_through()
        keyframes = decoder.keyframes()
        times = [t for t, _ in keyframes]
        if self.sampling == "keyframes":
            if not keyframes:
                self.used_strategy = "decode"
                return self._decode_through()
            self.used_strategy = "keyframes"
            plan = keyframe_plan(times, self.every, self.info.duration)
            return self._seeking(keyframes, _plan_targets(plan), keyframe_targets=set(times))
        saving = expected_seek_saving(times, self.every)
        if self.strategy == "auto" and (saving < SEEK_MIN_SAVING or (self.record_cuts and saving <= RECORDING_MAX_SAVING)):
            self.used_strategy = "decode"
            return self._decode_through()
        self.used_strategy = "seek"
        return self._seeking(keyframes, self._grid_target)

    def _grid_target(self, kept: float | None) -> float:
        return 0.0 if kept is None else next_target(kept, self.every)

    def _decode_through(self) -> Iterator[SampledFrame]:
        target = 0.0
        self.cuts = None
        recorder = CutRecorder(self.every) if self.record_cuts and self.sampling == "grid" else None
        for frame in self._decoder.frames():
            if recorder is not None:
                try:
                    recorder.add_frame(frame.t, frame_signature(frame))
                except VideoError:
                    recorder = None  # an odd frame: this video's edges are found at search time
            if frame.t + TIME_EPSILON >= target:
                if recorder is not None:
                    recorder.add_sample(frame.t)
                yield SampledFrame(video=self.video, t=frame.t, pixels=frame.to_rgb())
                target = next_target(frame.t, self.every)
        if recorder is not None:
            self.cuts = recorder.finish()

    def _seeking(self, keyframes, next_target_after, keyframe_targets: frozenset | set = frozenset()):
        """Keep the first frame at or after each target, seeking to the last keyframe
        before a target when that skips at least SEEK_MIN_SKIP_FRAMES frames.
        A target that is itself a keyframe is reached with FFmpeg skipping all
        non-keyframes. Falls back to decoding through if a seek overshoots."""
        decoder = self._decoder
        times = [t for t, _ in keyframes]
        rate = float(self.info.rate) if self.info.rate else 25.0
        min_skip = SEEK_MIN_SKIP_FRAMES / rate
        target = next_target_after(None)
        frames = None
        fresh = False
        position = -math.inf  # time of the last decoded frame
        keyframes_only = False
        try:
            while target is not None:
                i = bisect.bisect_right(times, target + TIME_EPSILON) - 1
                wants_keyframes_only = target in keyframe_targets
                if frames is None or wants_keyframes_only != keyframes_only or (
                        not keyframes_only and i >= 0 and times[i] > position + min_skip):
                    if frames is not None:
                        frames.close()
                    keyframes_only = wants_keyframes_only
                    seek_pts = keyframes[i][1] if i >= 0 else decoder.start_pts()
                    frames = decoder.frames(seek_pts=seek_pts, keyframes_only=keyframes_only)
                    fresh = True
                kept = None
                for frame in frames:
                    if fresh:
                        fresh = False
                        if i >= 0 and frame.t > target + TIME_EPSILON:
                            raise _SeekMissed  # landed after the keyframe asked for
                    position = frame.t
                    if frame.t + TIME_EPSILON >= target:
                        kept = frame
                        break
                if kept is None:
                    return
                yield SampledFrame(video=self.video, t=kept.t, pixels=kept.to_rgb())
                target = next_target_after(kept.t)
        except _SeekMissed:
            # Decode through from the start; frames before the target are skipped.
            frames.close()
            self.used_strategy += "+decode"
            frames = None
            for frame in decoder.frames(seek_pts=decoder.start_pts()):
                if frame.t + TIME_EPSILON >= target:
                    yield SampledFrame(video=self.video, t=frame.t, pixels=frame.to_rgb())
                    target = next_target_after(frame.t)
                    if target is None:
                        return
        finally:
            if frames is not None:
                frames.close()

    def close(self) -> None:
        self._decoder.close()

    def __enter__(self) -> "VideoSampler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _plan_targets(plan: Sequence[float]):
    """next_target_after for a fixed plan: the first planned time after the kept frame."""
    def after(kept: float | None) -> float | None:
        if kept is None:
            return plan[0] if plan else None
        i = bisect.bisect_right(plan, kept + TIME_EPSILON)
        return plan[i] if i < len(plan) else None
    return after


def sample_video(video: Video, every: float = DEFAULT_EVERY, backend: str | None = None,
                 sampling: str = "grid", strategy: str = "auto") -> Iterator[SampledFrame]:
    """Yield one `SampledFrame` every `every` seconds of `video` (see `VideoSampler`)."""
    with VideoSampler(video, every, backend, sampling, strategy) as sampler:
        yield from sampler
