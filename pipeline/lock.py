"""One writer per embedded index: an advisory lock file in the index folder.

Two `index` runs writing one embedded Chroma folder at once would each hold
their own in-memory view of the same files; the second run therefore stops
with a clear message (or waits, if asked). Searches take no lock: they only read.
A Chroma server serialises writes itself, so server mode takes no lock.
"""

from __future__ import annotations

import os
from typing import Callable

from .errors import ScenegrepError

LOCK_FILE = "scenegrep-index.lock"


class IndexBusyError(ScenegrepError):
    """Another process is writing to this index."""


def index_is_busy(db: str) -> bool:
    """Whether an `index` (or `prune`) run holds the lock of the embedded index
    at `db` now. Only looks: creates no file and writes nothing."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock, so no writer is ever known
        return False
    try:
        fh = open(os.path.join(db, LOCK_FILE), "rb")
    except OSError:  # no lock file: nobody has ever written here
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)  # fails while a writer holds LOCK_EX
        except BlockingIOError:
            return True
        except OSError:  # a file system without locks: no writer can be known
            return False
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


class IndexLock:
    """An exclusive `flock` on DB/scenegrep-index.lock, released when the process ends
    (even by SIGKILL: the kernel drops it, so a crash never leaves a stale lock).

    Raises IndexBusyError on entry when another process holds it and `wait` is
    False, ScenegrepError when the folder cannot be created or written.
    """

    def __init__(self, db: str, wait: bool = False, on_wait: Callable[[str], None] | None = None):
        self.path = os.path.join(db, LOCK_FILE)
        self.wait = wait
        self.on_wait = on_wait  # told who holds the lock before a wait, so a wait never looks like a hang
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
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                if not self.wait:
                    fh.close()
                    raise IndexBusyError(
                        f"{holder} is writing to the index at {folder}; "
                        "wait for it to finish, or pass --wait to queue behind it"
                    ) from None
                if self.on_wait:
                    self.on_wait(holder)
                fcntl.flock(fh, fcntl.LOCK_EX)
        except OSError as exc:  # e.g. ENOLCK: a network file system without locks
            fh.close()
            raise ScenegrepError(
                f"cannot lock the index at {folder}: {exc.strerror or exc}; use a local --db folder or a Chroma server"
            ) from exc
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
