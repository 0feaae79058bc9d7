"""A pool of decoding worker processes, fed segments in the order the indexer consumes them.

Threads stop scaling at about 4 decoding videos (the GIL, and FFmpeg's own
frame threads contending); processes scale with the cores. Each worker runs
`decode_worker.worker_main`; one dispatcher thread here hands out segments,
copies arriving frames out of the workers' shared memory and notices a worker
that died. Segments are handed out in (video, segment) order, at most
`window` ahead of what has been consumed (plus the oldest video's own
window), so memory stays bounded however long the videos are.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from multiprocessing import connection, shared_memory
from typing import Callable, Iterator

import numpy as np

from .decode_worker import SLOT_BYTES, FrameSignals, SegmentTask, decode_segment, worker_main
from .errors import VideoError

SLOTS_PER_WORKER = 8
"""Frames a worker may have in shared memory before the dispatcher copies them
out (8 MB per worker): enough that a worker never waits on the dispatcher,
which copies a frame in well under a millisecond."""

SEGMENTS_AHEAD_PER_WORKER = 2
"""Segments handed out or waiting to be consumed, per worker: one decoding and
one done or queued, so a worker finishing one has the next at once; at most
MAX_SEGMENT_SECONDS of resized frames each."""

POLL_SECONDS = 0.05
"""How often the dispatcher looks for new segments when no worker has spoken."""

MAX_IDLE_DEATHS = 3
"""Workers that may die before doing any work, per worker, before the pool gives up: a worker
that cannot even start (a broken installation) would otherwise be replaced forever."""

STOP_SECONDS = 2.0
"""How long closing waits for a worker to leave on its own before killing it."""


def default_workers() -> int:
    """Worker processes for this machine: one per core, as measured in bench/RESULTS.md;
    1 (decode in the indexing process, no worker processes) below MIN_CORES_FOR_WORKERS."""
    cores = usable_cores()
    return cores if cores >= MIN_CORES_FOR_WORKERS else 1


def usable_cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


MIN_CORES_FOR_WORKERS = 4
"""Below this many cores, worker processes do not pay: on 2 cores the encoder
needs both and FFmpeg's threads already use them for decoding
(bench/RESULTS.md, "Worker processes on 2 cores")."""


@dataclass
class _Segment:
    task: SegmentTask
    video: int  # the video's sequence number: older videos go first
    frames: deque = field(default_factory=deque)
    done: bool = False
    error: str = ""
    decode_errors: int = 0
    consumed: bool = False


class _Worker:
    def __init__(self, context, decode):
        self.conn, child = context.Pipe()
        self.free = context.Semaphore(SLOTS_PER_WORKER)
        self.shm = shared_memory.SharedMemory(create=True, size=SLOTS_PER_WORKER * SLOT_BYTES)
        self.ring = np.ndarray((SLOTS_PER_WORKER, SLOT_BYTES), np.uint8, buffer=self.shm.buf)
        self.process = context.Process(target=worker_main, args=(child, self.shm.name, SLOTS_PER_WORKER, self.free, decode),
                                       name="scenegrep-decoder", daemon=True)
        self.process.start()
        child.close()
        self.segment: _Segment | None = None

    def stop(self, wait: float) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(wait)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        del self.ring
        self.shm.close()
        self.shm.unlink()


class DecodePool:
    """`workers` decoding processes. `open_video` → `submit` segments → `frames` of each, in order → `close_video`.

    A worker that dies (killed, out of memory, a crash in FFmpeg) fails the
    segment it was decoding with a VideoError naming the cause, and is replaced.
    `close()` stops every worker (killing those that do not stop in
    STOP_SECONDS); use the pool as a context manager.
    """

    def __init__(self, workers: int, decode: Callable = decode_segment):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.window = SEGMENTS_AHEAD_PER_WORKER * workers
        self._decode = decode
        self._context = multiprocessing.get_context("spawn")  # never fork a process holding torch's and Chroma's threads
        self._lock = threading.Condition()
        self._pending: list[_Segment] = []
        self._segments: dict[int, _Segment] = {}
        self._next_key = 0
        self._next_video = 0
        self._closed = False
        self._error: BaseException | None = None
        self._idle_deaths = 0
        self._pool: list[_Worker] = []  # started by the first submit: an index run with nothing new starts none
        self._thread = threading.Thread(target=self._dispatch, name="scenegrep-dispatcher", daemon=True)
        self._thread.start()

    def start(self) -> None:
        """Start the worker processes (the first `submit` does it; later calls do nothing)."""
        with self._lock:
            if not self._pool and not self._closed:
                self._pool = [_Worker(self._context, self._decode) for _ in range(self.workers)]
                # Closed at exit before multiprocessing's own handler terminates daemon children: that
                # one would leave the dispatcher replacing the workers it kills, and outliving the command.
                atexit.register(self.close)

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._pool]

    def open_video(self) -> int:
        """A sequence number for the next video: segments of lower numbers are decoded first.

        Take the numbers in the order the videos will be consumed (in the
        consuming thread, not in the threads that submit): the lowest-numbered
        video that still has segments is the one the window always serves."""
        with self._lock:
            self._next_video += 1
            return self._next_video

    def close_video(self, video: int) -> None:
        """The video is done (or abandoned): its segments no longer count against the window."""
        with self._lock:
            self._pending = [s for s in self._pending if s.video != video]
            for key, segment in list(self._segments.items()):
                if segment.video == video:
                    segment.consumed = True
                    segment.frames.clear()
                    del self._segments[key]  # a worker still on it finishes; its frames are dropped
            self._lock.notify_all()

    def submit(self, video: int, path: str, start_pts, end_pts, every: float, size, threads: int,
               signals: bool = False) -> int:
        """Queue one segment; returns its key for `frames`. `signals`: its
        frames' shot signatures come too (`decode_worker.FrameSignals`)."""
        self.start()
        with self._lock:
            self._raise_if_broken()
            self._next_key += 1
            task = SegmentTask(self._next_key, path, start_pts, end_pts, every, size, threads, signals)
            segment = _Segment(task, video)
            self._segments[task.key] = segment
            self._pending.append(segment)
            self._pending.sort(key=lambda s: (s.video, s.task.key))
            return task.key

    def frames(self, key: int) -> Iterator[tuple[float, np.ndarray] | FrameSignals | int]:
        """The segment's candidate frames (t, pixels) as they arrive (FrameSignals
        between them when it was submitted with signals), then its corrupt-packet count.

        Raises VideoError when its worker reported an error or died."""
        segment = self._segments[key]
        try:
            while True:
                with self._lock:
                    while not segment.frames and not segment.done and self._error is None:
                        self._lock.wait()
                    self._raise_if_broken()
                    batch = list(segment.frames)
                    segment.frames.clear()
                    done = segment.done
                yield from batch
                if done:
                    break
            if segment.error:
                raise VideoError(segment.error)
            yield segment.decode_errors
        finally:
            with self._lock:
                segment.consumed = True
                segment.frames.clear()
                self._segments.pop(key, None)
                self._lock.notify_all()

    def _raise_if_broken(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"the decoding pool stopped: {self._error}") from self._error
        if self._closed:
            raise RuntimeError("the decoding pool is closed")

    # -- the dispatcher thread ------------------------------------------------------

    def _dispatch(self) -> None:
        try:
            while not self._closed:
                self._assign()
                with self._lock:
                    busy = {w.conn: w for w in self._pool}
                    sentinels = {w.process.sentinel: w for w in self._pool}
                for ready in connection.wait([*busy, *sentinels], timeout=POLL_SECONDS):
                    if ready in busy:
                        self._receive(busy[ready])
                    elif ready in sentinels and not self._closed:
                        self._replace(sentinels[ready])
        except BaseException as exc:  # a bug here must not hang the consumers
            with self._lock:
                self._error = exc
                self._lock.notify_all()

    def _assign(self) -> None:
        with self._lock:
            for worker in self._pool:
                if worker.segment is not None or not self._pending:
                    continue
                segment = self._next_assignable()
                if segment is None:
                    return
                self._pending.remove(segment)
                worker.segment = segment
                worker.conn.send(segment.task)

    def _next_assignable(self) -> _Segment | None:
        """The first pending segment within the window; the oldest video has a window of its own,
        so it always makes progress whatever later videos hold.

        The oldest is the lowest-numbered video with segments not yet consumed,
        not the lowest number still open: a number taken for a video that never
        submitted (it fell back to another decoder, or was stopped before it
        started) must not take that window from the video being consumed."""
        live = [s for s in self._segments.values() if s not in self._pending and not s.consumed]
        oldest = min((s.video for s in self._segments.values() if not s.consumed), default=None)
        for segment in self._pending:
            if segment.video == oldest:
                if sum(s.video == oldest for s in live) < self.window:
                    return segment
            elif len(live) < self.window:
                return segment
        return None

    def _receive(self, worker: _Worker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            if not self._closed:
                self._replace(worker)
            return
        kind, key = message[0], message[1]
        with self._lock:
            self._idle_deaths = 0
            segment = self._segments.get(key)
            keep = segment is not None and not segment.consumed
            if kind == "frame":
                _, _, t, slot, shape = message
                if slot is None:
                    pixels = shape  # sent whole
                else:
                    pixels = worker.ring[slot, : int(np.prod(shape))].reshape(shape).copy() if keep else None
                    worker.free.release()
                if keep:
                    segment.frames.append((t, pixels))
            elif kind == "signals":
                if keep:
                    segment.frames.append(message[2])
            else:
                worker.segment = None
                if segment is not None:
                    segment.done = True
                    if kind == "error":
                        segment.error = message[2]
                    else:
                        segment.decode_errors = message[2]
            self._lock.notify_all()

    def _replace(self, worker: _Worker) -> None:
        """A worker died: fail its segment with the cause, and start another in its place."""
        if worker not in self._pool:
            return  # already replaced (its pipe and its process both reported the death)
        worker.process.join()
        code = worker.process.exitcode
        if code is not None and code < 0:
            cause = f"killed by signal {-code}); out of memory, or FFmpeg crashed on this file ("
        else:
            cause = f"exit code {code}); its error is on stderr ("
        with self._lock:
            segment = worker.segment
            self._idle_deaths += segment is None
            if self._idle_deaths > MAX_IDLE_DEATHS * self.workers:
                raise RuntimeError(f"decoding worker processes die as they start ({cause}pid {worker.process.pid})")
            if segment is not None:
                segment.done = True
                segment.error = f"its decoding worker process died ({cause}pid {worker.process.pid})"
            index = self._pool.index(worker)
            self._pool[index] = _Worker(self._context, self._decode)
            self._lock.notify_all()
        worker.segment = None
        worker.stop(0)

    def close(self) -> None:
        """Stop the dispatcher and every worker; frames not yet consumed are dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._lock.notify_all()
        atexit.unregister(self.close)
        self._thread.join()
        for worker in self._pool:
            if worker.segment is not None:
                worker.process.kill()  # busy: what it decodes is no longer wanted
        for worker in self._pool:
            worker.stop(STOP_SECONDS)

    def __enter__(self) -> "DecodePool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
