"""A tqdm progress bar on stderr for indexing."""

from __future__ import annotations

import sys

from tqdm import tqdm


class TqdmProgress:
    """One bar over videos; the postfix shows where in the current video we are."""

    def __init__(self, videos: int):
        self._bar = tqdm(total=videos, unit="video", dynamic_ncols=True, leave=False, disable=None, file=sys.stderr)
        self._frames = 0
        self._seconds = 0.0
        self._duration = None
        self._episode = ""

    def start(self, video, duration):
        self._episode, self._duration, self._seconds = video.episode, duration, 0.0

    def advance(self, video_seconds, frames):
        self._seconds += video_seconds
        self._frames += frames
        of = f"/{self._duration:.0f}" if self._duration else ""
        self._bar.set_postfix_str(f"{self._episode} {self._seconds:.0f}{of} s, {self._frames} frames")

    def finish(self, result):
        self._bar.update(1)

    def write(self, line: str) -> None:
        tqdm.write(line, file=sys.stderr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._bar.close()
