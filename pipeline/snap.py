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

Cuts are found at search time for the k returned clips only, not while
indexing, so the index, its format and the indexing speed stay as they are and
existing indexes snap too. bench/snap_cost.py measures the cost
(bench/RESULTS.md): decoding each window from the keyframe before it, it is
over the 300 ms this was allowed for k = 10, and grows with resolution and
keyframe spacing; recording cuts while indexing is the way to meet it, with
this path as the fallback. A video that can no longer be opened or decoded
keeps its grid clips.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from itertools import groupby
from typing import Iterator, Mapping, Sequence

import numpy as np

from .errors import ScenegrepError
from .records import Clip
from .shots import FLASH_FRAMES, WindowFrame, first_change, last_change

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
    """The (from, to) seconds searched for the clip's start and its end. The
    start window runs from the sample before the first hit (`times`: the stored
    samples of an irregularly sampled video, else one interval earlier), None at
    the video's start; the end window from the last hit to the clip's grid end."""
    first, last = clip.hits[0].t, clip.hits[-1].t
    if times is not None:
        before = int(np.searchsorted(times, first - TIME_SLACK, "left"))
        previous = float(times[before - 1]) if before > 0 else 0.0
    else:
        previous = max(first - every, 0.0)
    start = (previous, first) if first > TIME_SLACK else None
    return start, (last, clip.end)


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
                frame = WindowFrame(frame.t, frame.to_rgb)
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


def snap_clip(clip: Clip, reader: _WindowReader, every: float, times: np.ndarray | None = None) -> Clip:
    """`clip` with its edges on the shot changes in its edge windows, and its
    grid edges kept in `grid_start`/`grid_end`."""
    start_window, end_window = edge_windows(clip, every, times)
    start, end = clip.start, clip.end
    if start_window is not None:
        change = last_change(reader.window(*start_window), until=start_window[1] + TIME_SLACK)
        start = start if change is None else change
    change = first_change(reader.window(*end_window), until=end_window[1] + TIME_SLACK)
    end = end if change is None else change
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
