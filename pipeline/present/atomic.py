"""Writing a file whole or not at all: a temporary file beside it, then a rename."""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress

TEMPORARY_SUFFIX = ".part"
"""Marks a file being written; it is renamed to its name when complete, removed on failure."""

NAME_KEPT = 40
"""Characters of the target's name kept in the temporary's, so that a long name plus
the random part stays within the file system's 255-byte limit."""


def write_atomically(path: str, text: str) -> None:
    """Write `text` as UTF-8 to `path`: into a temporary file in the same folder, renamed over
    `path` once complete. A reader sees the old file or the new one, never a part; a failure
    leaves the old file (or none) and no temporary. A new file gets the usual permissions
    (0666 less the umask), a rewritten one keeps its own.

    Raises OSError, or UnicodeEncodeError for text that is not valid Unicode."""
    write_all_atomically({path: text})


def write_all_atomically(files: dict[str, str]) -> None:
    """Write several files (path → text) so that each is whole: all temporaries are written
    first and renamed only when every one is complete. Raises what `write_atomically` raises."""
    staged: list[tuple[str, str]] = []
    try:
        for path, text in files.items():
            folder = os.path.dirname(path) or "."
            handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)[:NAME_KEPT]}.",
                                                 suffix=TEMPORARY_SUFFIX)
            staged.append((temporary, path))
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(text)
            os.chmod(temporary, _mode_for(path))
        for temporary, path in staged:
            os.replace(temporary, path)
    except BaseException:
        for temporary, _ in staged:
            with suppress(OSError):
                os.unlink(temporary)
        raise


def _read_umask() -> int:
    umask = os.umask(0)  # the only way to read it is to set it: done once, at import
    os.umask(umask)
    return umask


_UMASK = _read_umask()


def _mode_for(path: str) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK
