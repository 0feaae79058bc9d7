"""The small typed records that cross stage boundaries: sample → encode → store → search."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class Video:
    """A video file as the pipeline knows it."""

    path: str  # absolute path
    episode: str  # the file name without extension: what users call the video
    video_id: str  # stable id derived from the path, used in frame ids


@dataclass(frozen=True)
class SampledFrame:
    """One frame kept by the sampler: its true presentation time and RGB pixels."""

    video: Video
    t: float  # seconds from the start of the video, from the frame's pts × time_base
    pixels: np.ndarray = field(repr=False)  # H×W×3 uint8 RGB


@dataclass(frozen=True)
class Hit:
    """A stored frame that matched a query."""

    episode: str
    path: str
    t: float
    score: float  # cosine similarity, higher is better
    vector: np.ndarray | None = field(default=None, repr=False, compare=False)  # the frame's embedding, when fetched


@dataclass(frozen=True)
class Clip:
    """Neighbouring hits of one video merged into a time range."""

    episode: str
    path: str
    start: float
    end: float
    score: float  # the best hit's score
    hits: tuple[Hit, ...]
    fps: Fraction | None = None  # the video's frame rate, when the index knows it
    duplicates: tuple["Clip", ...] = ()  # lower-ranked clips showing the same shot, folded into this one
    grid_start: float | None = None  # the sampling-grid edges the clip had before it snapped to
    grid_end: float | None = None  # shot changes (pipeline/snap.py); None when it did not snap

    @property
    def best(self) -> Hit:
        return max(self.hits, key=lambda hit: hit.score)
