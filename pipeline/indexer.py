"""Indexing: sample → encode → store for a list of videos, one video at a time.

A video is registered as indexed only after all its frames are stored, and
unchanged videos (same size and modification time) are skipped, so running
`index` again after an interruption finishes the job without duplicates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

import numpy as np

from .errors import VideoError
from .records import SampledFrame, Video
from .sample import VideoSampler


@dataclass
class VideoResult:
    video: Video
    status: str  # "indexed", "unchanged" or "failed"
    frames: int = 0
    reason: str = ""  # why it failed
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


def index_videos(videos: Iterable[Video], encoder, store, progress: Progress | None = None) -> Iterator[VideoResult]:
    """Index each video into `store` (a `FrameStore`), yielding one result per video.

    A video that cannot be opened or decoded fails alone: the rest go on.
    """
    progress = progress or NoProgress()
    for video in videos:
        try:
            signature = file_signature(video.path)
        except OSError as exc:
            yield VideoResult(video, "failed", reason=exc.strerror or str(exc))
            continue
        entry = store.indexed_video(video.video_id)
        if is_unchanged(entry, signature):
            yield VideoResult(video, "unchanged", frames=int(entry.get("frames", 0)))
            continue
        if entry:
            store.remove_video(video.video_id)  # changed since: its old frames must go
        result = _index_one(video, signature, encoder, store, progress)
        progress.finish(result)
        yield result


def _index_one(video: Video, signature: dict, encoder, store, progress: Progress) -> VideoResult:
    try:
        sampler = VideoSampler(video, store.info.every)
    except VideoError as exc:
        return VideoResult(video, "failed", reason=str(exc))
    except OSError as exc:
        return VideoResult(video, "failed", reason=exc.strerror or str(exc))
    with sampler:
        progress.start(video, sampler.info.duration)
        frames = 0
        done_t = 0.0  # video time covered by stored frames
        batch: list[SampledFrame] = []
        for frame in sampler:
            batch.append(frame)
            if len(batch) >= encoder.batch_size:
                frames, done_t = _store_batch(batch, encoder, store, progress, frames, done_t)
                batch = []
        if batch:
            frames, done_t = _store_batch(batch, encoder, store, progress, frames, done_t)
        if frames == 0:
            return VideoResult(video, "failed", reason="no decodable video frames (empty, corrupt or truncated file)")
        result = VideoResult(video, "indexed", frames=frames)
        if sampler.decode_errors:
            result.warnings.append(f"{sampler.decode_errors} corrupt packet(s) skipped; indexed as far as it decodes")
        duration = sampler.info.duration or done_t
        rate = {"fps": str(sampler.info.rate)} if sampler.info.rate else {}  # exact, e.g. "30000/1001": for SMPTE/EDL
        store.mark_indexed(video, frames, {**signature, "duration": float(duration), **rate})
        return result


def _store_batch(batch: list[SampledFrame], encoder, store, progress: Progress, frames: int, done_t: float):
    embeddings = encoder.embed_images([frame.pixels for frame in batch])
    store.add_frames(batch[0].video, [frame.t for frame in batch], np.asarray(embeddings))
    progress.advance(batch[-1].t - done_t, len(batch))
    return frames + len(batch), batch[-1].t
