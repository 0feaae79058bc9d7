"""Where an export may be written: never over the index or an indexed video.

`--export` takes any file name, and a slip (`--export chroma.sqlite3`, a
video's name, a link to one) would destroy what scenegrep depends on. An
existing export is rewritten: re-running a search into the same file is the
common case.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import ScenegrepError
from .names import visible


@dataclass(frozen=True)
class Protected:
    """Folders an export must not write into and files it must not replace, each with what it
    is ("the index folder", "an indexed video"). Folders are kept by real path (links
    resolved); files by name, so that thousands of videos cost no system call until an
    export's target exists and has a video's name."""

    folders: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # casefolded name → [(path, what)]
    _inodes: dict[tuple[int, int], str] = field(default_factory=dict, compare=False)  # filled on first need

    @classmethod
    def of(cls, folders: dict[str, str] | None = None, files: dict[str, str] | None = None) -> Protected:
        by_name: dict[str, list[tuple[str, str]]] = {}
        for path, what in (files or {}).items():
            by_name.setdefault(os.path.basename(path).casefold(), []).append((path, what))
        return cls({os.path.realpath(path): what for path, what in (folders or {}).items()}, by_name)

    def reason(self, path: str) -> str | None:
        """Why nothing may be written at `path`, or None when it may."""
        real = os.path.realpath(path)
        for folder, what in self.folders.items():
            if real == folder or real.startswith(folder.rstrip(os.sep) + os.sep):
                return f"it is inside {what} {visible(folder)}"
        if not os.path.exists(real):
            return None  # nothing there to replace
        # The same file, however it is named: by name first (a link, another spelling on a
        # case-insensitive disk), then by inode (an indexed path that is itself a link to a file
        # named otherwise). A hard link under another name is safe: the rename replaces only the link.
        for other, what in self.files.get(os.path.basename(real).casefold(), []):
            try:
                if os.path.samefile(real, other):
                    return f"it is {what}"
            except OSError:
                continue
        try:
            stat = os.stat(real)
        except OSError:
            return None
        return self._by_inode().get((stat.st_dev, stat.st_ino))

    def _by_inode(self) -> dict[tuple[int, int], str]:
        """(device, inode) of every protected file that exists: one stat each, once per run."""
        if not self._inodes:
            for entries in self.files.values():
                for path, what in entries:
                    try:
                        stat = os.stat(path)
                    except OSError:
                        continue
                    self._inodes[(stat.st_dev, stat.st_ino)] = f"it is {what}"
            self._inodes.setdefault((-1, -1), "")  # marks the map as built, even when empty
        return self._inodes


def checked_target(path: str, protected: Protected | None = None) -> str:
    """The real file an export to `path` writes (a link's target, so the link keeps
    pointing at the export), after checking that it may be written.

    Raises ScenegrepError when the name is not valid UTF-8 (exports list paths beside
    them as UTF-8 text, as the index stores them), the folder does not exist, the path
    is an existing folder, device or pipe, or it is protected."""
    shown = visible(path)
    try:
        os.fsdecode(path).encode("utf-8")
    except UnicodeEncodeError:
        raise ScenegrepError(f"cannot write {shown}: its name is not valid UTF-8; choose a UTF-8 name") from None
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise ScenegrepError(f"cannot write {shown}: folder {visible(os.path.dirname(os.path.abspath(path)))} "
                             f"does not exist")
    if os.path.lexists(real) and not os.path.isfile(real):
        raise ScenegrepError(f"cannot write {shown}: it is not a regular file (a folder, device or pipe); "
                             f"name a file")
    reason = protected.reason(real) if protected else None
    if reason:
        raise ScenegrepError(f"refusing to write {shown}: {reason}; choose another name")
    return real


def check_folder(folder: str, protected: Protected | None = None) -> None:
    """Raises ScenegrepError when files may not be written into `folder` (it is protected)."""
    reason = protected.reason(folder) if protected else None
    if reason:
        raise ScenegrepError(f"refusing to write thumbnails into {visible(folder)}: {reason}; choose another name")
