"""Indexing on a Ray cluster: the same index as `indexer.index_videos`, decoded and encoded on the cluster.

The driver (this process) keeps every decision and every write:

1. each video's state is decided here first (`indexer.update_video`): unchanged
   videos are skipped, moved and copied ones reuse their embeddings, all before
   anything is scheduled (with nothing new, Ray is not even contacted);
2. every alive node checks that it sees the videos to index, at the same paths
   and sizes (`ray_tasks.unseen`); videos some node cannot read fail, named;
3. a task per video reads its keyframes (`ray_tasks.plan_video`), and the video
   is cut into segments (`segments.plan_segments`);
4. per segment a decoding task (one CPU) feeds an encoding actor that loaded the
   model once (one GPU each where the cluster has GPUs, else one actor per
   node): `encode.remote(decode.remote(...))`, so frames go from the decoding
   node to the encoding one without passing through the driver; only times
   and vectors come back. At most `in_flight` segments are out at a time;
5. segments come back in any order; each video's are taken in segment order,
   through the grid sampler's rule (`segments.GridRule`), so exactly a single
   pass's frames are kept, and written by one writer thread, then the video is
   registered once all its frames are stored;
6. shot changes are recorded as without Ray (`pipeline/cuts.py`): each
   decoding task records the intervals inside its segment and sends only the
   signatures of its edges (`segment_cuts.record_within`), and the driver runs
   one `CutRecorder` per video over its segments in order (a cut on a segment's
   first or last frame is found against its neighbour's frames); a video
   decoded whole records its own.

Failures: a decoding task whose worker or node dies is retried by Ray
(DECODE_RETRIES); a dead encoding actor's segments go to the actors left (a new
one is started only when none is left: a replacement would take a CPU that
decoding needs). Frame ids are (video, time), so a retried segment overwrites,
never duplicates. A segment that still fails fails its video (its frames are
deleted, it is not registered): running the command again finishes the job.
A killed driver leaves frames of unregistered videos, which the next run
deletes before indexing them again (as without Ray).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Iterable, Iterator

import numpy as np

from .cuts import CutRecorder
from .errors import ScenegrepError, VideoError
from .indexer import (TRUNCATION_SLACK_INTERVALS, WRITE_QUEUE_BATCHES, NoProgress, Progress, VideoResult, _ToIndex,
                      update_video)
from .overlap import BackgroundWriter
from .ray_tasks import (EncodedSegment, FrameEncoder, SegmentSignals, VideoPlan, Worker, decode_segment, niceness,
                        plan_video, sample_whole, unseen)
from .records import Video
from .registry import IRREGULAR_SAMPLING, cuts_metadata
from .segments import GridRule, Segment, plan_recording
from .timecode import rate_text

INSTALL_HINT = "pip install 'scenegrep[ray]'"

SEGMENTS_IN_FLIGHT_PER_SLOT = 2
"""Segments out on the cluster per decoding slot (a CPU not held by an encoder):
one decoding and one decoded, waiting for its encoder, so no slot idles while
the driver catches up. A segment holds at most MAX_SEGMENT_SECONDS / every
resized frames (60 × 0.27 MB at N=2) in the object store: 32 MB per slot; recording shot
changes adds the signatures (7 KB each) of a segment's edges, about two intervals of frames
(every one of a segment with fewer than two samples of its own)."""

PLANS_IN_FLIGHT = 8
"""Videos whose keyframes are being read at once (a demux each, seconds for an
episode): enough to keep segments queued for the slots, few enough that a run
over thousands of files does not read them all before encoding one."""

DECODE_RETRIES = 3
"""Ray's retries of a decoding or planning task whose worker process or node died."""

SEGMENT_ATTEMPTS = 3
"""Times the driver submits a segment whose encoder died or whose decoded frames
were lost (beyond Ray's own retries) before failing its video."""

ENCODER_CPUS = 1
"""CPUs an encoding actor reserves on a cluster without GPUs: the model runs on
them, so decoding tasks do not take them too."""

ENCODER_START_SECONDS = 600.0
"""How long an encoding actor may take to be placed and load the model (imports,
weights from a shared disk) before the run gives up on it."""

CONNECT_CHECK_SECONDS = 10.0
"""How long the head's port may take to accept a connection before the address is called wrong."""

WAIT_SECONDS = 1.0
"""How long the driver waits for a segment before refreshing the progress bar."""

NODES_EVERY_SECONDS = 5.0
"""How often the driver asks Ray which nodes are alive (for the progress bar)."""


@dataclass(frozen=True)
class EncoderSpec:
    """How encoding actors load the model: what `ClipEncoder` takes."""

    model: str
    device: str | None = None
    precision: str | None = None
    batch_size: int | None = None


@dataclass
class WorkerTotals:
    """What one worker process did: for the summary's per-worker throughput."""

    worker: Worker
    segments: int = 0
    frames: int = 0
    video_seconds: float = 0.0
    busy_seconds: float = 0.0


@dataclass
class ClusterStats:
    """The cluster a run used and what each worker did; filled while `index_on_ray` runs."""

    address: str = ""
    nodes: int = 0
    cpus: float = 0.0
    gpus: float = 0.0
    encoders: int = 0
    device: str = ""
    precision: str = ""
    retried: int = 0  # segments the driver submitted again
    segments: int = 0  # segments planned
    in_flight_limit: int = 0  # segments allowed out on the cluster at once (back-pressure)
    peak_in_flight: int = 0
    workers: dict[Worker, WorkerTotals] = field(default_factory=dict)

    def count(self, worker: Worker, frames: int, video_seconds: float, seconds: float) -> None:
        totals = self.workers.setdefault(worker, WorkerTotals(worker))
        totals.segments += 1
        totals.frames += frames
        totals.video_seconds += video_seconds
        totals.busy_seconds += seconds


CLIENT_CONNECT_ATTEMPTS = 3
"""Tries to open a Ray client session (`ray://`): the head starts a server process
per client, and on a loaded head that start can fail once ("Initialization
failure from server", seen in about 1 of 4 test runs on 2 busy cores) and
then succeed."""

CLIENT_RETRY_SECONDS = 2.0


def require_ray():
    """The `ray` module. Raises ScenegrepError saying how to install it when it is missing."""
    try:
        import ray
    except ImportError:
        raise ScenegrepError(f"--ray needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def connect(address: str | None):
    """Join the cluster at `address` ("auto", "host:6379" or "ray://host:10001"), or start a
    local Ray instance when None. Returns the `ray` module.
    Raises ScenegrepError when Ray is missing or the cluster cannot be reached."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    _notices_to_stderr(ray)
    if address not in (None, "auto"):
        _check_reachable(address)
    options = dict(logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
    if address is None:  # a local instance: its workers start at this process's niceness (see ray_tasks)
        options["include_dashboard"] = False
        options["_system_config"] = {"worker_niceness": niceness() or 0}
    try:
        for attempt in range(1, CLIENT_CONNECT_ATTEMPTS + 1):
            try:
                ray.init(address=address, **options)
                break
            except ConnectionAbortedError:  # the head's server for this Ray client did not start in time
                if not (address or "").startswith("ray://") or attempt == CLIENT_CONNECT_ATTEMPTS:
                    raise
                ray.shutdown()
                print(f"scenegrep: the Ray client server at {address} failed to start a session; trying again "
                      f"({attempt + 1} of {CLIENT_CONNECT_ATTEMPTS})", file=sys.stderr, flush=True)
                time.sleep(CLIENT_RETRY_SECONDS)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise ScenegrepError(f"cannot connect to {where}: {_first_line(exc)}; start a cluster with `ray start --head` "
                             "or check the address (auto, host:6379 or ray://host:10001)") from None
    return ray


def index_on_ray(videos: Iterable[Video], spec: EncoderSpec, input_size, store, progress: Progress | None = None, *,
                 address: str | None = None, sampling: str = "grid", stats: ClusterStats | None = None,
                 record_cuts: bool = True) -> Iterator[VideoResult]:
    """Bring each video up to date in `store`, decoding and encoding on a Ray cluster; one result per video, in order.

    `input_size(height, width)` is the size frames are resized to where they are
    decoded (`ClipEncoder.input_size`); `spec` says how encoders load the model.
    `stats` is filled with the cluster and per-worker totals. With
    `record_cuts`, shot changes are recorded in the registry as
    `indexer.index_videos` records them. Raises
    ScenegrepError when Ray is missing, the cluster cannot be reached or the
    model cannot be loaded there; raises what the store raises.
    """
    progress = progress or NoProgress()
    stats = stats if stats is not None else ClusterStats()
    decided: list[VideoResult | _ToIndex] = []
    for video in videos:
        outcome = update_video(video, store)
        decided.append(outcome)
    work = [job for job in decided if isinstance(job, _ToIndex)]
    if not work:
        for outcome in decided:
            progress.finish(outcome)
            yield outcome
        return
    ray = connect(address)
    run = None
    try:
        run = _Run(ray, spec, input_size, store, progress, sampling, stats, address, record_cuts)
        yield from run.results(decided)
    finally:
        if run is not None:
            run.close()
        ray.shutdown()  # this driver's tasks and actors end with it (a local instance too)


@dataclass
class _VideoWork:
    job: _ToIndex
    plan: VideoPlan | None = None
    segments: list[Segment] = field(default_factory=list)
    whole: bool = False  # decoded in one task (keyframes sampling, or only OpenCV reads it)
    size: tuple[int, int] | None = None
    done: dict[int, EncodedSegment] = field(default_factory=dict)  # by segment index, waiting for their turn
    next_segment: int = 0  # the next segment to write
    rule: GridRule | None = None
    recording: bool = False  # its segments send shot signatures
    recorder: CutRecorder | None = None  # None: not recorded (whole, skipped GOPs, a frame that would not convert)
    cuts: tuple[float, ...] | None = None  # a video decoded whole: what its task recorded
    frames: int = 0
    done_t: float = 0.0
    decode_errors: int = 0
    strategy: str = ""
    result: VideoResult | None = None
    registered: object = None  # the Future of the registration write

    @property
    def video(self) -> Video:
        return self.job.video


class _Run:
    def __init__(self, ray, spec: EncoderSpec, input_size, store, progress, sampling: str, stats: ClusterStats,
                 address: str | None, record_cuts: bool):
        self.ray = ray
        self.spec = spec
        self.input_size = input_size
        self.store = store
        self.progress = progress
        self.sampling = sampling
        self.record_cuts = record_cuts
        self.every = store.info.every
        self.stats = stats
        self.niceness = niceness()  # the workers take it (`ray_tasks.take_niceness`)
        self.writer = BackgroundWriter(WRITE_QUEUE_BATCHES)
        resources = ray.cluster_resources()
        stats.address = address or "local"
        stats.cpus, stats.gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        stats.nodes = self._alive_nodes()
        self.use_gpus = stats.gpus >= 1 and spec.device not in ("cpu",)
        self._plan = ray.remote(num_cpus=1, max_retries=DECODE_RETRIES)(plan_video)
        self._decode = ray.remote(num_cpus=1, max_retries=DECODE_RETRIES)(decode_segment)
        self._whole = ray.remote(num_cpus=1, max_retries=DECODE_RETRIES)(sample_whole)
        actor_resources = {"num_gpus": 1, "num_cpus": 0} if self.use_gpus else {"num_cpus": ENCODER_CPUS}
        self._encoder_class = ray.remote(max_restarts=0, **actor_resources)(FrameEncoder)
        self.wanted_encoders = int(stats.gpus) if self.use_gpus else max(1, min(stats.nodes, int(stats.cpus) // 2))
        self.encoders: list = []  # started once the files are checked and something is left to encode
        encoder_cpus = 0 if self.use_gpus else ENCODER_CPUS * self.wanted_encoders
        self.slots = max(1, int(stats.cpus - encoder_cpus))
        self.in_flight_limit = stats.in_flight_limit = SEGMENTS_IN_FLIGHT_PER_SLOT * self.slots
        self._next_encoder = 0
        self._nodes_asked = time.monotonic()

    # -- the cluster --------------------------------------------------------------------

    def _alive_nodes(self) -> int:
        return sum(1 for node in self.ray.nodes() if node.get("Alive"))

    def _start_encoders(self, count: int) -> None:
        """Start `count` actors, spread over the nodes, and wait until each has loaded the model.
        Raises ScenegrepError when none can (the model's error, from the cluster)."""
        actors = [self._encoder_class.options(scheduling_strategy="SPREAD").remote(
            self.spec.model, self.spec.device, self.spec.precision, self.spec.batch_size, self.niceness)
            for _ in range(count)]
        errors = []
        for actor in actors:
            try:
                _, device, precision = self.ray.get(actor.describe.remote(), timeout=ENCODER_START_SECONDS)
            except Exception as exc:  # a model that does not load there, an actor that died or never got placed
                errors.append(_cause(exc))
                self.ray.kill(actor)
                continue
            self.encoders.append(actor)
            self.stats.device, self.stats.precision = device, precision
        self.stats.encoders = len(self.encoders)
        if not self.encoders:
            raise ScenegrepError(f"no encoder could start on the Ray cluster: {errors[0] if errors else 'unknown'}")

    def _encoder(self):
        if not self.encoders:
            self._start_encoders(1)
        self._next_encoder = (self._next_encoder + 1) % len(self.encoders)
        return self.encoders[self._next_encoder]

    def _encoder_died(self, actor) -> None:
        if actor in self.encoders:
            self.encoders.remove(actor)

    def check_files(self, work: list[_VideoWork]) -> None:
        """Ask every alive node whether it reads each video; fail those some node cannot."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        files = []
        for item in work:
            try:
                files.append((item.video.path, os.path.getsize(item.video.path)))
            except OSError:
                pass  # fails when planned, with its reason
        check = self.ray.remote(num_cpus=0, max_retries=DECODE_RETRIES)(unseen)
        nodes = [node for node in self.ray.nodes() if node.get("Alive")]
        answers = self.ray.get([check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                                .remote(files) for node in nodes])
        missing: dict[str, list[str]] = {}
        for node, unseen_here in answers:
            for path, why in unseen_here:
                missing.setdefault(path, []).append(f"node {node}: {why}")
        for item in work:
            if item.video.path in missing:
                item.result = VideoResult(item.video, "failed", reason=unseen_reason(missing[item.video.path]))

    # -- the run ------------------------------------------------------------------------

    def results(self, decided: list) -> Iterator[VideoResult]:
        work = [_VideoWork(job) for job in decided if isinstance(job, _ToIndex)]
        self.check_files(work)
        of_job = {id(w.job): w for w in work}
        order: list[VideoResult | _VideoWork] = [of_job.get(id(job), job) for job in decided]
        to_plan = [w for w in work if w.result is None]
        if to_plan:
            self._start_encoders(self.wanted_encoders)
        planning: dict = {}  # plan ref → work
        running: dict = {}  # encode ref → (work, segment, decode ref, attempt)
        queued: list[tuple[_VideoWork, Segment]] = []  # segments waiting for a place in flight
        try:
            while True:
                while to_plan and len(planning) < PLANS_IN_FLIGHT:
                    item = to_plan.pop(0)
                    planning[self._plan.remote(item.video.path, self.niceness)] = item
                while queued and len(running) < self.in_flight_limit:
                    item, segment = queued.pop(0)
                    if item.result is None:
                        self._submit(running, item, segment, None, 1)
                while order and self._finished(order[0]):
                    yield self._yield(order.pop(0))
                if not order:
                    break
                refs = [*planning, *running]
                if not refs:  # everything is written; waiting for the registrations
                    self.writer.flush()
                    continue
                ready, _ = self.ray.wait(refs, num_returns=1, timeout=WAIT_SECONDS)
                self._refresh_nodes()
                for ref in ready:
                    if ref in planning:
                        item = planning.pop(ref)
                        queued.extend((item, s) for s in self._planned(item, ref))
                    else:
                        self._segment_done(running, ref)
            self.writer.flush()
        except (KeyboardInterrupt, GeneratorExit):
            self.writer.close(wait=not self.writer.failed)
            for item in work:  # videos in progress: their frames go
                if item.plan is not None and self.store.indexed_video(item.video.video_id) is None:
                    self.store.remove_leftovers(item.video.video_id)
            raise

    def _finished(self, entry) -> bool:
        if isinstance(entry, VideoResult):
            return True
        if entry.result is None:
            return False
        return entry.registered is None or entry.registered.done()

    def _yield(self, entry) -> VideoResult:
        if isinstance(entry, _VideoWork):
            if entry.registered is not None:
                entry.registered.result()  # raises if a write of the video failed
            entry = entry.result
        self.progress.finish(entry)
        return entry

    def _planned(self, item: _VideoWork, ref) -> list[Segment]:
        try:
            plan: VideoPlan = self.ray.get(ref)
        except Exception as exc:
            self._fail(item, _cause(exc))
            return []
        item.plan = plan
        item.size = self.input_size(plan.height, plan.width) if plan.height and plan.width else None
        item.whole = plan.keyframes is None or self.sampling != "grid"
        if item.whole:
            item.segments = [Segment(0, None, None, 0.0)]
        else:
            item.segments, item.recording = plan_recording(plan.keyframes, self.every, plan.duration, self.slots,
                                                           self.record_cuts)
            item.recorder = CutRecorder(self.every) if item.recording else None
        item.rule = GridRule(self.every)
        self.stats.segments += len(item.segments)
        self.progress.start(item.video, plan.duration)
        return list(item.segments)

    def _submit(self, running: dict, item: _VideoWork, segment: Segment, decoded, attempt: int) -> None:
        if decoded is None:
            path = item.video.path
            decoded = (self._whole.remote(path, self.every, self.sampling, item.size, self.record_cuts, self.niceness)
                       if item.whole
                       else self._decode.remote(path, segment.start_pts, segment.end_pts, self.every, item.size,
                                                item.recording, self.niceness))
        actor = self._encoder()
        running[actor.encode.remote(decoded)] = (item, segment, decoded, attempt, actor)
        self.stats.peak_in_flight = max(self.stats.peak_in_flight, len(running))

    def _segment_done(self, running: dict, ref) -> None:
        from ray.exceptions import RayActorError, RayTaskError

        item, segment, decoded, attempt, actor = running.pop(ref)
        if item.result is not None:
            return  # its video failed already
        try:
            encoded: EncodedSegment = self.ray.get(ref)
        except RayTaskError as exc:
            cause = _cause(exc)
            if isinstance(exc.cause, (VideoError, OSError)) or attempt >= SEGMENT_ATTEMPTS:
                self._fail(item, f"decoding stopped: {cause}" if isinstance(exc.cause, VideoError) else cause)
            else:
                self.stats.retried += 1
                self._submit(running, item, segment, None, attempt + 1)
            return
        except RayActorError:
            self._encoder_died(actor)
            self.stats.retried += 1
            if attempt >= SEGMENT_ATTEMPTS:
                self._fail(item, "its encoder died on the Ray cluster (node lost or out of memory) "
                                 f"{SEGMENT_ATTEMPTS} times; run the command again")
            else:
                self._submit(running, item, segment, decoded, attempt + 1)
            return
        except Exception as exc:  # decoded frames lost with their node, retries spent: decode again
            self.stats.retried += 1
            if attempt >= SEGMENT_ATTEMPTS:
                self._fail(item, f"its segment failed {SEGMENT_ATTEMPTS} times on the Ray cluster: {_cause(exc)}; "
                                 "run the command again")
            else:
                self._submit(running, item, segment, None, attempt + 1)
            return
        item.done[segment.index] = encoded
        self._write_in_order(item)

    def _write_in_order(self, item: _VideoWork) -> None:
        """Write the video's segments that are next in order; register it after the last."""
        while item.next_segment in item.done:
            encoded = item.done.pop(item.next_segment)
            item.next_segment += 1
            kept = [item.whole or item.rule.keeps(t) for t in encoded.times]
            keep = [i for i, k in enumerate(kept) if k]
            times = [encoded.times[i] for i in keep]
            self._record_cuts(item, encoded, kept)
            covered = (times[-1] - item.done_t) if times else 0.0
            self.stats.count(encoded.decoded_by, len(encoded.times), covered, encoded.decode_seconds)
            self.stats.count(encoded.encoded_by, len(encoded.times), covered, encoded.encode_seconds)
            item.decode_errors += encoded.decode_errors
            item.strategy = encoded.strategy
            if times:
                self.writer.submit(self.store.add_frames, item.video, times, encoded.vectors[keep])
                self.progress.advance(covered, len(times))
                item.frames += len(times)
                item.done_t = times[-1]
        if item.next_segment == len(item.segments):
            self._register(item)

    def _record_cuts(self, item: _VideoWork, encoded: EncodedSegment, kept: list[bool]) -> None:
        """Feed the video's CutRecorder this segment's frames and kept samples, in the order they were decoded."""
        if item.whole:
            item.cuts = encoded.cuts
            return
        recorder, signals = item.recorder, encoded.signals
        if recorder is None:
            return
        if signals is None:  # a frame would not convert: this video's edges are found at search time
            item.recorder = None
            return
        if not record_segment(recorder, encoded.times, kept, signals):
            item.recorder = None

    def _register(self, item: _VideoWork) -> None:
        video, plan = item.video, item.plan
        if item.frames == 0:
            self._fail(item, "no decodable video frames (empty, corrupt or truncated file)")
            return
        result = VideoResult(video, "indexed", frames=item.frames, strategy=item.strategy)
        duration = plan.duration
        if duration and item.done_t + TRUNCATION_SLACK_INTERVALS * self.every + 1.0 < duration:
            result.warnings.append(f"decodes only to {item.done_t:.1f} s of its {duration:.1f} s (truncated or "
                                   "damaged?); indexed as far as it decodes")
        elif item.decode_errors:
            result.warnings.append(f"{item.decode_errors} corrupt packet(s) skipped; indexed as far as it decodes")
        rate = {"fps": rate_text(plan.rate)} if plan.rate else {}
        sampled = IRREGULAR_SAMPLING if item.strategy.startswith("keyframes") else "grid"
        cuts = item.recorder.finish() if item.recorder is not None else item.cuts
        metadata = {**item.job.fingerprint.as_metadata(), "duration": float(duration or item.done_t),
                    "sampling": sampled, **rate, **cuts_metadata(cuts)}
        item.registered = self.writer.submit(self.store.mark_indexed, video, item.frames, metadata)
        item.result = result

    def _fail(self, item: _VideoWork, reason: str) -> None:
        item.result = VideoResult(item.video, "failed", reason=reason)
        item.done.clear()
        item.registered = self.writer.submit(self.store.remove_leftovers, item.video.video_id)

    def _refresh_nodes(self) -> None:
        if time.monotonic() - self._nodes_asked >= NODES_EVERY_SECONDS:
            self._nodes_asked = time.monotonic()
            self.stats.nodes = self._alive_nodes()
        alive = getattr(self.progress, "alive", None)
        if alive is not None:
            alive(self.stats.nodes, len(self.encoders))

    def close(self) -> None:
        self.writer.close(wait=not self.writer.failed)


def record_segment(recorder: CutRecorder, times: list[float], kept: list[bool], signals: SegmentSignals) -> bool:
    """Feed `recorder` one segment's frames and its kept samples (`kept[i]`: candidate `times[i]`
    is a sample), in the order its decoding task decoded them, as `segments.SegmentedSampler` does;
    with a hand-off, the head's, then take over the rest. False when the task's samples are not
    the ones this grid rule kept: the recorder cannot go on (the video's edges are found at search time)."""
    hand_off = signals.hand_off
    if hand_off is not None:
        if tuple(t for t, keep in zip(times[1:], kept[1:]) if keep) != hand_off.samples:
            return False
        times, kept = times[: hand_off.start_candidate + 1], kept[: hand_off.start_candidate + 1]
    signatures = signals.signatures.astype(np.int16)  # the recorder subtracts them: uint8 would wrap
    fed = 0
    for t, keep, before in zip(times, kept, signals.before):
        for i in range(fed, before):
            recorder.add_frame(signals.times[i], signatures[i])
        fed = before
        if keep:
            recorder.add_sample(t)
    for i in range(fed, len(signals.times)):
        recorder.add_frame(signals.times[i], signatures[i])
    if hand_off is None:
        return True
    return recorder.take_over(replace(hand_off, pending_signatures=hand_off.pending_signatures.astype(np.int16)))


def _check_reachable(address: str) -> None:
    """Raise ScenegrepError at once when nothing listens at the address's host:port: Ray itself
    retries an unreachable head for minutes, printing C++ warnings."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_CHECK_SECONDS):
            pass
    except (OSError, ValueError) as exc:
        raise ScenegrepError(f"cannot connect to the Ray cluster at {address}: nothing answers there "
                             f"({exc.strerror or exc}); start one with `ray start --head` or check the address "
                             "(auto, host:6379 or ray://host:10001)") from None


def _notices_to_stderr(ray) -> None:
    """Ray's driver prints the cluster's notices ("(raylet) Task decode_segment failed. There are 3
    retries remaining, so the task will be retried") on stdout, where `index --json` writes its
    report: they go to stderr instead, beside the progress bar. Ray has no setting for this; its
    printer is replaced where it is looked up, and left alone if a later Ray moved it."""
    worker = getattr(getattr(ray, "_private", None), "worker", None)
    printer = getattr(worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "to_stderr", False):
        return

    def to_stderr(data, *args, **kwargs):
        return printer({**data, "is_err": True}, *args, **kwargs)

    to_stderr.to_stderr = True
    worker.print_to_stdstream = to_stderr


def unseen_reason(where: list[str]) -> str:
    return ("not readable by the Ray workers (" + "; ".join(where) + "); they read videos at the paths given here: "
            "put them on a filesystem every node mounts at the same path")


def _cause(exc: BaseException) -> str:
    """One line for an error raised on the cluster: the original error's, without Ray's traceback."""
    cause = getattr(exc, "cause", None)
    if cause is not None:
        return _first_line(cause)
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
