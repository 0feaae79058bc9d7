"""Overlapping stages: a bounded background iterator and an ordered background writer.

Decoding, encoding and storing use different resources (FFmpeg's threads, the
model, Chroma's disk writes) and all release the GIL while they work, so plain
threads let them run at the same time. Every hand-over goes through a bounded
queue: a fast stage waits for a slow one instead of piling up frames, so memory
stays flat however long the video is.

Generic on purpose: nothing here knows about video, models or Chroma.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future, wait
from typing import Callable, Generic, Iterable, Iterator, TypeVar

T = TypeVar("T")
K = TypeVar("K")

POLL_SECONDS = 0.1
"""How often a blocked producer checks whether its consumer has gone away."""

_END = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


class BackgroundIterator(Generic[T]):
    """Runs `make_iterable()` in a daemon thread and hands its items over a queue of `depth`.

    Iterating yields the items in order; an exception raised by the producer is
    raised again in the consumer at the point where it happened. `close()` (or
    leaving the `with` block) stops the producer early and waits for it to close
    its iterable, so files are released however iteration ends. At most `depth`
    items wait in the queue, plus the one the producer is making.
    """

    def __init__(self, make_iterable: Callable[[], Iterable[T]], depth: int, name: str = "scenegrep-producer"):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(make_iterable,), name=name, daemon=True)
        self._thread.start()

    def _run(self, make_iterable: Callable[[], Iterable[T]]) -> None:
        iterator = None
        try:
            iterator = iter(make_iterable())
            for item in iterator:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Raised(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Raised):
            self._done = True
            raise item.exc
        return item

    def close(self) -> None:
        """Stop the producer (if still running) and wait until it has cleaned up."""
        self._stop.set()
        self._done = True
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=POLL_SECONDS)  # unblock a producer waiting to put
            except queue.Empty:
                pass
        self._thread.join()

    def __enter__(self) -> "BackgroundIterator[T]":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def prefetch_each(
    jobs: Iterable[tuple[K, Callable[[], Iterable[T]] | None]], workers: int, depth: int
) -> Iterator[tuple[K, BackgroundIterator[T] | None]]:
    """For each `(key, make_iterable)`, in order, yield `(key, items)` where `items`
    is already being produced in the background.

    Up to `workers` jobs run at once: while the consumer reads job i, jobs
    i+1 … i+workers-1 are started (each with its own queue of `depth`), so
    several videos decode in parallel when there are cores for it. A job whose
    `make_iterable` is None yields `(key, None)` and starts nothing. The
    consumer must finish with one job's items before asking for the next; a job
    left unfinished is stopped. `jobs` is consumed lazily, in the caller's
    thread, only as far as needed to keep `workers` jobs running.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    pending: deque[tuple[K, BackgroundIterator[T] | None]] = deque()
    source = iter(jobs)
    exhausted = False

    def fill() -> None:
        nonlocal exhausted
        while not exhausted and sum(items is not None for _, items in pending) < workers:
            try:
                key, make = next(source)
            except StopIteration:
                exhausted = True
                return
            pending.append((key, BackgroundIterator(make, depth) if make is not None else None))
            if make is None and len(pending) > workers:
                return  # do not run far ahead through jobs that need no work

    try:
        while True:
            fill()
            if not pending:
                return
            key, items = pending.popleft()
            try:
                yield key, items
            finally:
                if items is not None:
                    items.close()
    finally:
        for _, items in pending:
            if items is not None:
                items.close()


class BackgroundWriter:
    """Runs submitted calls one after another, in submission order, in a daemon thread.

    `submit` returns a Future and blocks while `depth` calls are already
    waiting, which bounds the memory held by queued arguments. After a call
    fails, the calls behind it are cancelled (never run) and the error is
    raised by the next `submit`, `flush` or `close`: whatever was submitted
    after a failed write, such as marking a video as complete, does not happen.
    """

    def __init__(self, depth: int, name: str = "scenegrep-writer"):
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            if task is _END:
                return
            future, fn, args = task
            if self._error is not None:
                future.cancel()
                future.set_running_or_notify_cancel()  # wakes waiters of a cancelled future
                continue
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # kept, raised in the submitting thread
                self._error = exc
                future.set_exception(exc)

    @property
    def failed(self) -> bool:
        """Whether a call has failed (the calls after it are cancelled)."""
        return self._error is not None

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def submit(self, fn: Callable, *args) -> Future:
        """Queue `fn(*args)`. Raises the error of an earlier call that failed."""
        self._raise_if_failed()
        if not self._thread.is_alive():
            raise RuntimeError("the writer is closed")
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def flush(self) -> None:
        """Wait until every submitted call has run. Raises the first call's error, if any."""
        if self._thread.is_alive():
            marker: Future = Future()
            self._queue.put((marker, lambda: None, ()))
            wait([marker])  # done or cancelled: every call before it has run or was cancelled
        self._raise_if_failed()

    def close(self, wait: bool = True) -> None:
        """Run what is queued (or, with wait=False, cancel it) and stop the thread.

        Raises the first error of a call, when waiting.
        """
        if not self._thread.is_alive():
            return
        if not wait:
            self._error = self._error or _Cancelled()
        self._queue.put(_END)
        self._thread.join()
        if wait:
            self._raise_if_failed()

    def __enter__(self) -> "BackgroundWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(wait=exc_type is None)


class _Cancelled(Exception):
    """Marks calls cancelled because the writer closed after an error elsewhere."""
