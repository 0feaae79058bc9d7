"""What runs inside a decoding worker process: decode segments, keep candidates, resize, hand over.

Imported by freshly spawned processes, so it imports only PyAV and numpy
(never torch, transformers or Chroma): a worker starts in a fraction of a second.
Frames go back through this worker's shared-memory ring (`SLOT_BYTES` × slots);
only small messages (time, slot, shape) are pickled.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .errors import VideoError
from .segments import is_candidate

SLOT_BYTES = 1 << 20
"""One shared-memory slot: a resized frame (224 × 398 × 3 = 0.27 MB for 16:9,
up to 224 × 1560 for very wide video) fits; a larger one (a model without a
resize step) travels pickled through the pipe instead, slower but correct."""


ORPHAN_CHECK_SECONDS = 1.0
"""A worker waiting for a free slot checks this often that its parent still lives,
so a worker of a killed `scenegrep index` exits instead of waiting forever."""


@dataclass(frozen=True)
class SegmentTask:
    key: int  # the pool's id for this segment
    path: str
    start_pts: int | None  # None: from the stream's start, without seeking
    end_pts: int | None  # None: to the end
    every: float
    size: tuple[int, int] | None  # (height, width) frames are resized to, or None for full size
    threads: int  # FFmpeg threads for this worker's decoder
    signals: bool = False  # also send every frame's shot signature (FrameSignals), for cuts.CutRecorder


@dataclass(frozen=True)
class FrameSignals:
    """The shot signatures (`shots.frame_signature`) of consecutive frames of a
    segment, sent before the candidate frame that ends them and before the
    segment's end, so the parent sees every frame in order."""

    times: tuple[float, ...]
    signatures: np.ndarray | None  # len(times) × h × w × 3, int16; None: a frame would not convert, none follow


def decode_segment(task: SegmentTask) -> Iterator[tuple[float, np.ndarray] | FrameSignals | int]:
    """The candidate frames of one segment as (t, RGB pixels), then its count of
    corrupt packets; with `task.signals`, FrameSignals of every frame between them.

    Raises VideoError when the file cannot be opened or decoded.
    """
    from .decoders import PyAVDecoder
    from .shots import frame_signature

    decoder = PyAVDecoder(task.path, threads=task.threads)
    times: list[float] = []
    signatures: list[np.ndarray] = []

    def signals() -> Iterator[FrameSignals]:
        if times:
            yield FrameSignals(tuple(times), np.stack(signatures))
            times.clear()
            signatures.clear()

    recording = task.signals
    try:
        previous_t = None
        for frame in _segment_frames(decoder, task.start_pts):
            if task.end_pts is not None and frame.pts >= task.end_pts:
                break
            if recording:
                try:
                    signatures.append(frame_signature(frame))
                    times.append(frame.t)
                except VideoError:
                    recording = False  # this video's edges are found at search time
                    yield from signals()
                    yield FrameSignals((), None)
            if is_candidate(previous_t, frame.t, task.every):
                yield from signals()
                yield frame.t, frame.to_rgb(task.size)
            previous_t = frame.t
        yield from signals()
        yield decoder.decode_errors
    finally:
        decoder.close()


def _segment_frames(decoder, start_pts: int | None):
    """Frames with a pts, from `start_pts` on, seeking there first.

    Leading frames of an open GOP (pts before the keyframe) belong to the
    previous segment and are dropped. When the seek lands past the keyframe
    (a file whose index lies), the segment is read from the stream's start.
    """
    frames = decoder.frames(seek_pts=start_pts)
    checked = start_pts is None
    try:
        for frame in frames:
            if frame.pts is None or (start_pts is not None and frame.pts < start_pts):
                continue
            if not checked:
                checked = True
                if frame.pts > start_pts:
                    frames.close()
                    frames = (f for f in decoder.frames(seek_pts=decoder.start_pts())
                              if f.pts is not None and f.pts >= start_pts)
                    yield from frames
                    return
            yield frame
    finally:
        frames.close()


def worker_main(conn, shm_name: str, slots: int, free_slots, decode=decode_segment) -> None:
    """A worker's loop: take a SegmentTask from `conn`, send its frames and an end, until None arrives.

    Messages: ("frame", key, t, slot, shape) with the pixels in shared memory,
    or ("frame", key, t, None, pixels) when they do not fit a slot;
    ("signals", key, FrameSignals) before a frame when the task asks; then
    ("done", key, decode_errors) or ("error", key, reason).
    """
    from multiprocessing import shared_memory

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    import cv2

    cv2.setNumThreads(1)  # one resize per sampled frame: the other workers have the other cores
    parent = os.getppid()
    shm = shared_memory.SharedMemory(name=shm_name)
    ring = np.ndarray((slots, SLOT_BYTES), np.uint8, buffer=shm.buf)
    slot = 0
    try:
        while True:
            task = conn.recv()
            if task is None:
                return
            try:
                for item in decode(task):
                    if isinstance(item, int):
                        conn.send(("done", task.key, item))
                        break
                    if isinstance(item, FrameSignals):
                        conn.send(("signals", task.key, item))
                        continue
                    t, pixels = item
                    if pixels.nbytes > SLOT_BYTES:
                        conn.send(("frame", task.key, t, None, pixels))
                        continue
                    while not free_slots.acquire(timeout=ORPHAN_CHECK_SECONDS):
                        if os.getppid() != parent:
                            return  # the parent was killed: nobody will free a slot
                    ring[slot, : pixels.nbytes] = pixels.reshape(-1)
                    conn.send(("frame", task.key, t, slot, pixels.shape))
                    slot = (slot + 1) % slots
            except VideoError as exc:
                conn.send(("error", task.key, str(exc)))
            except Exception as exc:  # a bug or an odd file: this video fails, the others go on
                conn.send(("error", task.key, f"{type(exc).__name__}: {exc}"))
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        return  # the parent has gone
    finally:
        del ring
        shm.close()
