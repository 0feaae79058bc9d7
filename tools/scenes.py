"""Tiny deterministic renderer for synthetic "scenes" (shared by the tools).

A scene is a single flat-coloured shape on a flat background, optionally
moving.  It is described by :class:`Scene` (shape, colour, background colour,
motion, plus a few geometric knobs) and rendered for a time ``t`` (seconds
since the start of the scene) with :func:`render`.  :func:`caption` gives the
English description used as ground truth, e.g.
``"a red circle bouncing on a blue background"``.

Used by:

* ``tools/make_sample_videos.py`` -- renders the committed sample videos and
  their ``annotations.json`` ground truth;
* ``tools/train_mini_clip.py`` -- renders random scenes to train the tiny
  CLIP test fixture in ``sample_videos/mini_clip/``.

Geometry: the shape always stays inside the *central square* of the frame
(side = frame height for a landscape frame).  CLIP preprocessing resizes the
short edge and centre-crops a square, so anything near the left/right edges of
a 16:9 frame would be cut away.  Positions (``x``, ``y``) and ``size`` are
therefore expressed in units of that central square (0..1).

Everything here is pure numpy + PIL and fully deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

# --------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

#: Colour name -> RGB.  Used both for shapes and for backgrounds.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (35, 70, 225),
    "yellow": (245, 215, 30),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}

#: Motion names; "still" is rendered static and omitted from captions.
MOTIONS: tuple[str, ...] = (
    "still",
    "moving left",
    "moving right",
    "moving up",
    "moving down",
    "bouncing",
)

#: Synonyms accepted in free-text queries (the mini CLIP is trained on them).
SHAPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "ball"),
    "square": ("square",),
    "triangle": ("triangle",),
    "star": ("star",),
}


@dataclass(frozen=True)
class Scene:
    """One synthetic scene.

    Attributes:
        shape: one of :data:`SHAPES`.
        colour: shape colour, a key of :data:`COLOURS`.
        background: background colour, a key of :data:`COLOURS`
            (should differ from ``colour``).
        motion: one of :data:`MOTIONS`.
        x, y: centre of the shape for a "still" scene and the starting
            point / anchor for motions, in central-square units (0..1).
        size: shape diameter as a fraction of the central square side.
        duration: nominal scene length in seconds; linear motions cross
            the central square once over this period (then repeat).
    """

    shape: str
    colour: str
    background: str
    motion: str = "still"
    x: float = 0.5
    y: float = 0.5
    size: float = 0.4
    duration: float = 5.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}")
        if self.colour not in COLOURS:
            raise ValueError(f"unknown colour {self.colour!r}")
        if self.background not in COLOURS:
            raise ValueError(f"unknown background {self.background!r}")
        if self.motion not in MOTIONS:
            raise ValueError(f"unknown motion {self.motion!r}")


def caption(scene: Scene, *, motion: bool = True, shape_word: str | None = None) -> str:
    """Ground-truth caption, e.g. ``"a red circle bouncing on a blue background"``.

    ``motion=False`` drops the motion words; ``shape_word`` overrides the shape
    noun (e.g. ``"ball"`` for a circle).  Still scenes carry no motion words.
    """
    noun = shape_word or scene.shape
    words = ["a", scene.colour, noun]
    if motion and scene.motion != "still":
        words.append(scene.motion)
    words += ["on", "a", scene.background, "background"]
    return " ".join(words)


# --------------------------------------------------------------------------
# Motion
# --------------------------------------------------------------------------


def _pingpong(p: float) -> float:
    """Triangle wave: 0 -> 1 -> 0 over p in [0, 2)."""
    p = p % 2.0
    return p if p <= 1.0 else 2.0 - p


def position(scene: Scene, t: float) -> tuple[float, float]:
    """Centre of the shape at time ``t`` in central-square units."""
    r = scene.size / 2.0
    lo, hi = r, 1.0 - r
    span = hi - lo
    phase = (t / scene.duration) % 1.0 if scene.duration > 0 else 0.0
    clamp = lambda v: min(hi, max(lo, v))  # noqa: E731
    x, y = clamp(scene.x), clamp(scene.y)
    m = scene.motion
    if m == "moving left":
        x = hi - span * phase
    elif m == "moving right":
        x = lo + span * phase
    elif m == "moving up":
        y = hi - span * phase
    elif m == "moving down":
        y = lo + span * phase
    elif m == "bouncing":
        # Bounces ~ once per second on the "floor", drifting sideways.
        x = lo + span * _pingpong(2.0 * phase + scene.x)
        y = hi - span * 0.8 * abs(math.sin(math.pi * t / 1.0))
    return x, y


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------


def _shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        s = r * 0.9  # visually similar area to the circle
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if shape == "triangle":
        return [
            (cx + r * math.cos(math.radians(a)), cy - r * math.sin(math.radians(a)))
            for a in (90, 210, 330)
        ]
    if shape == "star":
        pts = []
        for k in range(10):
            a = math.radians(90 + 36 * k)
            rr = r if k % 2 == 0 else r * 0.42
            pts.append((cx + rr * math.cos(a), cy - rr * math.sin(a)))
        return pts
    raise ValueError(shape)


def render(scene: Scene, t: float, width: int = 320, height: int = 180) -> np.ndarray:
    """Render ``scene`` at time ``t`` (s) as an ``(height, width, 3)`` uint8 RGB array.

    The shape is kept inside the central ``min(width, height)`` square.
    """
    side = min(width, height)
    ox, oy = (width - side) / 2.0, (height - side) / 2.0
    img = Image.new("RGB", (width, height), COLOURS[scene.background])
    draw = ImageDraw.Draw(img)
    u, v = position(scene, t)
    cx, cy = ox + u * side, oy + v * side
    r = scene.size * side / 2.0
    fill = COLOURS[scene.colour]
    if scene.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_shape_polygon(scene.shape, cx, cy, r), fill=fill)
    return np.asarray(img, dtype=np.uint8).copy()


__all__ = [
    "SHAPES",
    "COLOURS",
    "MOTIONS",
    "SHAPE_SYNONYMS",
    "Scene",
    "caption",
    "position",
    "render",
]
