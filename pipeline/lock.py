"""One writer per embedded index: an advisory lock file in the index folder.

Two `index` runs writing one embedded Chroma folder at once would each hold
their own in-memory view of the same files; the second run therefore stops
with a clear message (or waits, if asked). Searches take no lock: they only read.
A Chroma server serialises writes itself, so server mode takes no lock.
"""

from __future__ import annotations

import os

from .errors import ScenegrepError

LOCK_FILE = "scenegrep-index.lock"


class IndexBusyError(ScenegrepError):
    """Another process is writing to this index."""


class IndexLock:
    """An exclusive `flock` on DB/scenegrep-index.lock, released when the process ends
    (even by SIGKILL: the kernel drops it, so a crash never leaves a stale lock).

    Raises IndexBusyError on entry when another process holds it and `wait` is
    False, ScenegrepError when the folder cannot be created or written.
    """

    def __init__(self, db: str, wait: bool = False):
        self.path = os.path.join(db, LOCK_FILE)
        self.wait = wait
        self._fh = None

    def __enter__(self) -> "IndexLock":
        try:
            import fcntl
        except ImportError:  # Windows: no flock; one writer is then up to the user
            return self
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
            fh = open(self.path, "a+")
        except OSError as exc:
            raise ScenegrepError(
                f"cannot use {folder} for the index: {exc.strerror or exc}; pass --db to choose another folder"
            ) from exc
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise IndexBusyError(
                f"{holder} is writing to the index at {os.path.dirname(self.path)}; "
                "wait for it to finish, or pass --wait to queue behind it"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"scenegrep (pid {os.getpid()})")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        if self._fh is not None:
            self._fh.close()  # closing releases the flock
            self._fh = None
