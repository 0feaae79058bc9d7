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


class ClusterProgress(TqdmProgress):
    """The bar of a `--ray` run: videos done, frames, video-seconds per second, workers alive."""

    def __init__(self, videos: int):
        super().__init__(videos)
        self._started = None
        self._nodes = self._encoders = 0

    def start(self, video, duration):
        pass  # many videos are in flight: the postfix shows totals, not one video

    def advance(self, video_seconds, frames):
        import time

        self._started = self._started or time.perf_counter() - 1e-3
        self._seconds += video_seconds
        self._frames += frames
        self._show()

    def alive(self, nodes: int, encoders: int) -> None:
        self._nodes, self._encoders = nodes, encoders
        self._show()

    def _show(self):
        import time

        rate = self._seconds / (time.perf_counter() - self._started) if self._started else 0.0
        self._bar.set_postfix_str(f"{self._frames} frames, {rate:.0f} video-s/s, "
                                  f"{self._nodes} node(s), {self._encoders} encoder(s) alive")
