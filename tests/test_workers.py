"""Decoding in worker processes: a video cut into segments at keyframes gives exactly the
frames of a single pass; a worker that dies fails its video cleanly; Ctrl-C stops every worker."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from fractions import Fraction

import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS, write_video
from processes import alive, children_of, command_of, status_of

from scenegrep.pipeline import segments
from scenegrep.pipeline.decode_worker import decode_segment
from scenegrep.pipeline.errors import VideoError
from scenegrep.pipeline.files import video_for
from scenegrep.pipeline.sample import VideoSampler
from scenegrep.pipeline.segments import SegmentedSampler, needed_gops, plan_segments
from scenegrep.pipeline.workers import DecodePool


@pytest.fixture(scope="module")
def pool():
    with DecodePool(2) as shared:
        yield shared


@pytest.fixture
def short_segments(monkeypatch):
    """Segments of about a second, so small test videos split into many."""
    monkeypatch.setattr(segments, "MIN_SEGMENT_SECONDS", 0.5)
    monkeypatch.setattr(segments, "MAX_SEGMENT_SECONDS", 1.0)


def single_pass(path, every):
    with VideoSampler(video_for(str(path)), every, strategy="decode") as sampler:
        return [(f.t, f.pixels) for f in sampler]


def segmented(path, every, pool):
    sampler = SegmentedSampler(video_for(str(path)), every, pool)
    return [(f.t, f.pixels) for f in sampler], sampler.segments


def assert_same_frames(path, every, pool, min_segments=2):
    expected = single_pass(path, every)
    got, planned = segmented(path, every, pool)
    assert len(planned) >= min_segments  # really split
    assert [t for t, _ in got] == [t for t, _ in expected]  # the same times, to the bit
    for (_, a), (_, b) in zip(got, expected):
        assert np.array_equal(a, b)  # the same frames, decoded after a seek


VIDEOS = {
    # name: (frame pts, rate, time_base, encoder options, frames forced to be keyframes)
    "ntsc, keyframe every 12 frames": (list(range(150)), Fraction(30000, 1001), Fraction(1001, 30000),
                                       {"g": "12", "bf": "2"}, ()),
    "variable frame rate": ([0, 3, 4, 10, 11, 12, 30, 31, 45, 46, 47, 48, 70, 90, 91, 92, 120, 150, 151, 170, 200,
                             230, 231, 232, 260, 290, 300], Fraction(25), Fraction(1, 25), {"g": "3"}, ()),
    "irregular keyframes": (list(range(200)), Fraction(25), Fraction(1, 25), {"g": "1000", "sc_threshold": "0", "bf": "2"},
                            {0, 7, 9, 50, 51, 120, 180}),  # 0.28 s to 2.8 s apart
}


@pytest.mark.parametrize("name", list(VIDEOS))
@pytest.mark.parametrize("every", [0.3, 1.0, 2.5])
def test_segments_give_exactly_the_frames_of_a_single_pass(name, every, tmp_path, pool, short_segments):
    pts, rate, time_base, options, keyframes = VIDEOS[name]
    path = write_video(tmp_path / "v.mp4", pts, rate=rate, time_base=time_base, options=options, keyframes_at=keyframes)
    assert_same_frames(path, every, pool)


def test_sparse_keyframes_skip_gops_without_samples_and_keep_the_frames(tmp_path, pool, short_segments):
    # A keyframe every 5 frames (0.2 s) and a sample every 3 s: most GOPs hold no sample.
    path = write_video(tmp_path / "v.mp4", list(range(250)), options={"g": "5", "bf": "0"})
    assert_same_frames(path, 3.0, pool)
    with VideoSampler(video_for(str(path)), 3.0) as sampler:
        keyframes = sampler._decoder.keyframes()
    needed = needed_gops([t for t, _ in keyframes], 3.0)
    assert sum(needed) < len(needed) / 3


def test_a_video_with_one_keyframe_or_shorter_than_a_segment_is_one_segment(tmp_path, pool):
    one_gop = write_video(tmp_path / "one.mp4", list(range(60)), options={"g": "1000"})
    assert_same_frames(one_gop, 0.5, pool, min_segments=1)
    assert len(segmented(one_gop, 0.5, pool)[1]) == 1
    short = write_video(tmp_path / "short.mp4", list(range(20)), options={"g": "5"})  # 0.8 s, far under a segment
    assert_same_frames(short, 0.5, pool, min_segments=1)
    assert len(segmented(short, 0.5, pool)[1]) == 1


def test_sample_videos_split_into_segments_give_the_same_frames(pool, short_segments):
    for path in sorted(SAMPLE_VIDEOS.glob("*.mp4")):
        assert_same_frames(path, 0.5, pool)


def test_plan_cuts_only_at_keyframes_and_covers_the_needed_gops():
    keyframes = [(i * 2.0, i * 2000) for i in range(30)]  # a keyframe every 2 s, 60 s
    plan = plan_segments(keyframes, every=1.0, duration=60.0, workers=1)
    assert plan[0].start_pts is None and plan[-1].end_pts is None
    assert all(a.end_pts == b.start_pts for a, b in zip(plan, plan[1:]))  # contiguous: every GOP is needed at N=1
    assert all(s.start_pts in {pts for _, pts in keyframes} for s in plan[1:])
    assert len(plan) == 3  # 60 s over one worker: MIN_SEGMENT_SECONDS (20 s) each


def test_worker_resized_frames_embed_like_the_models_own_processor(tmp_path):
    """Frames resized where they are decoded vs the reference processor (transformers, PIL): cosine >= 0.999."""
    import av

    from scenegrep.pipeline.decoders import resize_rgb
    from scenegrep.pipeline.encode import ClipEncoder, _image_processor_class

    model = str(SAMPLE_VIDEOS / "mini_clip")
    encoder = ClipEncoder(model, device="cpu", precision="fp32").load()
    processor = _image_processor_class().from_pretrained(model)
    images = [frame.to_ndarray(format="rgb24") for path in sorted(SAMPLE_VIDEOS.glob("*.mp4"))
              for i, frame in enumerate(av.open(str(path)).decode(video=0)) if i % 60 == 0]
    images += [photographic(seed) for seed in range(4)]
    reference = encoder.embed_pixels(processor(images=images, return_tensors="pt")["pixel_values"])
    resized = [resize_rgb(image, encoder.input_size(*image.shape[:2])) for image in images]
    ours = encoder.embed_pixels(encoder.preprocess(resized))
    cosines = np.sum(reference * ours, axis=1)
    assert len(images) >= 10 and cosines.min() >= 0.999


def photographic(seed: int, height: int = 720, width: int = 1280) -> np.ndarray:
    """A photograph-like frame: smooth shading, sensor noise and hard edges, through yuv420p like a video's."""
    import av

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / width
    image = np.full((height, width, 3), 128.0)
    for channel in range(3):
        for _ in range(5):
            fx, fy, phase = rng.uniform(0.5, 12), rng.uniform(0.5, 12), rng.uniform(0, 6)
            image[..., channel] += rng.uniform(10, 40) * np.sin(2 * np.pi * (fx * x + fy * y) + phase)
    image += rng.normal(0, 12, image.shape)
    for _ in range(8):
        top, left = rng.integers(0, height - 100), rng.integers(0, width - 100)
        image[top : top + rng.integers(20, 200), left : left + rng.integers(20, 300)] = rng.uniform(0, 255, 3)
    frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
    return frame.reformat(format="yuv420p").to_ndarray(format="rgb24")


# -- a worker that dies ---------------------------------------------------------------------


def dies_on_doomed_segments(task):
    """A decode function for worker processes: killed (as by the OOM killer) on a file named doomed."""
    if "doomed" in task.path and task.start_pts is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    yield from decode_segment(task)


def test_a_worker_killed_mid_video_fails_that_video_and_the_others_are_indexed(tmp_path, tiny_model, short_segments):
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.index_access import Location, open_index
    from scenegrep.pipeline.indexer import index_videos

    doomed = write_video(tmp_path / "doomed.mp4", list(range(100)), options={"g": "25"})
    fine = write_video(tmp_path / "fine.mp4", list(range(100)), options={"g": "25"})
    encoder = ClipEncoder(tiny_model, device="cpu", precision="fp32")
    with open_index(Location(db=str(tmp_path / "db")), write=True) as opened:
        store = opened.for_writing(encoder.info, 0.5)
        with DecodePool(2, decode=dies_on_doomed_segments) as pool:
            results = list(index_videos([video_for(str(doomed)), video_for(str(fine))], encoder, store, pool=pool))
        assert [r.status for r in results] == ["failed", "indexed"]
        assert "decoding worker process" in results[0].reason and "died (killed by signal 9)" in results[0].reason
        assert store.indexed_video(results[0].video.video_id) is None  # nothing half-registered
        assert store.frame_count() == results[1].frames  # and none of its frames left behind


def test_a_killed_worker_is_replaced_and_the_pool_goes_on(tmp_path, short_segments):
    doomed = write_video(tmp_path / "doomed.mp4", list(range(100)), options={"g": "25"})
    fine = write_video(tmp_path / "fine.mp4", list(range(100)), options={"g": "25"})
    with DecodePool(1, decode=dies_on_doomed_segments) as pool:
        pool.start()
        first = pool.pids
        with pytest.raises(VideoError, match="died"):
            segmented(doomed, 0.5, pool)
        assert pool.pids != first
        assert [t for t, _ in segmented(fine, 0.5, pool)[0]] == [t for t, _ in single_pass(fine, 0.5)]


def wait_until(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_video_numbered_but_never_submitted_does_not_stall_the_one_being_consumed(tmp_path, short_segments):
    """A number taken for a video that then decoded elsewhere (or never started) once kept the
    oldest video's own window for itself: a later video filling the window stalled the video
    being consumed forever (seen as a hung `index --workers 2`)."""
    later = write_video(tmp_path / "later.mp4", list(range(100)), options={"g": "25"})
    consumed = write_video(tmp_path / "consumed.mp4", list(range(100)), options={"g": "25"})
    with DecodePool(1) as pool:  # a window of two segments
        never_submitted, current, next_one = pool.open_video(), pool.open_video(), pool.open_video()
        plan = SegmentedSampler(video_for(str(later)), 0.5, pool).segments
        assert len(plan) > pool.window
        keys = [pool.submit(next_one, str(later), s.start_pts, s.end_pts, 0.5, None, 1) for s in plan]
        wait_until(lambda: sum(pool._segments[k].done for k in keys) >= pool.window)  # the window is full
        got: list = []
        sampler = SegmentedSampler(video_for(str(consumed)), 0.5, pool, ticket=current)
        reader = threading.Thread(target=lambda: got.extend((f.t, f.pixels) for f in sampler), daemon=True)
        reader.start()
        reader.join(60)
        assert not reader.is_alive(), "the video being consumed never got a worker"
        assert [t for t, _ in got] == [t for t, _ in single_pass(consumed, 0.5)]
        pool.close_video(never_submitted)
        pool.close_video(next_one)


class RecordingPool(DecodePool):
    """A real pool that notes which thread numbered which video."""

    def __init__(self, workers):
        super().__init__(workers)
        self.numbered: list[tuple[int, str]] = []
        self.submitted: dict[int, str] = {}

    def open_video(self):
        number = super().open_video()
        self.numbered.append((number, threading.current_thread().name))
        return number

    def submit(self, video, path, *args):
        self.submitted.setdefault(video, path)
        return super().submit(video, path, *args)


def test_the_indexer_numbers_videos_in_the_order_it_consumes_them(tmp_path, tiny_model):
    """Decoding threads start in any order; the numbers that order the pool's work must not."""
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.files import find_videos
    from scenegrep.pipeline.index_access import Location, open_index
    from scenegrep.pipeline.indexer import index_videos

    videos, problems = find_videos([SAMPLE_VIDEOS])
    assert not problems and len(videos) >= 2
    encoder = ClipEncoder(tiny_model, device="cpu", precision="fp32")
    with open_index(Location(db=str(tmp_path / "db")), write=True) as opened:
        store = opened.for_writing(encoder.info, 0.5)
        with RecordingPool(2) as pool:
            results = list(index_videos(videos, encoder, store, pool=pool))
    assert [r.status for r in results] == ["indexed"] * len(videos)
    assert {thread for _, thread in pool.numbered} == {threading.current_thread().name}
    numbers = [number for number, _ in pool.numbered]
    assert numbers == sorted(numbers) and len(numbers) == len(videos)
    assert [pool.submitted[n] for n in numbers] == [v.path for v in videos]


def test_a_pool_left_open_at_exit_stops_its_workers_before_multiprocessing_kills_them(tmp_path):
    """A command interrupted outside the indexing generator exits without closing its pool:
    multiprocessing's exit handler then terminated the workers one by one, and the dispatcher,
    still running, started replacements that outlived the command."""
    import subprocess
    import sys

    script = tmp_path / "left_open.py"
    script.write_text(
        "import atexit, multiprocessing, sys\n"
        "from scenegrep.pipeline.workers import DecodePool\n"
        "atexit.register(lambda: print('children at exit:', len(multiprocessing.active_children()), flush=True))\n"
        "pool = DecodePool(2)\n"
        "pool.start()\n"
        "print('workers:', *pool.pids, flush=True)\n"
        "sys.exit(0)  # the pool is never closed by this script\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    pids = [int(pid) for pid in lines[0].split()[1:]]
    assert len(pids) == 2
    assert lines[-1] == "children at exit: 0"  # closed by the pool's own exit handler, which runs first
    assert not [pid for pid in pids if alive(pid)]


# -- the command -----------------------------------------------------------------------------


def test_ctrl_c_with_workers_stops_every_worker_and_leaves_a_consistent_index(tmp_path, tiny_model, run_cli,
                                                                              run_subprocess, clean_run):
    from conftest import CLEAN_RUN_EVERY, Backend
    from test_resume import KILL_POINTS, index_state, stop_when

    backend = Backend("embedded", db=str(tmp_path / "db"))
    process = run_subprocess("index", SAMPLE_VIDEOS, "--model", tiny_model, "--every", CLEAN_RUN_EVERY, "--batch-size",
                             "1", "--workers", "2", *backend.args)
    workers: set[int] = set()
    commands: dict[int, str] = {}  # read while they run: an exiting process's command line reads empty

    def mid_video_with_workers(*state):
        for pid in children_of(process.pid) - workers:
            workers.add(pid)
            commands[pid] = command_of(pid)
        decoding = [pid for pid in workers if "spawn_main" in commands[pid]]
        return len(decoding) >= 2 and KILL_POINTS["mid-video"](*state)

    stop_when(process, backend, mid_video_with_workers, signal.SIGINT)
    stderr = process.stderr.read()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    decoders = {pid for pid in workers if "spawn_main" in commands[pid]}  # not multiprocessing's resource tracker
    assert len(decoders) >= 2
    assert not {pid: (command_of(pid), status_of(pid)) for pid in decoders if alive(pid)}  # stopped before it returned
    deadline = time.monotonic() + ORPHAN_EXIT_SECONDS  # multiprocessing's resource tracker leaves once it sees EOF
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not {pid: command_of(pid) for pid in workers if alive(pid)}
    frames, videos, done = index_state(backend)
    assert frames == done  # nothing half-indexed

    again = run_cli("index", SAMPLE_VIDEOS, "--model", tiny_model, "--every", CLEAN_RUN_EVERY, "--workers", "2", "--json",
                    *backend.args)
    assert again.exit_code == 0, again.stderr
    assert backend.frame_ids() == clean_run  # the index one process (--workers 1) builds
    assert all(v["status"] in ("indexed", "unchanged") for v in json.loads(again.stdout)["videos"])


def test_the_resize_read_from_the_config_is_the_loaded_models_so_workers_start_before_it_loads(tiny_model):
    from scenegrep.pipeline.encode import ClipEncoder

    for model in (tiny_model, str(SAMPLE_VIDEOS / "mini_clip")):
        encoder = ClipEncoder(model, device="cpu")
        shapes = [(720, 1280), (1080, 1440), (480, 270), (48, 64)]
        before = [encoder.input_size(*shape) for shape in shapes]
        assert not encoder.loaded  # answered from the config file alone
        encoder.load()
        assert before == [encoder.input_size(*shape) for shape in shapes]
        assert None not in before


def test_a_pool_starts_no_process_until_a_segment_is_submitted():
    with DecodePool(2) as pool:
        assert pool.pids == []


def test_workers_that_cannot_start_stop_the_pool_instead_of_respawning_forever(tmp_path, monkeypatch):
    import importlib

    (tmp_path / "vanishing_decoder.py").write_text("def decode(task):\n    yield 0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    decode = importlib.import_module("vanishing_decoder").decode
    (tmp_path / "vanishing_decoder.py").unlink()  # spawned workers cannot import it: each dies as it starts
    video = write_video(tmp_path / "v.mp4", list(range(20)))
    with DecodePool(1, decode=decode) as pool:
        with pytest.raises(VideoError, match=r"worker process died \(exit code 1\); its error is on stderr"):
            segmented(video, 0.5, pool)  # the video it was given fails
        deadline = time.monotonic() + ORPHAN_EXIT_SECONDS * 3  # each death is a spawn and an import: slow under load
        while True:  # the workers started in its place die idle: the pool gives up instead of looping
            try:
                segmented(video, 0.5, pool)
            except VideoError:
                assert time.monotonic() < deadline
                time.sleep(0.5)
            except RuntimeError as exc:
                assert "die as they start" in str(exc)
                break


def test_workers_of_a_killed_index_exit_on_their_own(tmp_path, tiny_model, run_subprocess):
    from conftest import Backend
    from test_resume import KILL_POINTS, stop_when

    backend = Backend("embedded", db=str(tmp_path / "db"))
    process = run_subprocess("index", SAMPLE_VIDEOS, "--model", tiny_model, "--every", "0.5", "--batch-size", "1",
                             "--workers", "2", *backend.args)
    workers: set[int] = set()

    def mid_video_with_workers(*state):
        workers.update(children_of(process.pid))
        return len(workers) >= 2 and KILL_POINTS["after the first batch"](*state)

    stop_when(process, backend, mid_video_with_workers, signal.SIGKILL)
    deadline = time.monotonic() + ORPHAN_EXIT_SECONDS
    while [pid for pid in workers if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    left = {pid: command_of(pid) for pid in workers if alive(pid)}
    assert not left  # no orphan left decoding or waiting


ORPHAN_EXIT_SECONDS = 90
"""How long the workers of a killed run may take to notice (a worker notices at its next
message or within a second while waiting for a slot; a busy CI machine slows both)."""
