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

Why our own detector rather than PySceneDetect's: its detectors take a frame
number stream and report cuts through a flash filter that either merges or
suppresses cuts closer than `min_scene_len` (a flash inside a shot still
comes out as one cut, and a real cut in the first frames of a window is
dropped); a window-sized decision needs the flash test above and the gradual
rule, which it does not have; and its 0.7 wheel pulls in the GUI OpenCV build
that conflicts with our headless one. The scores are its scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

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


@dataclass(frozen=True)
class WindowFrame:
    """One decoded frame of a window: its true time and its small Lab signature."""

    t: float
    signature: np.ndarray  # h×w×3 int16


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


def shot_changes(frames: Sequence[WindowFrame], until: float | None = None) -> list[float]:
    """Times of the frames in `frames[1:]` (up to `until` seconds, when given:
    frames after it only show whether a flash ends) that start a new shot,
    ascending: hard cuts (flashes left out), else the midpoint of a gradual
    change, else none."""
    if until is not None:
        inside = sum(frame.t <= until for frame in frames)
        return [t for t in shot_changes(frames, None) if t <= until] if inside >= 2 else []
    if len(frames) < 2:
        return []
    steps = [distance(frames[i - 1].signature, frames[i].signature) for i in range(1, len(frames))]
    cuts = []
    i = 1
    while i < len(frames):
        step = steps[i - 1]
        if _is_cut(steps, i - 1):
            back = _flash_end(frames, i, step)
            if back is None:
                cuts.append(frames[i].t)
            else:
                i = back  # the frame after the flash continues the shot
        i += 1
    if cuts:
        return cuts
    first, last = frames[0].signature, frames[-1].signature
    if distance(first, last) < GRADUAL_DISTANCE:
        return []
    for frame in frames[1:]:
        if distance(frame.signature, last) < distance(frame.signature, first):
            return [frame.t]
    return []


def _is_cut(steps: list[float], index: int) -> bool:
    step = steps[index]
    if step >= CUT_DISTANCE:
        return True
    if step < MIN_CUT_DISTANCE:
        return False
    around = steps[max(0, index - LOCAL_FRAMES) : index] + steps[index + 1 : index + 1 + LOCAL_FRAMES]
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
