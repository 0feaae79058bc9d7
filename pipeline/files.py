"""Finding video files, naming them, and fingerprinting their content."""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .records import Video

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts",
     ".wmv", ".flv", ".ogv", ".3gp", ".vob", ".mts"}
)

HASH_CHUNK_BYTES = 64 * 1024
"""Bytes read at the start, middle and end of a file for its content hash. Three
64 KiB reads tell apart any two real videos (headers, index atoms and payload
all differ) while hashing an hour-long file in milliseconds, not minutes."""


@dataclass(frozen=True)
class Fingerprint:
    """What `index` remembers about a file to tell whether it changed or moved."""

    size: int
    mtime_ns: int
    content: str  # fast partial content hash, see `content_hash`

    def as_metadata(self) -> dict:
        return {"size": self.size, "mtime_ns": self.mtime_ns, "hash": self.content}


def video_for(path: str | os.PathLike) -> Video:
    """The `Video` record for a file: absolute path, episode name, stable id.

    The id is derived from the path, so each path is its own video (two copies
    of one file are both searchable) and frame ids are the same on every run.
    """
    absolute = os.path.abspath(os.fspath(path))
    video_id = hashlib.sha1(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Video(path=absolute, episode=Path(absolute).stem, video_id=video_id)


def content_hash(path: str, size: int | None = None) -> str:
    """sha1 of the size and the first, middle and last HASH_CHUNK_BYTES of a file
    (the whole file when it is smaller than three chunks).

    Raises OSError when the file cannot be read.
    """
    digest = hashlib.sha1()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size if size is None else size
        digest.update(str(size).encode())
        if size <= 3 * HASH_CHUNK_BYTES:
            digest.update(fh.read())
        else:
            for offset in (0, size // 2 - HASH_CHUNK_BYTES // 2, size - HASH_CHUNK_BYTES):
                fh.seek(offset)
                digest.update(fh.read(HASH_CHUNK_BYTES))
    return digest.hexdigest()[:20]


def fingerprint(path: str) -> Fingerprint:
    """Size, modification time and content hash of a file. Raises OSError."""
    stat = os.stat(path)
    return Fingerprint(stat.st_size, stat.st_mtime_ns, content_hash(path, stat.st_size))


MP4_LIKE = frozenset({".mp4", ".m4v", ".mov", ".3gp"})


def lacks_mp4_index(path: str) -> bool:
    """Whether an MP4/MOV file has media data but no index (`moov` box): the
    signature of a file cut short before its writer added the index at the end."""
    if Path(path).suffix.lower() not in MP4_LIKE:
        return False
    boxes = set()
    try:
        with open(path, "rb") as fh:
            end = os.fstat(fh.fileno()).st_size
            offset = 0
            while offset + 8 <= end:
                fh.seek(offset)
                header = fh.read(16)
                size, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if size == 1 and len(header) == 16:
                    size = int.from_bytes(header[8:16], "big")
                elif size == 0:
                    size = end - offset
                if size < 8:
                    return False  # not a box structure we understand
                boxes.add(kind)
                offset += size
    except OSError:
        return False
    return b"mdat" in boxes and b"moov" not in boxes


def not_regular_reason(mode: int) -> str | None:
    """Why a file of this `st_mode` cannot be indexed, None for a regular file.

    A FIFO must never be opened for reading (that blocks until a writer
    comes), and its size of 0 says nothing about content."""
    if stat.S_ISREG(mode):
        return None
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file")
    return f"not a regular file ({kind}); only video files can be indexed"


def is_within(path: str, folders: Iterable[str]) -> bool:
    """Whether `path` is one of `folders` or lies below one of them (absolute paths)."""
    for folder in folders:
        folder = os.path.abspath(folder)
        if path == folder or path.startswith(folder.rstrip(os.sep) + os.sep):
            return True
    return False


def find_videos(paths: Iterable[str | os.PathLike]) -> tuple[list[Video], list[tuple[str, str]]]:
    """Expand files and folders (recursively) into videos, sorted within each folder.

    Files named explicitly are taken whatever their extension; inside folders only
    files with a known video extension are (a folder named like a video, say
    `x.mp4/`, is a folder and is searched). Returns (videos, problems) where each
    problem is (path, reason) for a path that does not exist or cannot be read.
    """
    videos: list[Video] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        try:
            reason = not_regular_reason(os.stat(path).st_mode)
        except OSError:
            reason = None  # indexing names the error (broken link, permission) with its reason
        if reason:
            problems.append((path, reason))
            return
        video = video_for(path)
        if video.path not in seen:
            seen.add(video.path)
            videos.append(video)

    def walk_error(exc: OSError) -> None:
        problems.append((exc.filename or "?", f"cannot list folder ({exc.strerror or exc})"))

    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path, onerror=walk_error):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in VIDEO_EXTENSIONS and not name.startswith("."):
                        add(os.path.join(root, name))
        elif os.path.isfile(path):
            add(path)
        elif os.path.islink(path):
            problems.append((path, "broken symbolic link (its target does not exist)"))
        elif os.path.lexists(path):
            add(path)  # a FIFO, socket or device: named with what it is
        else:
            problems.append((path, "no such file or folder"))
    return videos, problems
