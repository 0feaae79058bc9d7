"""Where shots change inside a short run of decoded frames (search stage).

A clip's edges are searched for cuts only in the frames between a matching
sample and its non-matching neighbour (`pipeline/snap.py`), so the detector
sees a window of one or two seconds, never a whole video. Each frame becomes a
small Lab image; the distance of two frames is their mean absolute difference
(PySceneDetect's ContentDetector score, in Lab instead of HSV: HSV's hue is
noise on the black, white and grey pixels that flat animation is full of, and
a cross-fade out of black scores there as a hard cut).

- **Hard cut** at frame i: its distance to frame i-1 is at least CUT_DISTANCE,
  or at least MIN_CUT_DISTANCE and CUT_RATIO times the motion around it (the
  median distance of its LOCAL_FRAMES neighbours on each side), as
  PySceneDetect's AdaptiveDetector does. The ratio is what finds a cut between
  two held drawings that differ in one small shape (distance 5-6, around 0).
- **Flash**: a frame (up to FLASH_FRAMES frames) unlike the frame before it,
  followed by a frame like the frame before it again, is a flash inside a shot,
  not a cut (PySceneDetect's issue #35).
- **Gradual change** (cross-fade, fade through black): no hard cut, but the
  window's first and last frames are GRADUAL_DISTANCE apart: the change is put
  at the first frame nearer the last frame than the first, the fade's midpoint.

The change is found by bisection (the frame where the window stops looking
like its first frame and starts looking like its last), so a window of 50
frames converts about 15 of them; a second change in the same window is
looked for on the side the caller needs (the last change for a clip's
start, the first for its end).

Why our own detector rather than PySceneDetect's: its detectors take a frame
number stream and report cuts through a flash filter that either merges or
suppresses cuts closer than `min_scene_len` (a flash inside a shot still
comes out as one cut, and a real cut in the first frames of a window is
dropped); a window-sized decision needs the flash test above and the gradual
rule, which it does not have; and its 0.7 wheel pulls in the GUI OpenCV build
that conflicts with our headless one. The scores are its scores.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

SIGNATURE_WIDTH = 64
"""Frames are compared at this width (height in proportion): area-averaged, a
64×36 image keeps every shape of a shot and drops compression noise, and costs
microseconds to compare."""

CUT_DISTANCE = 30.0
"""A frame this far (mean absolute Lab difference, 0-255) from the one before
starts a new shot whatever the motion around it. Cuts between unrelated shots
score 45-110; the fastest motion in the sample videos 3.5 per frame."""

MIN_CUT_DISTANCE = 4.0
"""Below this a frame-to-frame change is motion or noise, however still the
frames around it: compression noise on held drawings is 0.1-0.5, moving
shapes 1-3.5, a cut between two held drawings that differ in one shape 5.6."""

CUT_RATIO = 4.0
"""A change this many times the motion around it is a cut (AdaptiveDetector's
idea; its default is 3). Cross-fade frames change 5-8 with neighbours at 4-6
(ratio ≈ 1.4); a cut between held drawings 5.6 with neighbours at 0."""

MOTION_FLOOR = 1.0
"""The motion around a frame counts as at least this, so two frames of pure
noise (0.1 vs 0.4) are not a cut by ratio alone."""

LOCAL_FRAMES = 3
"""Neighbours on each side whose median distance is a frame's local motion."""

FLASH_FRAMES = 3
"""A flash (lightning, a muzzle flash, a white frame) lasts at most this many
frames; the frame after it looks like the frame before it."""

GRADUAL_DISTANCE = 30.0
"""A window whose first and last frames differ this much without a hard cut
between them holds a gradual change (cross-fade, fade through black). Within
one shot, frames two seconds apart in the sample videos differ by at most 18."""


class WindowFrame:
    """One decoded frame of a window: its true time, and its small Lab signature,
    computed the first time it is asked for (colour conversion costs more than
    decoding, and a search looks at a few frames of each window only)."""

    __slots__ = ("t", "_to_rgb", "_signature")

    def __init__(self, t: float, to_rgb: Callable[[], np.ndarray]):
        self.t = t
        self._to_rgb = to_rgb
        self._signature: np.ndarray | None = None

    @property
    def signature(self) -> np.ndarray:
        if self._signature is None:
            self._signature = signature(self._to_rgb())
            self._to_rgb = None  # let the decoded picture go
        return self._signature


def signature(rgb: np.ndarray) -> np.ndarray:
    """The small Lab image frames are compared by (see SIGNATURE_WIDTH)."""
    import cv2

    height, width = rgb.shape[:2]
    small_height = max(1, round(height * SIGNATURE_WIDTH / width))
    small = cv2.resize(np.ascontiguousarray(rgb), (SIGNATURE_WIDTH, small_height), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.int16)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two signatures (0-255)."""
    return float(np.abs(a - b).mean())


def first_change(frames: Sequence[WindowFrame], until: float | None = None) -> float | None:
    """The time of the first frame after `frames[0]` (and at most `until`
    seconds; later frames only show whether a flash ends) that starts a new
    shot, None when they all continue the first frame's shot."""
    return _change(frames, 0, _last_inside(frames, until), first=True, depth=MAX_CHANGES)


def last_change(frames: Sequence[WindowFrame], until: float | None = None) -> float | None:
    """The time of the last frame up to `until` that starts a new shot (see `first_change`)."""
    return _change(frames, 0, _last_inside(frames, until), first=False, depth=MAX_CHANGES)


MAX_CHANGES = 3
"""Shot changes looked for in one window: a window is one sampling interval,
so more than this many shots in it are too short to matter to a clip edge."""


def _last_inside(frames: Sequence[WindowFrame], until: float | None) -> int:
    inside = len(frames) if until is None else sum(frame.t <= until for frame in frames)
    return inside - 1


def _change(frames: Sequence[WindowFrame], low: int, high: int, first: bool, depth: int,
            gradual: bool = True) -> float | None:
    """A shot change in frames[low+1 .. high], found by bisection: the frame
    where the window stops looking like frames[low] and starts looking like
    frames[high]; then the first or the last of several (a further change on
    that side must be a hard cut: half a fade is no second fade)."""
    if high - low < 1 or depth <= 0:
        return None
    start, end = frames[low].signature, frames[high].signature
    if distance(start, end) < MIN_CUT_DISTANCE:
        return None  # one shot (a flash inside it ends before the window does)
    a, b = low, high
    while b - a > 1:
        middle = (a + b) // 2
        here = frames[middle].signature
        if distance(here, start) <= distance(here, end):
            a = middle
        else:
            b = middle
    found = _classify(frames, b, low, high, gradual)
    if found is not None and found != b:  # a flash: the change, if any, is after it
        return _change(frames, found, high, first, depth - 1, gradual)
    if found is None:
        return None
    other = (_change(frames, low, b - 1, first, depth - 1, False) if first
             else _change(frames, b, high, first, depth - 1, False))
    return other if other is not None else frames[b].t


def _classify(frames: Sequence[WindowFrame], b: int, low: int, high: int, gradual: bool) -> int | None:
    """b when frame b starts a new shot (a hard cut, or the midpoint of a gradual
    change between frames[low] and frames[high]); the index of the frame that
    ends a flash starting at b; None when frame b continues its shot."""
    steps = {i: distance(frames[i - 1].signature, frames[i].signature)
             for i in range(max(low + 1, b - LOCAL_FRAMES), min(high, b + LOCAL_FRAMES) + 1)}
    if _is_cut(steps, b):
        flash = _flash_end(frames, b, steps[b])
        return b if flash is None else flash
    if gradual and distance(frames[low].signature, frames[high].signature) >= GRADUAL_DISTANCE:
        return b
    return None


def _is_cut(steps: dict[int, float], index: int) -> bool:
    step = steps[index]
    if step >= CUT_DISTANCE:
        return True
    if step < MIN_CUT_DISTANCE:
        return False
    around = [value for i, value in steps.items() if i != index]
    motion = max(float(np.median(around)) if around else 0.0, MOTION_FLOOR)
    return step >= CUT_RATIO * motion


def _flash_end(frames: Sequence[WindowFrame], i: int, step: float) -> int | None:
    """The index of the frame that ends a flash starting at frame i, None when
    frame i starts a new shot instead."""
    before = frames[i - 1].signature
    for j in range(i + 1, min(i + FLASH_FRAMES, len(frames) - 1) + 1):
        if distance(before, frames[j].signature) < max(MIN_CUT_DISTANCE, step / CUT_RATIO):
            return j
    return None
