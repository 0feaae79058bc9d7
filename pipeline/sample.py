"""Sample stage: one frame every N seconds of a video, with its true timestamp.

Frames stream through: memory does not depend on the video's length.
"""

from __future__ import annotations

import math
from typing import Iterator

from .decoders import open_decoder
from .records import SampledFrame, Video

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


class VideoSampler:
    """An open video that yields one `SampledFrame` every `every` seconds.

    Timestamps are the frames' own presentation times (pts × time_base), so
    29.97 fps and variable-frame-rate videos get true times. Use as a context
    manager so the file is closed however iteration ends.
    Raises VideoError (on construction) if the file cannot be opened as a video.
    """

    def __init__(self, video: Video, every: float = DEFAULT_EVERY, backend: str | None = None):
        if every <= 0:
            raise ValueError("the sampling interval must be positive")
        self.video = video
        self.every = every
        self._decoder = open_decoder(video.path, backend)
        self.info = self._decoder.info()

    @property
    def decode_errors(self) -> int:
        """Corrupt packets skipped so far."""
        return self._decoder.decode_errors

    def __iter__(self) -> Iterator[SampledFrame]:
        target = 0.0
        for frame in self._decoder.frames():
            if frame.t + TIME_EPSILON >= target:
                yield SampledFrame(video=self.video, t=frame.t, pixels=frame.to_rgb())
                target = next_target(frame.t, self.every)

    def close(self) -> None:
        self._decoder.close()

    def __enter__(self) -> "VideoSampler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sample_video(video: Video, every: float = DEFAULT_EVERY, backend: str | None = None) -> Iterator[SampledFrame]:
    """Yield one `SampledFrame` every `every` seconds of `video` (see `VideoSampler`)."""
    with VideoSampler(video, every, backend) as sampler:
        yield from sampler
