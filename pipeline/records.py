"""The small typed records that cross stage boundaries: sample → encode → store → search."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True)
class Clip:
    """Neighbouring hits of one video merged into a time range."""

    episode: str
    path: str
    start: float
    end: float
    score: float  # the best hit's score
    hits: tuple[Hit, ...]

    @property
    def best(self) -> Hit:
        return max(self.hits, key=lambda hit: hit.score)
