"""Decoder backends: PyAV first, OpenCV as the fallback. Callers never see which runs.

A backend yields `DecodedFrame`s in presentation order: the frame's true time
(pts × time_base, relative to the stream start) and a function that converts
it to RGB. Converting is deferred because the sampler keeps only a few frames
and colour conversion costs about as much as decoding.
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Iterator

import numpy as np

from .errors import VideoError
from .timecode import readable_rate

log = logging.getLogger(__name__)

MAX_CONSECUTIVE_DECODE_FAILURES = 50
"""Isolated corrupt packets are skipped; this bound makes a file that is corrupt
from some point on (a truncated download) end instead of looping over garbage."""


@dataclass(frozen=True)
class DecodedFrame:
    t: float  # seconds since the start of the video
    to_rgb: Callable[..., np.ndarray]  # to_rgb(size=None): H×W×3 uint8, or resized to size=(height, width)
    pts: int | None = None  # the stream's own pts, where the backend knows it (PyAV)
    to_small: Callable[[int], np.ndarray] | None = None  # to_small(width): a small RGB image of it (see small_rgb)


@dataclass(frozen=True)
class StreamInfo:
    duration: float | None  # seconds, when the container says
    rate: Fraction | None  # average frame rate, when known
    width: int
    height: int
    backend: str


class PyAVDecoder:
    """Decodes with PyAV (FFmpeg), frame-threaded."""

    name = "pyav"

    def __init__(self, path: str, threads: int = 0):
        import av

        self._av = av
        self._path = path
        try:
            self._container = av.open(path)
        except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise VideoError(f"cannot open as a video ({_reason(exc)})") from exc
        if not self._container.streams.video:
            self._container.close()
            raise VideoError("has no video stream (audio-only or not a video)")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        if threads:  # 0: FFmpeg picks (every core); worker processes each take a share
            self._stream.thread_count = threads
        ctx = self._stream.codec_context
        if ctx is None or not ctx.width:
            self._container.close()
            raise VideoError("video stream has no decodable picture (unsupported codec?)")
        self.decode_errors = 0

    def info(self) -> StreamInfo:
        stream = self._stream
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration:
            duration = self._container.duration / 1_000_000
        rate = stream.average_rate or stream.guessed_rate
        return StreamInfo(
            duration=duration,
            rate=container_rate(rate),
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            backend=self.name,
        )

    supports_seeking = True

    def keyframes(self) -> list[tuple[float, int]]:
        """Every keyframe as (time in seconds, pts), in time order, from a quick
        demux of packet flags (no decoding): exact pts, whatever the container's
        index says. Costs one read of the file, a few % of decoding it."""
        av = self._av
        stream = self._stream
        time_base = stream.time_base
        start = stream.start_time or 0
        found = []
        try:
            with av.open(self._path) as container:
                video = container.streams.video[0]
                for packet in container.demux(video):
                    if packet.is_keyframe and packet.pts is not None:
                        found.append((max(float((packet.pts - start) * time_base), 0.0), packet.pts))
        except av.error.FFmpegError:
            pass  # a damaged tail: the keyframes before it still help
        return sorted(found)

    def frames(self, seek_pts: int | None = None, keyframes_only: bool = False) -> Iterator[DecodedFrame]:
        """Decode in presentation order from the start, or from the keyframe at or
        before `seek_pts` (stream pts). With `keyframes_only`, FFmpeg skips every
        other frame without decoding it (use only right after a seek or at the start:
        switching back mid-stream would decode frames whose references were skipped)."""
        av = self._av
        stream = self._stream
        time_base = stream.time_base
        start = stream.start_time or 0
        failures = 0
        if seek_pts is not None:
            self._container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
        stream.codec_context.skip_frame = "NONKEY" if keyframes_only else "DEFAULT"
        try:
            for packet in self._container.demux(stream):
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError:
                    self.decode_errors += 1
                    failures += 1
                    if failures > MAX_CONSECUTIVE_DECODE_FAILURES:
                        log.warning("giving up after %d corrupt packets in a row", failures)
                        return
                    continue
                failures = 0
                for frame in decoded:
                    if frame.pts is None:
                        continue  # no presentation time: we will not invent one
                    t = float((frame.pts - start) * time_base)
                    yield DecodedFrame(max(t, 0.0), _rgb_of(frame), frame.pts, functools.partial(small_rgb, frame))
        except av.error.FFmpegError as exc:
            # Demuxing itself failed: a truncated or damaged file. Keep what we got.
            self.decode_errors += 1
            log.warning("stopped reading early: %s", _reason(exc))

    def start_pts(self) -> int:
        return self._stream.start_time or 0

    def pts_at(self, t: float) -> int:
        """The stream pts of `t` seconds from the start of the video."""
        return self.start_pts() + int(t / self._stream.time_base)

    def close(self) -> None:
        self._container.close()


def resize_rgb(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An H×W×3 uint8 image resized to size=(height, width) the way CLIP's processors
    resize (bicubic when enlarging; when shrinking, OpenCV's area averaging, which
    agrees with their antialiased bicubic to cosine 0.99997 on the embeddings:
    bench/RESULTS.md). FFmpeg's scaler straight from yuv420p was measured at
    0.9988, under the 0.999 kept as the bar, because it scales chroma apart."""
    import cv2

    height, width = size
    if (height, width) == pixels.shape[:2]:
        return pixels
    shrinking = height * width < pixels.shape[0] * pixels.shape[1]
    return cv2.resize(pixels, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)


SMALL_SOURCE_ROWS = 2
"""A small image's pixel averages this many rows of each plane (every column
of them), not all the rows under it: planes are read every k-th row, so that
they are at most this many times the small height (720 high: every 10th).
Reading the rows costs the time (a decoded frame is cold in memory by then),
so this halves the cost of reading every 4th row and column at the same
number of samples a pixel (40 at 720p), and makes shot signatures cheap
enough to take of every frame while indexing (bench/RESULTS.md, issue 14)."""

YUV_FORMATS = {"yuv420p": False, "yuvj420p": True, "yuv422p": False, "yuvj422p": True,
               "yuv444p": False, "yuvj444p": True}
"""8-bit planar YUV formats read straight from their planes, and whether their range is full (JPEG)."""

def _yuv_to_rgb(limited: bool) -> np.ndarray:
    """The 3 × 4 affine map from BT.601 YUV to RGB, for `cv2.transform`: limited range
    (Y 16-235, as FFmpeg's own conversion to rgb24 reads yuv420p) or full range (JPEG)."""
    matrix = (np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]]) if limited
              else np.array([[1.0, 0.0, 1.402], [1.0, -0.344, -0.714], [1.0, 1.772, 0.0]]))
    offset = np.array([16.0 if limited else 0.0, 128.0, 128.0])
    return np.hstack([matrix, (-matrix @ offset)[:, None]]).astype(np.float32)


_YUV_TO_RGB = {False: _yuv_to_rgb(True), True: _yuv_to_rgb(False)}  # by full_range


def small_height(height: int, width: int, small_width: int) -> int:
    """The height of a `small_width`-wide image of a height × width picture."""
    return max(1, round(height * small_width / width))


def small_rgb(frame, width: int) -> np.ndarray:
    """A decoded PyAV frame as a small RGB image `width` pixels wide (height in
    proportion), each pixel an average of the frame's area under it (of
    SMALL_SOURCE_ROWS of its rows), BT.601 colours. 8-bit planar YUV is read
    from its planes without a full-size colour conversion (0.15 ms a 720p
    frame, a fifteenth of decoding it); other formats go through FFmpeg's scaler.

    Raises VideoError when the frame cannot be converted."""
    import av
    import cv2

    size = (width, small_height(frame.height, frame.width, width))
    full_range = YUV_FORMATS.get(frame.format.name)
    try:
        if full_range is None:
            return frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA").to_ndarray()
        planes = [_rows(plane, size[1]) for plane in frame.planes[:3]]
    except (av.error.FFmpegError, ValueError) as exc:
        raise VideoError(f"cannot convert a decoded frame to RGB ({_reason(exc)})") from exc
    yuv = np.dstack([cv2.resize(plane, size, interpolation=cv2.INTER_AREA) for plane in planes])
    return cv2.transform(yuv, _YUV_TO_RGB[full_range])  # rounded and saturated to uint8


def _rows(plane, small_height: int) -> np.ndarray:
    """Every k-th row of a plane, as a view (see SMALL_SOURCE_ROWS)."""
    pixels = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
    return pixels[:: max(1, plane.height // (small_height * SMALL_SOURCE_ROWS))]


def _rgb_of(frame) -> Callable[..., np.ndarray]:
    def convert(size: tuple[int, int] | None = None) -> np.ndarray:
        import av

        try:
            pixels = frame.to_ndarray(format="rgb24")
        except (av.error.FFmpegError, ValueError) as exc:  # an odd pixel format or a broken frame
            raise VideoError(f"cannot convert a decoded frame to RGB ({_reason(exc)})") from exc
        return resize_rgb(pixels, size) if size is not None else pixels

    return convert


def container_rate(rate) -> Fraction | None:
    """A stream's frame rate as people write it (`timecode.readable_rate`):
    exact when it is an integer, n/1001 or a short decimal; within 0.005 fps
    of an NTSC rate (14985/500 from some muxers) 24000/1001, 30000/1001 or
    60000/1001, so timecodes and EDLs count drop-frame as editors expect; the
    average of a variable-frame-rate video (400/407) to a thousandth (0.983)."""
    if not rate:
        return None
    return readable_rate(Fraction(rate))


class OpenCVDecoder:
    """Decodes with OpenCV; used only when PyAV cannot open a file."""

    name = "opencv"
    supports_seeking = False  # OpenCV seeks by frame number, which is not exact: decode through

    def __init__(self, path: str):
        import cv2

        self._cv2 = cv2
        self._capture = cv2.VideoCapture(path)
        if not self._capture.isOpened():
            raise VideoError("cannot open as a video (OpenCV could not read it either)")
        self.decode_errors = 0

    def info(self) -> StreamInfo:
        cv2 = self._cv2
        fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        count = self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0
        return StreamInfo(
            duration=count / fps if fps and count else None,
            rate=container_rate(fps) if fps and math.isfinite(fps) and fps > 0 else None,
            width=int(self._capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            backend=self.name,
        )

    def frames(self) -> Iterator[DecodedFrame]:
        cv2 = self._cv2
        capture = self._capture
        while capture.grab():
            # POS_MSEC is the frame's pts × time_base as FFmpeg reports it.
            t = capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            yield DecodedFrame(max(t, 0.0), self._retrieve, None, self._small)

    def _retrieve(self, size: tuple[int, int] | None = None) -> np.ndarray:
        ok, bgr = self._capture.retrieve()
        if not ok:
            raise VideoError("OpenCV could not convert a decoded frame")
        rgb = self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB)
        return resize_rgb(rgb, size) if size is not None else rgb

    def _small(self, width: int) -> np.ndarray:
        rgb = self._retrieve()
        return resize_rgb(rgb, (small_height(rgb.shape[0], rgb.shape[1], width), width))

    def close(self) -> None:
        self._capture.release()


BACKENDS = (PyAVDecoder, OpenCVDecoder)


def open_decoder(path: str, backend: str | None = None):
    """Open `path` with the first backend that can read it (or the named one).

    Raises VideoError (with PyAV's reason) when no backend can open the file.
    """
    candidates = [b for b in BACKENDS if backend in (None, b.name)]
    if not candidates:
        raise ValueError(f"unknown decoder backend {backend!r}")
    first_error: VideoError | None = None
    for candidate in candidates:
        try:
            return candidate(path)
        except VideoError as exc:
            first_error = first_error or exc
    assert first_error is not None
    raise first_error


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '", 1)[0].strip() or type(exc).__name__
