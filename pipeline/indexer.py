"""Indexing: sample → encode → store for a list of videos, one video at a time.

Each video ends in one state, decided from its file fingerprint (size, mtime,
partial content hash, see `files.fingerprint`) and the store's registry:

- unchanged: registered with the same size and mtime (or same content after a
  `touch`): nothing to do;
- moved / copied: not registered at this path, but a registered video has the
  same content: its stored embeddings are copied under this path (no decoding,
  no model), and a moved file's old entry is removed;
- indexed: new or changed: decoded, embedded and stored, then registered;
- failed: cannot be read or decoded; the reason says why, and the batch goes on.

Crash safety: a video is registered only after all its frames are stored, and
frames of an unregistered video (left by a killed run) are deleted before it is
indexed again. Frame ids are (video, timestamp), so any rerun ends with exactly
the frames of a clean run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Protocol

import numpy as np

from .errors import VideoError
from .files import Fingerprint, content_hash, lacks_mp4_index
from .records import SampledFrame, Video
from .sample import VideoSampler

TRUNCATION_SLACK_INTERVALS = 2
"""A video whose last sampled frame lies more than this many sampling intervals
(plus a second) before the duration its container states is reported as cut
short: within that slack the gap is just where the last sample fell."""


@dataclass
class VideoResult:
    video: Video
    status: str  # "indexed", "unchanged", "moved", "copied" or "failed"
    frames: int = 0
    reason: str = ""  # why it failed
    warnings: list[str] = field(default_factory=list)
    source: str = ""  # the path a moved or copied video's frames came from


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


def index_videos(videos: Iterable[Video], encoder, store, progress: Progress | None = None) -> Iterator[VideoResult]:
    """Bring each video up to date in `store` (a `FrameStore`), yielding one result per video.

    A video that cannot be read or decoded fails alone: the rest go on. Errors
    of the store or the model propagate (they would fail every video).
    """
    progress = progress or NoProgress()
    for video in videos:
        result = update_video(video, encoder, store, progress)
        progress.finish(result)
        yield result


def update_video(video: Video, encoder, store, progress: Progress | None = None) -> VideoResult:
    """Skip, move, copy or (re-)index one video; see the module docstring."""
    progress = progress or NoProgress()
    try:
        video.path.encode("utf-8")
    except UnicodeEncodeError:
        return VideoResult(video, "failed", reason="its name is not valid UTF-8, which the index cannot store; "
                                                   "rename the file")
    try:
        stat = os.stat(video.path)
    except OSError as exc:
        return VideoResult(video, "failed", reason=_os_reason(video.path, exc))
    entry = store.indexed_video(video.video_id)
    if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns and entry.get("hash"):
        return VideoResult(video, "unchanged", frames=int(entry.get("frames", 0)))
    if stat.st_size == 0:
        if entry:
            store.remove_video(video.video_id)
        return VideoResult(video, "failed", reason="empty file (0 bytes)")
    try:
        fingerprint = Fingerprint(stat.st_size, stat.st_mtime_ns, content_hash(video.path, stat.st_size))
    except OSError as exc:
        return VideoResult(video, "failed", reason=_os_reason(video.path, exc))

    if entry:
        if entry.get("hash"):
            same = entry["hash"] == fingerprint.content
        else:  # registered before content hashes existed: trust size and mtime
            same = entry.get("mtime_ns") == fingerprint.mtime_ns
        if same and entry.get("size") == fingerprint.size:  # touched, content unchanged
            store.update_fingerprint(video.video_id, fingerprint.as_metadata())
            return VideoResult(video, "unchanged", frames=int(entry.get("frames", 0)))
        store.remove_video(video.video_id)  # changed since: its old frames must go
    else:
        store.remove_leftovers(video.video_id)  # frames of an interrupted run, if any

    reused = _reuse_same_content(video, fingerprint, store)
    if reused:
        return reused
    return _index_one(video, fingerprint, encoder, store, progress)


def _reuse_same_content(video: Video, fingerprint: Fingerprint, store) -> VideoResult | None:
    """Copy the frames of a registered video with the same content, if there is one.

    Prefers a source whose file is gone (a move: its entry is then removed).
    """
    sources = [s for s in store.videos_with_content(fingerprint.size, fingerprint.content) if s["video_id"] != video.video_id]
    if not sources:
        return None
    sources.sort(key=lambda s: os.path.exists(s["path"]))  # missing files (moves) first
    source = sources[0]
    frames = store.copy_video(source, video)
    if frames != int(source.get("frames", -1)):
        store.remove_leftovers(video.video_id)  # the source is incomplete: index from the file
        return None
    rate = {"fps": source["fps"]} if source.get("fps") else {}  # the same content: the same frame rate
    store.mark_indexed(video, frames, {**fingerprint.as_metadata(), "duration": float(source.get("duration", 0.0)), **rate})
    moved = not os.path.exists(source["path"])
    if moved:
        store.remove_video(source["video_id"])
    return VideoResult(video, "moved" if moved else "copied", frames=frames, source=source["path"])


def _index_one(video: Video, fingerprint: Fingerprint, encoder, store, progress: Progress) -> VideoResult:
    try:
        sampler = VideoSampler(video, store.info.every)
    except VideoError as exc:
        if lacks_mp4_index(video.path):
            return VideoResult(video, "failed", reason="truncated MP4/MOV: its index (moov box) is missing, so no "
                                                       "frame can be located; copy or download it again")
        return VideoResult(video, "failed", reason=str(exc))
    except OSError as exc:
        return VideoResult(video, "failed", reason=_os_reason(video.path, exc))
    frames = 0
    done_t = 0.0  # video time covered by stored frames
    try:
        with sampler:
            progress.start(video, sampler.info.duration)
            batch: list[SampledFrame] = []
            for frame in sampler:
                batch.append(frame)
                if len(batch) >= encoder.batch_size:
                    frames, done_t = _store_batch(batch, encoder, store, progress, frames, done_t)
                    batch = []
            if batch:
                frames, done_t = _store_batch(batch, encoder, store, progress, frames, done_t)
    except (VideoError, OSError) as exc:
        store.remove_leftovers(video.video_id)
        return VideoResult(video, "failed", reason=f"decoding stopped: {exc}")
    except KeyboardInterrupt:
        store.remove_leftovers(video.video_id)  # a clean stop leaves no half-indexed video
        raise
    if frames == 0:
        return VideoResult(video, "failed", reason="no decodable video frames (empty, corrupt or truncated file)")
    result = VideoResult(video, "indexed", frames=frames)
    duration = sampler.info.duration
    if duration and done_t + TRUNCATION_SLACK_INTERVALS * store.info.every + 1.0 < duration:
        result.warnings.append(f"decodes only to {done_t:.1f} s of its {duration:.1f} s (truncated or damaged?); "
                               "indexed as far as it decodes")
    elif sampler.decode_errors:
        result.warnings.append(f"{sampler.decode_errors} corrupt packet(s) skipped; indexed as far as it decodes")
    rate = {"fps": str(sampler.info.rate)} if sampler.info.rate else {}  # exact, e.g. "30000/1001": for SMPTE/EDL
    store.mark_indexed(video, frames, {**fingerprint.as_metadata(), "duration": float(duration or done_t), **rate})
    return result


def _store_batch(batch: list[SampledFrame], encoder, store, progress: Progress, frames: int, done_t: float):
    embeddings = encoder.embed_images([frame.pixels for frame in batch])
    store.add_frames(batch[0].video, [frame.t for frame in batch], np.asarray(embeddings))
    progress.advance(batch[-1].t - done_t, len(batch))
    return frames + len(batch), batch[-1].t


def _os_reason(path: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError) and os.path.islink(path):
        return "broken symbolic link (its target does not exist)"
    if isinstance(exc, PermissionError):
        return "permission denied (the file cannot be read; check its permissions)"
    return exc.strerror or str(exc)
