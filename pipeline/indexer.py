"""Indexing: sample → encode → store for a list of videos, the stages overlapped.

Each video ends in one state, decided from its file fingerprint (size, mtime,
partial content hash, see `files.fingerprint`) and the store's registry:

- unchanged: registered with the same size and mtime (or same content after a
  `touch`): nothing to do, and the model is not even loaded;
- moved / copied: not registered at this path, but a registered video has the
  same content: its stored embeddings are copied under this path (no decoding,
  no model), and a moved file's old entry is removed;
- indexed: new or changed: decoded, embedded and stored, then registered;
- failed: cannot be read or decoded; the reason says why, and the batch goes on.

Stages overlap: videos decode in background threads, the encoder runs in the
calling thread, and writes to Chroma run in one writer thread, in the order
they were queued (a video's frames, then its registry entry). With several
`workers`, those threads only plan and merge: each video is cut into segments
at keyframes, decoded (and resized to the model's input) in worker processes
(`workers.DecodePool`, `segments.SegmentedSampler`), with the same frames and
times as a single pass.

Crash safety: a video is registered only after all its frames are stored, and
frames of an unregistered video (left by a killed run) are deleted before it is
indexed again. Frame ids are (video, timestamp), so any rerun ends with exactly
the frames of a clean run. Ctrl-C finishes the queued writes, then deletes the
frames of the video in progress.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import Future
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterable, Iterator, Protocol

from .errors import VideoError
from .files import Fingerprint, content_hash, lacks_mp4_index, not_regular_reason
from .overlap import BackgroundWriter, prefetch_each
from .records import Video
from .registry import IRREGULAR_SAMPLING
from .sample import VideoSampler
from .segments import SegmentedSampler
from .timecode import rate_text

TRUNCATION_SLACK_INTERVALS = 2
"""A video whose last sampled frame lies more than this many sampling intervals
(plus a second) before the duration its container states is reported as cut
short: within that slack the gap is just where the last sample fell."""

DECODE_QUEUE_FRAMES = 64
"""Sampled frames waiting per decoding video. On a CPU a waiting frame is
preprocessed (3×224×224, 0.3-0.6 MB); on a GPU it is raw RGB (2.7 MB at 720p,
6 MB at 1080p): 64 of them stay under 0.4 GB, and two encoder batches of
look-ahead are enough to hide decoding hiccups."""

RAW_BYTES_PER_PREPROCESS = 256 << 20
"""On a GPU, raw RGB frames of a batch are preprocessed in groups of about this
many bytes, so a 256-frame batch never holds 256 raw frames (6 GB at 4K):
a group is one host-to-GPU copy and one resize, and ~100 frames of 720p or 10
of 4K already keep that copy efficient."""

DECODE_WORKERS = max(1, min(4, (os.cpu_count() or 1) // 4))
"""Videos decoded at once in threads, without worker processes. FFmpeg already
decodes one video on every core with frame threads; a second video in
parallel pays only when there are cores to spare (and it hides the start-up of
the next file). 1 on 2-7 cores, up to 4."""

SEGMENTED_QUEUE_FRAMES = 16
"""Sampled frames waiting per video when worker processes decode: up to
workers + 1 videos are in flight (so short videos keep every worker busy),
and the workers' own look-ahead (`workers.SEGMENTS_AHEAD_PER_WORKER`) already
hides hiccups, so a short queue per video keeps memory flat."""

WRITE_QUEUE_BATCHES = 8
"""Encoded batches waiting to be written to Chroma (32-256 × 512 floats each,
under 0.5 MB): writes run beside encoding, and a slow disk holds back the
encoder after 8 batches instead of piling up vectors."""


@dataclass
class VideoResult:
    video: Video
    status: str  # "indexed", "unchanged", "moved", "copied" or "failed"
    frames: int = 0
    reason: str = ""  # why it failed
    warnings: list[str] = field(default_factory=list)
    source: str = ""  # the path a moved or copied video's frames came from
    strategy: str = ""  # how frames were reached: decode, seek or keyframes (see sample.STRATEGIES)


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


@dataclass(frozen=True)
class _Start:
    duration: float | None
    rate: Fraction | None


@dataclass(frozen=True)
class _End:
    decode_errors: int
    strategy: str


@dataclass(frozen=True)
class _ToIndex:
    video: Video
    fingerprint: Fingerprint


def index_videos(videos: Iterable[Video], encoder, store, progress: Progress | None = None, *,
                 sampling: str = "grid", workers: int | None = None, pool=None) -> Iterator[VideoResult]:
    """Bring each video up to date in `store` (a `FrameStore`), yielding one result per video, in order.

    `workers` decoding processes (default: `workers.default_workers()`); with
    1, videos decode in this process's threads (DECODE_WORKERS at once), as
    before worker processes existed. `pool` (a `DecodePool`) is used instead
    of starting one. The encoder runs in this thread, writes to Chroma run in
    a writer thread. A video that cannot be read or decoded fails alone (a
    worker that dies fails its video): the rest go on. Raises what the store
    or the model raises (they would fail every video); nothing queued after a
    failed write happens.
    """
    from .workers import DecodePool, default_workers

    progress = progress or NoProgress()
    every = store.info.every
    workers = pool.workers if pool is not None else (workers or default_workers())
    if workers > 1 and pool is None:
        with DecodePool(workers) as own:
            yield from index_videos(videos, encoder, store, progress, sampling=sampling, pool=own)
        return
    writer = BackgroundWriter(WRITE_QUEUE_BATCHES)
    in_progress: set[str] = set()  # videos with frames written or queued but not yet registered

    def jobs():
        for video in videos:
            writer.flush()  # the registry read below sees every earlier write
            outcome = update_video(video, store, in_progress)
            if isinstance(outcome, VideoResult):
                yield outcome, None
                continue
            if pool is None:
                encoder.load()  # only now: when nothing needs encoding, the model never loads
                prepare = encoder.preprocess if encoder.preprocess_in_loader else None
                yield outcome, functools.partial(_decode, video, every, sampling, prepare)
            else:  # workers decode the first segments while the model loads
                encoder.load_in_background()
                ticket = pool.open_video()  # here, in consuming order: the decoding threads start in any order
                yield outcome, functools.partial(_decode, video, every, sampling, _loader_preparation(encoder), pool,
                                                 encoder.input_size, ticket)

    at_once, depth = (DECODE_WORKERS, DECODE_QUEUE_FRAMES) if pool is None else (workers + 1, SEGMENTED_QUEUE_FRAMES)
    pending: list[tuple[VideoResult, Future | None]] = []  # results waiting for their writes
    try:
        for job, items in prefetch_each(jobs(), at_once, depth):
            if items is None:
                pending.append((job, None))  # decided without decoding
            else:
                in_progress.add(job.video.video_id)
                pending.append(_index_one(job, items, encoder, store, writer, progress, every))
            while pending and (pending[0][1] is None or pending[0][1].done()):
                yield _finished(*pending.pop(0), progress, in_progress)
        writer.flush()
        while pending:
            yield _finished(*pending.pop(0), progress, in_progress)
        writer.close()
    except (KeyboardInterrupt, GeneratorExit):
        # A clean stop: the queued writes finish (a few batches), videos whose
        # registration ran are kept, and frames of the one in progress go.
        writer.close(wait=not writer.failed)
        for video_id in in_progress:
            if store.indexed_video(video_id) is None:
                store.remove_leftovers(video_id)
        raise
    except BaseException:
        writer.close(wait=False)
        raise


def _finished(result: VideoResult, marked: Future | None, progress: Progress, in_progress: set[str]) -> VideoResult:
    """A result, once its video's last write (if any) is done."""
    if marked is not None:
        marked.result()  # raises if a write of the video failed
        in_progress.discard(result.video.video_id)
    progress.finish(result)
    return result


def update_video(video: Video, store, in_progress: set[str] | None = None) -> VideoResult | _ToIndex:
    """Skip, move or copy one video, or say it needs indexing; see the module docstring.

    Runs in the calling thread with no write queued. Returns a final
    VideoResult, or a _ToIndex when the video must be decoded and encoded (its
    stale frames are already removed then). Raises what the store raises.
    """
    in_progress = in_progress if in_progress is not None else set()
    try:
        video.path.encode("utf-8")
    except UnicodeEncodeError:
        return VideoResult(video, "failed", reason="its name is not valid UTF-8, which the index cannot store; "
                                                   "rename the file")
    try:
        stat = os.stat(video.path)
    except OSError as exc:
        return VideoResult(video, "failed", reason=_os_reason(video.path, exc))
    not_regular = not_regular_reason(stat.st_mode)
    if not_regular:
        return VideoResult(video, "failed", reason=not_regular)
    entry = store.indexed_video(video.video_id)
    if entry and entry.size == stat.st_size and entry.mtime_ns == stat.st_mtime_ns and entry.hash:
        return VideoResult(video, "unchanged", frames=entry.frames)
    if stat.st_size == 0:
        if entry:
            store.remove_video(video.video_id)
        return VideoResult(video, "failed", reason="empty file (0 bytes)")
    try:
        fingerprint = Fingerprint(stat.st_size, stat.st_mtime_ns, content_hash(video.path, stat.st_size))
    except OSError as exc:
        return VideoResult(video, "failed", reason=_os_reason(video.path, exc))

    if entry:
        if entry.hash:
            same = entry.hash == fingerprint.content
        else:  # registered before content hashes existed: trust size and mtime
            same = entry.mtime_ns == fingerprint.mtime_ns
        if same and entry.size == fingerprint.size:  # touched, content unchanged
            store.update_fingerprint(video.video_id, fingerprint.as_metadata())
            return VideoResult(video, "unchanged", frames=entry.frames)
        store.remove_video(video.video_id)  # changed since: its old frames must go
    else:
        store.remove_leftovers(video.video_id)  # frames of an interrupted run, if any

    in_progress.add(video.video_id)  # a copy cut short by Ctrl-C is cleaned up
    reused = _reuse_same_content(video, fingerprint, store)
    in_progress.discard(video.video_id)  # registered, or nothing of it stored: indexing adds it back
    return reused or _ToIndex(video, fingerprint)


def _reuse_same_content(video: Video, fingerprint: Fingerprint, store) -> VideoResult | None:
    """Copy the frames of a registered video with the same content, if there is one.

    Prefers a source whose file is gone (a move: its entry is then removed).
    """
    sources = [s for s in store.videos_with_content(fingerprint.size, fingerprint.content) if s.video_id != video.video_id]
    if not sources:
        return None
    sources.sort(key=lambda s: os.path.exists(s.path))  # missing files (moves) first
    source = sources[0]
    frames = store.copy_video(source, video)
    if frames != source.frames or frames == 0:
        store.remove_leftovers(video.video_id)  # the source is incomplete: index from the file
        return None
    same = {"fps": source.fps} if source.fps else {}  # the same content: the same frame rate and samples
    same["sampling"] = source.sampling
    store.mark_indexed(video, frames, {**fingerprint.as_metadata(), "duration": source.duration or 0.0, **same})
    moved = not os.path.exists(source.path)
    if moved:
        store.remove_video(source.video_id)
    return VideoResult(video, "moved" if moved else "copied", frames=frames, source=source.path)


def _decode(video: Video, every: float, sampling: str, prepare, pool=None, input_size=None, ticket=None):
    """Runs in a decoding thread: a _Start, then (time, pixels or prepared tensor) per frame, then an _End.

    With a pool, grid samples of a video PyAV opens decode there, resized to
    the model's input size; anything else (keyframes sampling, a file only
    OpenCV reads) decodes here."""
    sampler = None
    if pool is not None and sampling == "grid":
        try:
            sampler = SegmentedSampler(video, every, pool, input_size, ticket)
        except VideoError:
            sampler = None  # the in-process sampler tries OpenCV too, and says why neither reads it
    sampler = sampler or VideoSampler(video, every, sampling=sampling)
    with sampler:
        yield _Start(sampler.info.duration, sampler.info.rate)
        for frame in sampler:
            yield frame.t, (prepare([frame.pixels]) if prepare else frame.pixels)
        yield _End(sampler.decode_errors, sampler.used_strategy)


def _loader_preparation(encoder):
    """encoder.preprocess where frames should be preprocessed in the loader (a CPU), else nothing;
    decided at the first frame, so asking does not wait for the model before decoding starts."""
    def prepare(images):
        return encoder.preprocess(images) if encoder.preprocess_in_loader else images[0]
    return prepare


def _index_one(job: _ToIndex, items, encoder, store, writer: BackgroundWriter, progress: Progress, every: float):
    """Encode one video's frames as they arrive and queue their writes.

    Returns (result, future of the video's last queued write, or None when nothing was queued).
    """
    video = job.video
    try:
        start = next(items)
    except VideoError as exc:
        if lacks_mp4_index(video.path):
            return VideoResult(video, "failed", reason="truncated MP4/MOV: its index (moov box) is missing, so no "
                                                       "frame can be located; copy or download it again"), None
        return VideoResult(video, "failed", reason=str(exc)), None
    except OSError as exc:
        return VideoResult(video, "failed", reason=_os_reason(video.path, exc)), None
    progress.start(video, start.duration)
    frames = 0
    done_t = 0.0  # video time covered by encoded frames
    times: list[float] = []
    prepared: list = []  # model-ready tensors of the batch so far
    raw: list = []  # frames still in RGB (GPU: preprocessed there, in groups)
    raw_bytes = 0
    end = _End(0, "")

    def prepare_raw():
        nonlocal raw_bytes
        if raw:
            prepared.append(encoder.preprocess(raw))
            raw.clear()
            raw_bytes = 0

    def flush_batch():
        nonlocal frames, done_t
        prepare_raw()
        if encoder.embeds_asynchronously:
            # The vectors are copied back in the writer thread: this thread prepares the next batch meanwhile.
            writer.submit(_add_frames, store, video, list(times), encoder.embed_pixels_later(torch_cat(prepared)))
        else:
            writer.submit(store.add_frames, video, list(times), encoder.embed_pixels(torch_cat(prepared)))
        progress.advance(times[-1] - done_t, len(times))
        frames, done_t = frames + len(times), times[-1]
        times.clear()
        prepared.clear()

    while True:
        try:
            item = next(items)
        except StopIteration:
            break
        except (VideoError, OSError) as exc:  # the file stopped decoding part-way
            cleanup = writer.submit(store.remove_leftovers, video.video_id)
            return VideoResult(video, "failed", reason=f"decoding stopped: {exc}"), cleanup
        if isinstance(item, _End):
            end = item
            break
        times.append(item[0])
        if encoder.preprocess_in_loader:
            prepared.append(item[1])
        else:
            raw.append(item[1])
            raw_bytes += item[1].nbytes
            if raw_bytes >= RAW_BYTES_PER_PREPROCESS:
                prepare_raw()
        if len(times) >= encoder.batch_size:
            flush_batch()
    if times:
        flush_batch()
    if frames == 0:
        return VideoResult(video, "failed", reason="no decodable video frames (empty, corrupt or truncated file)"), None
    result = VideoResult(video, "indexed", frames=frames, strategy=end.strategy)
    duration = start.duration
    if duration and done_t + TRUNCATION_SLACK_INTERVALS * every + 1.0 < duration:
        result.warnings.append(f"decodes only to {done_t:.1f} s of its {duration:.1f} s (truncated or damaged?); "
                               "indexed as far as it decodes")
    elif end.decode_errors:
        result.warnings.append(f"{end.decode_errors} corrupt packet(s) skipped; indexed as far as it decodes")
    rate = {"fps": rate_text(start.rate)} if start.rate else {}  # "30000/1001" exact, a VFR average "15.512"
    sampled = IRREGULAR_SAMPLING if end.strategy.startswith("keyframes") else "grid"  # what search shapes clips by
    metadata = {**job.fingerprint.as_metadata(), "duration": float(duration or done_t), "sampling": sampled, **rate}
    return result, writer.submit(store.mark_indexed, video, frames, metadata)


def _add_frames(store, video: Video, times: list[float], embeddings) -> None:
    from .encode import vectors_of

    store.add_frames(video, times, vectors_of(embeddings))


def torch_cat(tensors):
    import torch

    return torch.cat(tensors)


def _os_reason(path: str, exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError) and os.path.islink(path):
        return "broken symbolic link (its target does not exist)"
    if isinstance(exc, PermissionError):
        return "permission denied (the file cannot be read; check its permissions)"
    return exc.strerror or str(exc)
