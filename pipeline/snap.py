"""Clip edges that sit on shot changes, not on the sampling grid (search stage).

A grid clip starts at its first matching sample and ends at the sample after
its last one. The shot it shows may start anywhere after the sample before
(which did not match, or matched another clip) and end anywhere up to the
sample after. `snap_clips` decodes just those two windows of each returned
clip and moves each edge to the shot change found there (`pipeline/shots.py`):

- the start to the last change in (previous sample, first hit]; the end to the
  first change in (last hit, next sample] (the first frame of the next shot:
  ends are exclusive). So an edge never passes a sample that did not match and
  never enters the next shot.
- no change in a window: that edge keeps its grid time. A shot longer than the
  match keeps the grid edge; a clip never grows past its neighbouring samples.

Where the index recorded a video's shot changes while indexing it
(`pipeline/cuts.py`: the same detector on the same windows of frames),
`snap_to_cuts` reads the edges from that list and decodes nothing: that is
the default path, microseconds a clip. Videos indexed before cuts were
recorded (or sampled by seeking or at keyframes, which skip frames) fall back
to `snap_clips`, which decodes the two windows of each returned clip at search
time: bench/snap_cost.py measures it at ~0.65 s of CPU for k = 10 on the
sample index and seconds at 720p (bench/RESULTS.md), over the 300 ms issue 14
allows, which is why cuts are recorded. A video that can no longer be opened
or decoded keeps its grid clips.
"""

from __future__ import annotations

import bisect
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import groupby
from typing import Iterator, Mapping, Sequence

import numpy as np

from .errors import ScenegrepError
from .records import Clip
from .shots import FLASH_FRAMES, WindowFrame, first_change, last_change, small_image

log = logging.getLogger(__name__)

CONTINUE_SECONDS = 4.0
"""A window that starts at most this long after the last frame decoded is
reached by decoding on rather than seeking: seeking restarts at the keyframe
before it, often further back (x264 places one every 10 s at most)."""

SNAP_THREADS = 2
"""Videos decoded at once: FFmpeg decodes without Python's lock, so the k
clips of a search spread over several videos snap on two cores in about half
the time; more threads than the cores of the machines we aim at only compete."""

TIME_SLACK = 1e-3
"""Seconds of slack when matching a window's bounds to frame times: stored
sample times are true frame times, rounded to the microsecond in the index."""


def edge_windows(clip: Clip, every: float, times: np.ndarray | None = None) -> tuple[tuple[float, float] | None, tuple[float, float]]:
    """The (from, to) seconds searched for the clip's start and its end. With
    `times` (the video's stored samples), the start window runs from the sample
    before the first hit and the end window from the last hit to the sample
    after it (the clip's end after the last sample): the very frames
    `cuts.CutRecorder` looked at. Without, one interval before the first hit,
    and the clip's grid end (a grid sample is the first frame at or after its
    grid time: at 29.97 fps, one frame after the interval's ends). The start
    window is None at the video's start."""
    first, last = clip.hits[0].t, clip.hits[-1].t
    end = clip.end
    if times is not None:
        before = int(np.searchsorted(times, first - TIME_SLACK, "left"))
        previous = float(times[before - 1]) if before > 0 else 0.0
        after = int(np.searchsorted(times, last + TIME_SLACK, "right"))
        end = float(times[after]) if after < len(times) else clip.end
    else:
        previous = max(first - every, 0.0)
    start = (previous, first) if first > TIME_SLACK else None
    return start, (last, end)


class _WindowReader:
    """Decodes the frames of ascending time windows of one video, seeking only when it pays."""

    def __init__(self, path: str):
        from .decoders import open_decoder

        self._decoder = open_decoder(path)
        self._seekable = getattr(self._decoder, "supports_seeking", False)
        self._frames: Iterator | None = None
        self._held: list[WindowFrame] = []  # frames decoded past the last window, kept for the next one
        self._position = -np.inf
        self._cache: dict[tuple[float, float], list[WindowFrame]] = {}

    def window(self, low: float, high: float) -> list[WindowFrame]:
        """The frames from `low` to `high` seconds, plus up to FLASH_FRAMES after it."""
        key = (round(low, 6), round(high, 6))
        if key not in self._cache:
            self._cache[key] = self._read(low, high)
        return self._cache[key]

    def _read(self, low: float, high: float) -> list[WindowFrame]:
        replayable = self._held[0].t if self._held else self._position
        if self._frames is None or low < replayable - TIME_SLACK or (
                self._seekable and low - self._position > CONTINUE_SECONDS):
            if self._frames is not None and not self._seekable:
                return []  # OpenCV cannot go back: this edge keeps its grid time
            self._stop()
            self._held = []
            start = self._decoder.pts_at(max(low - TIME_SLACK, 0.0)) if self._seekable else None
            self._frames = iter(self._decoder.frames(start) if self._seekable else self._decoder.frames())
        pending, self._held = self._held, []
        found: list[WindowFrame] = []
        for frame in _chain(pending, self._frames):
            if not isinstance(frame, WindowFrame):  # freshly decoded
                self._position = max(self._position, frame.t)
                if frame.t < low - TIME_SLACK:
                    continue
                frame = WindowFrame(frame.t, functools.partial(small_image, frame))
            elif frame.t < low - TIME_SLACK:
                continue
            if frame.t > high + TIME_SLACK:
                self._held.append(frame)  # looked ahead: the next window may start here
            found.append(frame)
            if len(self._held) > FLASH_FRAMES:
                break
        return found

    def _stop(self) -> None:
        """End the decoding in progress now, not whenever the garbage collector
        gets to it: by then its container may be closed."""
        if self._frames is not None and hasattr(self._frames, "close"):
            self._frames.close()
        self._frames = None

    def close(self) -> None:
        self._stop()
        self._decoder.close()


def _chain(first: list, rest: Iterator) -> Iterator:
    # Not `yield from rest`: closing this generator would close the decoder's too.
    yield from first
    while True:
        try:
            yield next(rest)
        except StopIteration:
            return


def cuts_between(cuts: Sequence[float], low: float, high: float) -> Sequence[float]:
    """The recorded cuts (ascending) after `low` and up to `high`: the ones a
    search finds in the window (low, high], whose first frame is the sample at `low`."""
    return cuts[bisect.bisect_right(cuts, low + TIME_SLACK): bisect.bisect_right(cuts, high + TIME_SLACK)]


def snap_to_cuts(clip: Clip, cuts: Sequence[float], every: float, times: np.ndarray | None = None) -> Clip:
    """`clip` with its edges on the recorded shot changes `cuts` (ascending) in
    its edge windows, as `snap_clip` would find them by decoding, and its grid
    edges kept in `grid_start`/`grid_end`."""
    start_window, end_window = edge_windows(clip, every, times)
    start, end = clip.start, clip.end
    if start_window is not None:
        before = cuts_between(cuts, *start_window)
        start = before[-1] if len(before) else start
    after = cuts_between(cuts, *end_window)
    end = after[0] if len(after) else end
    return replace(clip, start=start, end=max(end, start), grid_start=clip.start, grid_end=clip.end)


def snap_all(clips: Sequence[Clip], every: float, recorded: Mapping[str, Sequence[float]],
             samples: Mapping[str, np.ndarray] | None = None) -> tuple[list[Clip], list[str]]:
    """Each clip with its edges on shot changes, order kept: from the cuts
    `recorded` for its video (path → cuts) where there are some, else by
    decoding (`snap_clips`). Returns the clips and the paths of the videos that
    were decoded."""
    samples = samples or {}
    unrecorded = [i for i, clip in enumerate(clips) if clip.path not in recorded]
    snapped = [clip if clip.path not in recorded else snap_to_cuts(clip, recorded[clip.path], every, samples.get(clip.path))
               for clip in clips]
    if unrecorded:
        for i, clip in zip(unrecorded, snap_clips([clips[i] for i in unrecorded], every, samples)):
            snapped[i] = clip
    return snapped, sorted({clips[i].path for i in unrecorded})


def snap_clip(clip: Clip, reader: _WindowReader, every: float, times: np.ndarray | None = None) -> Clip:
    """`clip` with its edges on the shot changes in its edge windows, and its
    grid edges kept in `grid_start`/`grid_end`."""
    start_window, end_window = edge_windows(clip, every, times)
    start, end = clip.start, clip.end
    if start_window is not None:
        change = last_change(reader.window(*start_window), until=start_window[1] + TIME_SLACK)
        start = start if change is None else change
    change = first_change(reader.window(*end_window), until=end_window[1] + TIME_SLACK)
    # A change on the next sample's own frame, past the grid end, leaves the end as it is (so does a recorded one)
    end = end if change is None or change > clip.end + TIME_SLACK else change
    return replace(clip, start=start, end=max(end, start), grid_start=clip.start, grid_end=clip.end)


def snap_clips(clips: Sequence[Clip], every: float, samples: Mapping[str, np.ndarray] | None = None) -> list[Clip]:
    """Each clip with its edges on shot changes (see the module docstring),
    order kept. `samples`: stored sample times of irregularly sampled videos.
    A video that cannot be opened or decoded keeps its grid clips. Videos are
    decoded SNAP_THREADS at a time."""
    samples = samples or {}
    order = sorted(range(len(clips)), key=lambda i: (clips[i].path, clips[i].start))
    groups = [list(group) for _, group in groupby(order, key=lambda i: clips[i].path)]
    snapped: dict[int, Clip] = {}
    with ThreadPoolExecutor(max_workers=SNAP_THREADS) as pool:
        done = pool.map(lambda indexes: _snap_video([clips[i] for i in indexes], every, samples), groups)
        for indexes, video_clips in zip(groups, done):
            snapped.update(zip(indexes, video_clips))
    return [snapped.get(i, clip) for i, clip in enumerate(clips)]


def _snap_video(clips: list[Clip], every: float, samples: Mapping[str, np.ndarray]) -> list[Clip]:
    """The clips of one video (ascending), snapped; as they are when it cannot be read."""
    path = clips[0].path
    try:
        reader = _WindowReader(path)
    except (ScenegrepError, OSError) as exc:
        log.info("keeping grid clips of %s: %s", path, exc)
        return clips
    try:
        return [snap_clip(clip, reader, every, samples.get(path)) for clip in clips]
    except (ScenegrepError, OSError) as exc:
        log.info("keeping grid clips of %s: %s", path, exc)
        return clips
    finally:
        reader.close()
