"""Thumbnails: the frame at a clip's best hit, read from the video (never stored in the index)."""

from __future__ import annotations

import os
import re
from contextlib import suppress

import numpy as np

from ..decoders import open_decoder
from ..errors import ScenegrepError, VideoError
from ..records import Clip

THUMB_WIDTH = 320
"""Pixels across: sharp enough to recognise a shot in a contact sheet, ~15 KB as JPEG."""

SEEK_SLACK = 1e-3
"""Seconds of tolerance when looking for the frame at a hit's time, which is
that frame's own pts; far below one frame at any real frame rate."""


def frame_at(path: str, t: float) -> np.ndarray:
    """The RGB frame shown at `t` seconds (the first frame at or after `t`;
    the last frame if `t` is past the end), read with the decoder backends:
    PyAV seeks to the keyframe before `t` and decodes forward; the OpenCV
    fallback decodes from the start.

    Raises VideoError when the file cannot be opened or has no frame there."""
    decoder = open_decoder(path)
    try:
        seekable = getattr(decoder, "supports_seeking", False) and t > 0
        frames = decoder.frames(seek_pts=decoder.pts_at(t)) if seekable else decoder.frames()
        last = None
        for frame in frames:
            last = frame
            if frame.t + SEEK_SLACK >= t:
                break
        if last is None:
            raise VideoError(f"no decodable frame near {t:.3f} s")
        return last.to_rgb()
    finally:
        decoder.close()


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
        partial = f"{target}.part"  # whole or not at all, like the exports
        try:
            image.save(partial, format="JPEG", quality=85)
            os.replace(partial, target)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(partial)
            raise ScenegrepError(f"cannot write thumbnail {target}: {exc.strerror or exc}") from exc
        paths.append(target)
    return paths, warnings
