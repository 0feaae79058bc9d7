"""Thumbnails: the frame at a clip's best hit, read from the video (never stored in the index)."""

from __future__ import annotations

import os
import re

import numpy as np

from ..errors import ScenegrepError, VideoError
from ..records import Clip

THUMB_WIDTH = 320
"""Pixels across: sharp enough to recognise a shot in a contact sheet, ~15 KB as JPEG."""

SEEK_SLACK = 1e-3
"""Seconds of tolerance when looking for the frame at a hit's time, which is
that frame's own pts; far below one frame at any real frame rate."""


def frame_at(path: str, t: float) -> np.ndarray:
    """The RGB frame shown at `t` seconds (the first frame at or after `t`;
    the last frame if `t` is past the end). PyAV seeks to the keyframe before
    `t` and decodes forward; OpenCV is the fallback.

    Raises VideoError when the file cannot be opened or has no frame there."""
    try:
        return _pyav_frame_at(path, t)
    except VideoError:
        return _opencv_frame_at(path, t)


def _pyav_frame_at(path: str, t: float) -> np.ndarray:
    import av

    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"cannot open as a video ({exc.__class__.__name__})") from exc
    try:
        with container:
            if not container.streams.video:
                raise VideoError("has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = stream.start_time or 0
            if stream.time_base and t > 0:
                container.seek(start + int(t / stream.time_base), stream=stream, backward=True, any_frame=False)
            last = None
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                last = frame
                if float((frame.pts - start) * stream.time_base) + SEEK_SLACK >= t:
                    break
            if last is None:
                raise VideoError("no decodable frame near that time")
            return last.to_ndarray(format="rgb24")
    except av.error.FFmpegError as exc:
        raise VideoError(f"cannot decode a frame at {t:.3f} s ({exc.__class__.__name__})") from exc


def _opencv_frame_at(path: str, t: float) -> np.ndarray:
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        if not capture.isOpened():
            raise VideoError("cannot open as a video")
        capture.set(cv2.CAP_PROP_POS_MSEC, t * 1000.0)
        ok, bgr = capture.read()
        if not ok:
            raise VideoError(f"no frame at {t:.3f} s")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def thumbnail_name(rank: int, clip: Clip) -> str:
    """A file name that sorts by rank and says where the frame is from."""
    episode = re.sub(r"[^A-Za-z0-9._-]+", "_", clip.episode)[:60] or "clip"
    return f"{rank:03d}_{episode}_{clip.best.t:09.3f}.jpg"


def write_thumbnails(clips: list[Clip], folder: str, width: int = THUMB_WIDTH) -> tuple[list[str | None], list[str]]:
    """Save one JPEG per clip (its best hit's frame) in `folder`.

    Returns (paths, warnings): a path per clip, None where the frame could
    not be read (the warning says why). Raises ScenegrepError when `folder`
    cannot be created."""
    from PIL import Image

    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise ScenegrepError(f"cannot create the thumbnail folder {folder}: {exc.strerror or exc}") from exc
    paths: list[str | None] = []
    warnings: list[str] = []
    for rank, clip in enumerate(clips, 1):
        try:
            pixels = frame_at(clip.path, clip.best.t)
        except (VideoError, OSError) as exc:
            warnings.append(f"no thumbnail for #{rank} ({clip.path} at {clip.best.t:.3f} s): {exc}")
            paths.append(None)
            continue
        image = Image.fromarray(pixels)
        if image.width > width:
            image = image.resize((width, max(1, round(image.height * width / image.width))), Image.Resampling.BILINEAR)
        target = os.path.join(folder, thumbnail_name(rank, clip))
        image.save(target, quality=85)
        paths.append(target)
    return paths, warnings
