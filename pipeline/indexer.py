"""Indexing: sample → encode → store for a list of videos, the stages overlapped.

A video is registered as indexed only after all its frames are stored, and
unchanged videos (same size and modification time) are skipped, so running
`index` again after an interruption finishes the job without duplicates.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

import numpy as np

from .errors import VideoError
from .overlap import BackgroundWriter, prefetch_each
from .records import Video
from .sample import VideoSampler


@dataclass
class VideoResult:
    video: Video
    status: str  # "indexed", "unchanged" or "failed"
    frames: int = 0
    reason: str = ""  # why it failed
    strategy: str = ""  # how frames were reached: decode, seek or keyframes (see sample.STRATEGIES)
    warnings: list[str] = field(default_factory=list)


class Progress(Protocol):
    def start(self, video: Video, duration: float | None) -> None: ...
    def advance(self, video_seconds: float, frames: int) -> None: ...
    def finish(self, result: VideoResult) -> None: ...


class NoProgress:
    def start(self, video, duration):
        pass

    def advance(self, video_seconds, frames):
        pass

    def finish(self, result):
        pass


def file_signature(path: str) -> dict:
    stat = os.stat(path)
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_unchanged(entry: dict | None, signature: dict) -> bool:
    return bool(entry) and all(entry.get(key) == value for key, value in signature.items())


DECODE_QUEUE_FRAMES = 64
"""Sampled frames waiting per decoding video. On a CPU a waiting frame is
preprocessed (3×224×224, 0.3-0.6 MB); on a GPU it is raw RGB (2.7 MB at 720p,
6 MB at 1080p): 64 of them stay under 0.4 GB, and two encoder batches of
look-ahead are enough to hide decoding hiccups."""

DECODE_WORKERS = max(1, min(4, (os.cpu_count() or 1) // 4))
"""Videos decoded at once. FFmpeg already decodes one video on every core with
frame threads; a second video in parallel pays only when there are cores to
spare (and it hides the start-up of the next file). 1 on 2-7 cores, up to 4."""

WRITE_QUEUE_BATCHES = 8
"""Encoded batches waiting to be written to Chroma (32-256 × 512 floats each,
under 0.5 MB): writes run beside encoding, and a slow disk holds back the
encoder after 8 batches instead of piling up vectors."""


@dataclass(frozen=True)
class _Start:
    duration: float | None


@dataclass(frozen=True)
class _End:
    decode_errors: int
    strategy: str


def index_videos(videos: Iterable[Video], encoder, store, progress: Progress | None = None, *,
                 sampling: str = "grid", workers: int = DECODE_WORKERS) -> Iterator[VideoResult]:
    """Index each video into `store` (a `FrameStore`), yielding one result per video, in order.

    Stages overlap: videos decode in background threads (`workers` at once,
    each into a queue of DECODE_QUEUE_FRAMES frames), the encoder runs in this
    thread, and writes to Chroma run in a writer thread. A video enters the
    registry only after all its frames are written. A video that cannot be
    opened or decoded fails alone: the rest go on. Raises what the store raises
    when writing fails (nothing after the failed write is recorded).
    """
    progress = progress or NoProgress()
    every = store.info.every

    def jobs():
        for video in videos:
            try:
                signature = file_signature(video.path)
            except OSError as exc:
                yield VideoResult(video, "failed", reason=exc.strerror or str(exc)), None
                continue
            entry = store.indexed_video(video.video_id)
            if is_unchanged(entry, signature):
                yield VideoResult(video, "unchanged", frames=int(entry.get("frames", 0))), None
                continue
            encoder.load()  # only now: when nothing needs encoding, the model never loads
            prepare = encoder.preprocess if encoder.preprocess_in_loader else None
            yield (video, signature, bool(entry)), functools.partial(_decode, video, every, sampling, prepare)

    with BackgroundWriter(WRITE_QUEUE_BATCHES) as writer:
        pending: list[tuple[VideoResult, Future | None]] = []  # results waiting for their writes
        for job, items in prefetch_each(jobs(), workers, DECODE_QUEUE_FRAMES):
            if items is None:
                pending.append((job, None))  # unchanged, or its file could not be read
            else:
                video, signature, replace = job
                if replace:
                    writer.submit(store.remove_video, video.video_id)  # changed since: its old frames go
                result, marked = _index_one(video, signature, items, encoder, store, writer, progress)
                pending.append((result, marked))
                if marked is None:
                    progress.finish(result)
            while pending and (pending[0][1] is None or pending[0][1].done()):
                yield _finished(*pending.pop(0), progress)
        writer.flush()
        for result, marked in pending:
            yield _finished(result, marked, progress)


def _finished(result: VideoResult, marked: Future | None, progress: Progress) -> VideoResult:
    """A result, once its video's registry write (if any) is done."""
    if marked is not None:
        marked.result()  # raises if a write of the video failed
        progress.finish(result)
    return result


def _decode(video: Video, every: float, sampling: str, prepare):
    """Runs in a decoding thread: a _Start, then (time, pixels or prepared tensor) per frame, then an _End."""
    with VideoSampler(video, every, sampling=sampling) as sampler:
        yield _Start(sampler.info.duration)
        for frame in sampler:
            yield frame.t, (prepare([frame.pixels]) if prepare else frame.pixels)
        yield _End(sampler.decode_errors, sampler.used_strategy)


def _index_one(video: Video, signature: dict, items, encoder, store, writer, progress: Progress):
    """Encode one video's frames as they arrive and queue their writes.

    Returns (result, future of the registry write or None when it failed).
    """
    try:
        start = next(items)
    except VideoError as exc:
        return VideoResult(video, "failed", reason=str(exc)), None
    except OSError as exc:
        return VideoResult(video, "failed", reason=exc.strerror or str(exc)), None
    progress.start(video, start.duration)
    frames = 0
    done_t = 0.0  # video time covered by encoded frames
    times: list[float] = []
    pixels: list = []
    end = _End(0, "")

    def flush_batch():
        nonlocal frames, done_t
        batch = torch_cat(pixels) if encoder.preprocess_in_loader else encoder.preprocess(pixels)
        embeddings = encoder.embed_pixels(batch)
        writer.submit(store.add_frames, video, list(times), np.asarray(embeddings))
        progress.advance(times[-1] - done_t, len(times))
        frames, done_t = frames + len(times), times[-1]
        times.clear()
        pixels.clear()

    for item in items:
        if isinstance(item, _End):
            end = item
            break
        times.append(item[0])
        pixels.append(item[1])
        if len(times) >= encoder.batch_size:
            flush_batch()
    if times:
        flush_batch()
    if frames == 0:
        return VideoResult(video, "failed", reason="no decodable video frames (empty, corrupt or truncated file)"), None
    result = VideoResult(video, "indexed", frames=frames, strategy=end.strategy)
    if end.decode_errors:
        result.warnings.append(f"{end.decode_errors} corrupt packet(s) skipped; indexed as far as it decodes")
    duration = start.duration or done_t
    marked = writer.submit(store.mark_indexed, video, frames, {**signature, "duration": float(duration)})
    return result, marked


def torch_cat(tensors):
    import torch

    return torch.cat(tensors)
