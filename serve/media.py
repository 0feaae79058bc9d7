"""Videos and thumbnails, found by index id only: a path never comes from a request."""

from __future__ import annotations

import io
import math
import mimetypes
import os
import threading
from collections import OrderedDict
from stat import S_ISREG

from fastapi import HTTPException
from fastapi.responses import FileResponse

from scenegrep.pipeline.errors import VideoError
from scenegrep.pipeline.present.thumbs import THUMB_WIDTH, frame_at
from scenegrep.pipeline.registry import VideoEntry

THUMBNAILS_KEPT = 2000
"""Thumbnails kept in memory (~15 KB each as JPEG, so ~30 MB): every result of
many searches, so paging back and forth never decodes a frame twice."""

END_SLACK = 1.0
"""Seconds past a video's recorded duration a thumbnail may still be asked for
(the last sample's clip ends one interval after it)."""

MEDIA_TYPES = {".mkv": "video/x-matroska", ".webm": "video/webm", ".ogv": "video/ogg", ".mov": "video/quicktime",
               ".m4v": "video/mp4", ".ts": "video/mp2t", ".m2ts": "video/mp2t", ".mts": "video/mp2t"}
"""Types `mimetypes` may not know on every system; the browser decides from them whether to try."""


def media_type(path: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    return MEDIA_TYPES.get(extension) or mimetypes.guess_type(path)[0] or "application/octet-stream"


MEDIA_HEADERS = {"Content-Security-Policy": "sandbox"}
"""A served file is never run as a page of this origin, whatever it holds (besides the
app's own headers: `guard.HEADERS`, no type sniffing among them)."""

MAX_THUMBNAIL_SECONDS = 1e7
"""Times past this (115 days) are no frame of any video, whether or not its duration is known."""


def video_response(entry: VideoEntry) -> FileResponse:
    """The video's file, streamed with HTTP Range support (seeking): shown inline when
    it is a video type, else as a download.

    Raises HTTPException 404 when the file is gone since indexing, 409 when the file at its
    path is not the one indexed, 503 when the entry does not name its own file (see `indexed_file`)."""
    indexed_file(entry)
    kind = media_type(entry.path)
    inline = kind.startswith("video/")
    return FileResponse(entry.path, media_type=kind if inline else "application/octet-stream",
                        content_disposition_type="inline" if inline else "attachment", headers=MEDIA_HEADERS)


def indexed_file(entry: VideoEntry) -> None:
    """Check that `entry` names its own file (its id is its path's: an edited or damaged
    registry entry could point anywhere) and that the file there is the one indexed (size and
    modification time, else the content hash: a file replaced, or a link to another, is not).

    Raises HTTPException 404, 409 or 503 (see `video_response`)."""
    from scenegrep.pipeline.files import content_hash
    from scenegrep.pipeline.registry import names_its_file

    if not names_its_file(entry):
        raise HTTPException(503, f"the index's entry for {entry.episode} does not name its own file (a damaged "
                                 "index); run `scenegrep doctor`, and index the videos again into a new index")
    try:
        stat = os.stat(entry.path)
    except OSError:
        stat = None
    if stat is None or not S_ISREG(stat.st_mode):
        raise HTTPException(404, f"the video file of {entry.episode} is gone since it was indexed; "
                                 "index again or run `scenegrep prune`")
    if entry.size is not None and (stat.st_size != entry.size or (
            stat.st_mtime_ns != entry.mtime_ns and entry.hash and content_hash(entry.path, stat.st_size) != entry.hash)):
        raise HTTPException(409, f"the video file of {entry.episode} changed since it was indexed; index it again")


class Thumbnails:
    """JPEGs of video frames, made on demand and kept (least recently used first out)."""

    def __init__(self, kept: int = THUMBNAILS_KEPT, width: int = THUMB_WIDTH):
        self.kept = kept
        self.width = width
        self._made: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def jpeg(self, entry: VideoEntry, t: float) -> bytes:
        """The frame shown at `t` seconds of `entry`, as JPEG bytes.

        Raises HTTPException 404 for a time outside the video or a frame that cannot be read."""
        if not math.isfinite(t) or t < 0 or t > MAX_THUMBNAIL_SECONDS or (
                entry.duration is not None and t > entry.duration + END_SLACK):
            raise HTTPException(404, f"{entry.episode} has no frame at {t} s")
        key = (entry.video_id, round(t * 1000))
        with self._lock:
            if key in self._made:
                self._made.move_to_end(key)
                return self._made[key]
        data = self._make(entry, key[1] / 1000)
        with self._lock:
            self._made[key] = data
            while len(self._made) > self.kept:
                self._made.popitem(last=False)
        return data

    def _make(self, entry: VideoEntry, t: float) -> bytes:
        from PIL import Image

        try:
            indexed_file(entry)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            raise HTTPException(404, f"no thumbnail for {entry.episode} at {t:.3f} s: {exc.detail}") from exc
        try:
            pixels = frame_at(entry.path, t)
        except (VideoError, OSError) as exc:
            raise HTTPException(404, f"no thumbnail for {entry.episode} at {t:.3f} s: {exc}") from exc
        image = Image.fromarray(pixels)
        if image.width > self.width:
            image = image.resize((self.width, max(1, round(image.height * self.width / image.width))),
                                 Image.Resampling.BILINEAR)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=85)
        return out.getvalue()
