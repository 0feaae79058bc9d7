"""Finding video files and naming them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Iterable

from .records import Video

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".ts", ".m2ts",
     ".wmv", ".flv", ".ogv", ".3gp", ".vob", ".mts"}
)


def video_for(path: str | os.PathLike) -> Video:
    """The `Video` record for a file: absolute path, episode name, stable id."""
    absolute = os.path.abspath(os.fspath(path))
    video_id = hashlib.sha1(absolute.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return Video(path=absolute, episode=Path(absolute).stem, video_id=video_id)


def find_videos(paths: Iterable[str | os.PathLike]) -> tuple[list[Video], list[tuple[str, str]]]:
    """Expand files and folders (recursively) into videos, sorted within each folder.

    Files named explicitly are taken whatever their extension; inside folders only
    files with a known video extension are. Returns (videos, problems) where each
    problem is (path, reason) for a path that does not exist or cannot be read.
    """
    videos: list[Video] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        video = video_for(path)
        if video.path not in seen:
            seen.add(video.path)
            videos.append(video)

    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for name in sorted(files):
                    if Path(name).suffix.lower() in VIDEO_EXTENSIONS and not name.startswith("."):
                        add(os.path.join(root, name))
        elif os.path.isfile(path):
            add(path)
        elif os.path.lexists(path):
            problems.append((path, "not a regular file or folder"))
        else:
            problems.append((path, "no such file or folder"))
    return videos, problems
