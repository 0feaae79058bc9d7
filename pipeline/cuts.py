"""Shot changes recorded while indexing (sample stage), so searches snap clip edges without decoding.

The sampler decodes every frame of a grid-sampled video anyway; `CutRecorder`
takes each frame's shot signature (`shots.frame_signature`, a fifth of a
millisecond at 720p) and, for every sampling interval, asks the search-time
detector (`shots.first_change` / `shots.last_change`) for the changes in it,
on the very window of frames a search would decode: from one sample to the
next, plus the frames after that a flash test looks at. The first and the
last change of each interval are what snapping needs (a clip's start moves to
the last change before its first hit, its end to the first change after its
last hit), so those are recorded; a third change inside one interval (three
shots within N seconds) is not. `pipeline/snap.py` reads them back.

Recorded only when every frame was decoded in order (grid sampling decoding
through, or worker segments that cover the whole video): a seeking or
keyframe sampler skips frames, and its videos snap at search time instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .shots import FLASH_FRAMES, WindowFrame, first_change, last_change

TIME_SLACK = 1e-3
"""Seconds of slack between a window's bounds and frame times, as at search time (`snap.TIME_SLACK`)."""

LOOK_AHEAD_FRAMES = FLASH_FRAMES + 1
"""Frames after an interval's end that its window holds, as a search's window
does: a flash that starts at the interval's last frame ends within them."""

CUT_DECIMALS = 6
"""Recorded cut times are rounded to the microsecond, like stored sample times."""


@dataclass(frozen=True)
class HandOff:
    """What a recorder fed one segment's frames from its sample `start` on
    (`segment_cuts.record_within`) hands to the recorder of the whole video
    (`CutRecorder.take_over`): the changes of the intervals it decided, and
    the samples and frames of those it could not decide without the next segment."""

    start_candidate: int  # the index of the segment's candidate at `start`
    start: float  # the sample its recording starts at
    samples: tuple[float, ...]  # the samples it took among the segment's candidates 1.. (`start` first)
    cuts: tuple[float, ...]  # the changes of every interval it decided
    pending_samples: tuple[float, ...]  # from its first undecided interval on
    pending_times: tuple[float, ...]  # the frames from that interval's start on
    pending_signatures: np.ndarray  # theirs, len(pending_times) × h × w × 3


class CutRecorder:
    """Feed it every decoded frame in order (`add_frame`) and every sample as it
    is kept (`add_sample`, after that frame); `finish` gives the shot changes."""

    def __init__(self, every: float):
        self.every = every
        self._frames: list[WindowFrame] = []  # from the open interval's first sample on
        self._samples: list[float] = []  # samples whose interval is not decided yet
        self._after: int = 0  # frames past the second sample (the open interval's end)
        self._cuts: set[float] = set()

    def add_frame(self, t: float, signature: np.ndarray) -> None:
        if self._frames and t <= self._frames[-1].t:
            return  # a repeated or out-of-order time: not a frame a search would see either
        self._frames.append(WindowFrame(t, None, signature))
        if len(self._samples) >= 2 and t > self._samples[1] + TIME_SLACK:
            self._after += 1
            if self._after >= LOOK_AHEAD_FRAMES:
                self._close_interval()
        elif not self._samples:
            del self._frames[:-1]  # before the first sample (this frame may be it): in no interval

    def add_sample(self, t: float) -> None:
        self._samples.append(t)
        if len(self._samples) == 2:
            self._after = self._frames_after_end()
            if self._after >= LOOK_AHEAD_FRAMES:
                self._close_interval()

    def state(self) -> tuple[tuple[float, ...], tuple[float, ...], list[WindowFrame]]:
        """(changes so far, undecided samples, the frames from the first of them on), for a `HandOff`."""
        return tuple(sorted(self._cuts)), tuple(self._samples), list(self._frames)

    def take_over(self, hand_off: HandOff) -> bool:
        """Go on from a segment's own recording, once fed its frames up to LOOK_AHEAD_FRAMES
        after `hand_off.start` and its samples up to that one: every interval before `start`
        is decided then, and the segment's recorder decided the same ones after it would.
        False, and nothing changed, when this recorder's undecided samples are not exactly
        [start] (it was fed something else: it cannot go on from the hand-off)."""
        if self._samples != [hand_off.start]:
            return False
        self._cuts.update(hand_off.cuts)
        self._samples = list(hand_off.pending_samples)
        self._frames = [WindowFrame(t, None, signature)
                        for t, signature in zip(hand_off.pending_times, hand_off.pending_signatures)]
        self._after = self._frames_after_end()
        return True

    def finish(self) -> tuple[float, ...]:
        """Every recorded shot change (seconds, ascending), the last intervals decided with the frames there are."""
        while len(self._samples) >= 2:
            self._close_interval()
        if self._samples:  # after the last sample: one interval, as a clip ending there reaches
            self._decide(self._samples[0], self._samples[0] + self.every)
        self._frames.clear()
        self._samples.clear()
        return tuple(sorted(self._cuts))

    def _close_interval(self) -> None:
        low, high = self._samples[0], self._samples[1]
        self._decide(low, high)
        self._samples.pop(0)
        self._frames = [frame for frame in self._frames if frame.t >= high - TIME_SLACK]
        self._after = self._frames_after_end()
        if self._after >= LOOK_AHEAD_FRAMES:
            self._close_interval()

    def _frames_after_end(self) -> int:
        """Frames held past the open interval's end (its second sample); 0 while it has none."""
        if len(self._samples) < 2:
            return 0
        return sum(frame.t > self._samples[1] + TIME_SLACK for frame in self._frames)

    def _decide(self, low: float, high: float) -> None:
        window = window_frames(self._frames, low, high)
        for change in (first_change(window, until=high + TIME_SLACK), last_change(window, until=high + TIME_SLACK)):
            if change is not None:
                self._cuts.add(round(change, CUT_DECIMALS))


def window_frames(frames: Sequence[WindowFrame], low: float, high: float) -> list[WindowFrame]:
    """The frames a search decodes for the window (low, high): from `low` to
    `high`, then LOOK_AHEAD_FRAMES more (`snap._WindowReader.window`)."""
    window = [frame for frame in frames if frame.t >= low - TIME_SLACK]
    inside = sum(frame.t <= high + TIME_SLACK for frame in window)
    return window[: inside + LOOK_AHEAD_FRAMES]
