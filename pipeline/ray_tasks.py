"""What runs on a Ray cluster's workers: check files, plan a video, decode a segment, encode frames.

Plain functions and one class; `pipeline/ray_index.py` (the driver) wraps them
with `ray.remote`, so this module imports neither Ray nor torch at the top: a
decoding worker never loads the model. Each result names the worker that
produced it (node, pid, niceness) and how long it took, for the driver's summary.

Ray starts its worker processes at niceness 15 (its `worker_niceness`), so
that its own daemons stay responsive. The work here replaces the indexing
process's, which runs at the user's niceness: at 15, an encoder on a node
with other work at the default priority got a fraction of a core (measured:
2.2-2.4x slower per batch than the indexing process beside two busy processes,
as fast at nice 0; bench/ray_actor_encode.py). So each task and the encoder
first take the driver's niceness (`take_niceness`), where the OS lets them.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from .cuts import HandOff
from .errors import VideoError

DECODE_THREADS = 1
"""FFmpeg threads per decoding task: each task reserves one CPU of its node,
so a node runs as many segments at once as it has CPUs, one core each."""


@dataclass(frozen=True)
class Worker:
    """Who did a piece of work: a process on a node."""

    node: str  # the node's IP address, as Ray names it
    pid: int
    kind: str  # "decode" or "encode"
    nice: int = 0  # the process's niceness while it worked
    threads: int = 1  # torch's threads in an encoding worker (decoding workers run FFmpeg's own)

    @classmethod
    def here(cls, kind: str, threads: int = 1) -> "Worker":
        try:
            import ray

            node = ray.util.get_node_ip_address()
        except Exception:  # outside Ray (a library user calling these directly)
            node = socket.gethostname()
        return cls(node, os.getpid(), kind, niceness() or 0, threads)


def niceness() -> int | None:
    """This process's niceness; None where the OS has none (Windows)."""
    return os.getpriority(os.PRIO_PROCESS, 0) if hasattr(os, "getpriority") else None


def take_niceness(niceness: int | None) -> None:
    """Run this worker process at `niceness` (the driver's; None: leave it). Lowering
    Ray's 15 needs CAP_SYS_NICE or a high enough RLIMIT_NICE; without them it stays
    (start the nodes with RAY_worker_niceness=0 then, as the README says)."""
    if niceness is None or not hasattr(os, "setpriority"):
        return
    try:
        if os.getpriority(os.PRIO_PROCESS, 0) != niceness:
            os.setpriority(os.PRIO_PROCESS, 0, niceness)
    except OSError:  # not permitted here: the work runs, at Ray's priority
        pass


@dataclass(frozen=True)
class VideoPlan:
    """What the driver needs to cut a video into segments."""

    duration: float | None
    rate: Fraction | None
    height: int
    width: int
    keyframes: list[tuple[float, int]] | None  # None: PyAV cannot open it (OpenCV can): decoded whole


@dataclass(frozen=True)
class SegmentSignals:
    """Decoded frames' shot signatures (`shots.frame_signature`) of one segment,
    for the driver's `cuts.CutRecorder`, which runs over a video's segments in
    order so that a cut on a segment's first or last frame is found against its
    neighbour's frames. With a hand-off, the segment recorded its own intervals
    (`segment_cuts.record_within`) and only its head and its edge travel."""

    times: tuple[float, ...]  # every decoded frame (with a hand-off: the head's), in decoding order
    signatures: np.ndarray  # len(times) × h × w × 3 Lab (uint8 where that is lossless: half the bytes to move)
    before: tuple[int, ...]  # per candidate frame (with a hand-off: up to its start): frames of `times` decoded up to it
    hand_off: HandOff | None = None


@dataclass(frozen=True)
class DecodedSegment:
    """Candidate frames of one segment (or every sample of a video decoded whole), resized for the model."""

    times: list[float]
    pixels: list[np.ndarray]  # H×W×3 uint8 RGB, one per time
    decode_errors: int
    strategy: str  # how they were reached (sample.STRATEGIES, or "segments")
    worker: Worker
    seconds: float  # decoding time
    signals: SegmentSignals | None = None  # a segment asked for signals whose frames all converted
    cuts: tuple[float, ...] | None = None  # a video decoded whole: the shot changes its sampler recorded


@dataclass(frozen=True)
class EncodedSegment:
    times: list[float]
    vectors: np.ndarray  # (n, dim) float32, unit length
    decode_errors: int
    strategy: str
    decoded_by: Worker
    decode_seconds: float
    encoded_by: Worker
    encode_seconds: float
    signals: SegmentSignals | None = None
    cuts: tuple[float, ...] | None = None


def unseen(files: list[tuple[str, int]]) -> tuple[str, list[tuple[str, str]]]:
    """(this node, [(path, why this node cannot read it)]) for (path, size as the driver sees it) pairs."""
    missing = []
    for path, size in files:
        try:
            with open(path, "rb") as fh:
                seen = os.fstat(fh.fileno()).st_size
        except OSError as exc:
            missing.append((path, exc.strerror or str(exc)))
            continue
        if seen != size:
            missing.append((path, f"{seen} bytes here, {size} where the index runs: another file at the same path"))
    try:
        import ray

        node = f"{ray.util.get_node_ip_address()} ({ray.get_runtime_context().get_node_id()[:8]})"
    except Exception:  # outside Ray
        node = socket.gethostname()
    return node, missing


def plan_video(path: str, niceness: int | None = None) -> VideoPlan:
    """The stream's facts and its keyframes (a demux of the file, no decoding).

    Raises VideoError when neither PyAV nor OpenCV can open it."""
    from .decoders import PyAVDecoder, open_decoder

    take_niceness(niceness)
    try:
        decoder = PyAVDecoder(path)
        try:
            info = decoder.info()
            keyframes = decoder.keyframes()
        finally:
            decoder.close()
    except VideoError:
        decoder = open_decoder(path)  # OpenCV, or a VideoError saying why neither reads it
        try:
            info = decoder.info()
        finally:
            decoder.close()
        keyframes = None
    return VideoPlan(info.duration, info.rate, info.height, info.width, keyframes)


def decode_segment(path: str, start_pts: int | None, end_pts: int | None, every: float,
                   size: tuple[int, int] | None, signals: bool = False, niceness: int | None = None) -> DecodedSegment:
    """The candidates of one segment (see `segments.is_candidate`); the driver applies the grid rule.
    With `signals`, also every frame's shot signature (None when a frame would not convert).

    Raises VideoError when the file cannot be opened or decoded."""
    from .decode_worker import FrameSignals, SegmentTask
    from .decode_worker import decode_segment as candidates

    take_niceness(niceness)
    started = time.perf_counter()
    times, pixels, errors = [], [], 0
    signal_times: list[float] = []
    signatures: list[np.ndarray] = []
    before: list[int] = []
    recorded = signals
    for item in candidates(SegmentTask(0, path, start_pts, end_pts, every, size, DECODE_THREADS, signals)):
        if isinstance(item, int):
            errors = item
        elif isinstance(item, FrameSignals):
            if item.signatures is None:
                recorded = False
            else:
                signal_times.extend(item.times)
                signatures.append(item.signatures)
        else:
            times.append(item[0])
            pixels.append(item[1])
            before.append(len(signal_times))
    found = None
    if recorded and signal_times:  # none at all: nothing decoded, or a decoder that sends none
        found = _signals(times, before, signal_times, np.concatenate(signatures), every)
    return DecodedSegment(times, pixels, errors, "segments", Worker.here("decode"), time.perf_counter() - started,
                          found)


def _signals(candidates: list[float], before: list[int], frame_times: list[float], signatures: np.ndarray,
             every: float) -> SegmentSignals:
    """What the driver's recorder needs of a segment: its head and hand-off where it recorded
    its own intervals, else every frame's signature."""
    from .segment_cuts import record_within

    within = record_within(candidates, before, frame_times, signatures, every)
    if within is None:
        return SegmentSignals(tuple(frame_times), _narrowed(signatures), tuple(before))
    head, hand_off = within
    hand_off = replace(hand_off, pending_signatures=_narrowed(hand_off.pending_signatures))
    return SegmentSignals(tuple(frame_times[:head]), _narrowed(signatures[:head]), tuple(before[: hand_off.start_candidate + 1]),
                          hand_off)


def _narrowed(signatures: np.ndarray) -> np.ndarray:
    """Lab signatures as uint8 when every value fits (they come from uint8 RGB), else unchanged."""
    if signatures.size and (signatures.min() < 0 or signatures.max() > 255):
        return signatures
    return signatures.astype(np.uint8)


def sample_whole(path: str, every: float, sampling: str, size: tuple[int, int] | None,
                 record_cuts: bool = False, niceness: int | None = None) -> DecodedSegment:
    """Every sample of a video decoded in one task (keyframes sampling, or a file only OpenCV reads);
    with `record_cuts`, its shot changes as the in-process sampler records them.

    Raises VideoError when the file cannot be opened."""
    from .decoders import resize_rgb
    from .records import Video
    from .sample import VideoSampler

    take_niceness(niceness)
    started = time.perf_counter()
    times, pixels = [], []
    with VideoSampler(Video(path, "", ""), every, sampling=sampling, record_cuts=record_cuts) as sampler:
        for frame in sampler:
            times.append(frame.t)
            pixels.append(resize_rgb(frame.pixels, size) if size else frame.pixels)
        return DecodedSegment(times, pixels, sampler.decode_errors, sampler.used_strategy, Worker.here("decode"),
                              time.perf_counter() - started, cuts=sampler.cuts)


class FrameEncoder:
    """An encoding actor: loads the CLIP model once, then embeds decoded segments.

    Raises ScenegrepError (on construction) when the model cannot be loaded there."""

    def __init__(self, model: str, device: str | None, precision: str | None, batch_size: int | None,
                 niceness: int | None = None):
        from .encode import ClipEncoder

        import torch

        from .workers import usable_cores

        take_niceness(niceness)
        # Ray sets OMP_NUM_THREADS to the CPUs an actor reserves (ENCODER_CPUS: 1), so torch
        # would encode on one thread; `scenegrep index` encodes on every core with decoding
        # beside it, and so does this actor (bench/ray_overhead.py: encoder busy 33.5 -> 24.3 s).
        torch.set_num_threads(usable_cores())
        self.encoder = ClipEncoder(model, device=device, batch_size=batch_size, precision=precision).load()
        self.worker = Worker.here("encode", torch.get_num_threads())

    def describe(self) -> tuple[Worker, str, str]:
        """(who, device, precision): asked once, so a model that does not load fails before any work."""
        return self.worker, self.encoder.device, self.encoder.precision

    def encode(self, segment: DecodedSegment) -> EncodedSegment:
        from .encode import vectors_of

        started = time.perf_counter()
        encoder = self.encoder
        chunks = []
        for start in range(0, len(segment.pixels), encoder.batch_size):
            batch = encoder.preprocess(segment.pixels[start : start + encoder.batch_size])
            chunks.append(vectors_of(encoder.embed_pixels_later(batch)))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, encoder.info.dim), np.float32)
        return EncodedSegment(segment.times, vectors, segment.decode_errors, segment.strategy, segment.worker,
                              segment.seconds, self.worker, time.perf_counter() - started, segment.signals,
                              segment.cuts)
