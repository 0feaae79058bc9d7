"""Crash safety and concurrency: kill `scenegrep index` (SIGKILL or Ctrl-C) at
several points, run it again, and get exactly the index a clean run builds."""

from __future__ import annotations

import json
import signal
import time

import pytest
from conftest import CLEAN_RUN_EVERY, make_backend

EVERY = CLEAN_RUN_EVERY
"""~148 frames over the three sample videos: long enough to stop mid-way. The
overlapped indexer stores the first video's ~50 frames in about two seconds here."""
POLL_TIMEOUT = 300.0
"""Seconds a killed run may take to reach its kill point (process start included) on a busy CI machine."""


def open_store(backend):
    """The index's FrameStore, or None before the index exists."""
    from scenegrep.pipeline.errors import ScenegrepError

    try:
        return backend.store()
    except (ScenegrepError, ValueError):  # no index yet, or being created (ValueError: no collection to unpack)
        return None


def index_state(backend, store=None) -> tuple[int, int, int]:
    """(stored frames, registered videos, frames the registry accounts for), or zeros before the index exists."""
    store = store or open_store(backend)
    if store is None:
        return 0, 0, 0
    videos = store.indexed_videos()
    return store.frame_count(), len(videos), sum(v.frames for v in videos)


KILL_POINTS = {
    # name: condition on (frames, registered videos, registered frames)
    "after the first batch": lambda frames, videos, done: frames >= 1,
    "mid-video": lambda frames, videos, done: videos == 0 and frames >= 10,
    "between videos": lambda frames, videos, done: videos >= 1,
}


def holds_a_lock(db: str | None) -> bool:
    """Whether some process holds a SQLite lock on the embedded store at `db` now (never
    for a server's: a paused client cannot block it). Probed by taking the exclusive
    lock for an instant: a Chroma client writes when it opens, and a paused process
    holding a lock (in a transaction, or mid-commit) would make it wait."""
    import os
    import sqlite3

    path = os.path.join(db, "chroma.sqlite3") if db else None
    if path is None or not os.path.exists(path):
        return False
    probe = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN EXCLUSIVE")
        probe.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return True
    finally:
        probe.close()


def pause_outside_a_write(process, db: str | None) -> None:
    """Stop `process` (SIGSTOP) at a moment it holds no lock on the embedded store at
    `db` (see `holds_a_lock`): stopped while holding one, it runs on a little and is
    stopped again."""
    import os

    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        process.send_signal(signal.SIGSTOP)
        _, status = os.waitpid(process.pid, os.WUNTRACED)  # returns once it is really stopped
        assert os.WIFSTOPPED(status), f"index ended before it could be paused: {process.stderr.read()}"
        if not holds_a_lock(db):
            return
        assert time.monotonic() < deadline, "index kept a lock on the store"
        process.send_signal(signal.SIGCONT)
        time.sleep(0.002)  # not a condition: only the next check above lets the test go on


STEP_SECONDS = 0.02
"""How long a run is let go between two looks at its index: a few frames at most (a
frame takes ~40 ms here at --batch-size 1), where each kill point spans tens of frames.
A look that took longer (opening a server's index before it exists: ~0.5 s) lets the
run go as long, so that the run, still starting, is not slowed to a crawl, but never
longer than MAX_STEP_SECONDS."""

MAX_STEP_SECONDS = 0.25
"""The longest a run is let go at once: a slow look (the first in-process open of an
embedded index took seconds on a quiet CI machine) once let a whole 3-second run
finish before the next look, so the "between videos" point was never seen."""


def pause_when(process, backend, condition) -> tuple[int, int, int]:
    """Run `process` in short steps, look at the index only while it is paused, and
    return the state of the first pause where `condition` holds, leaving it paused:
    the state checked is the state it is in, and no step can carry it past the point,
    however fast the machine."""
    deadline = time.monotonic() + POLL_TIMEOUT
    store = None  # opened once it exists: reopening a server's index for every poll takes ~0.5 s
    while time.monotonic() < deadline:
        look = time.monotonic()
        pause_outside_a_write(process, backend.db)
        store = store or open_store(backend)
        state = index_state(backend, store)
        if condition(*state):
            return state
        process.send_signal(signal.SIGCONT)
        time.sleep(min(max(STEP_SECONDS, time.monotonic() - look), MAX_STEP_SECONDS))
    process.kill()
    raise AssertionError("the index did not reach that point in time")


def stop_when(process, backend, condition, sig) -> tuple[int, int, int]:
    """`sig` to `process` at the first point where `condition` holds (see `pause_when`)."""
    state = pause_when(process, backend, condition)
    process.send_signal(sig)
    process.send_signal(signal.SIGCONT)  # a paused process acts on SIGINT once it runs again
    process.wait(timeout=120)
    return state


@pytest.mark.parametrize("backend_kind, point", [
    ("embedded", "after the first batch"),
    ("embedded", "mid-video"),
    ("embedded", "between videos"),
    ("server", "mid-video"),
])
def test_sigkill_then_rerun_gives_exactly_the_clean_index(backend_kind, point, clean_run, tiny_model, tmp_path, request,
                                                          run_cli, run_subprocess):
    from conftest import SAMPLE_VIDEOS

    backend = make_backend(backend_kind, tmp_path, request)
    process = run_subprocess("index", SAMPLE_VIDEOS, "--model", tiny_model, "--every", EVERY, "--batch-size", "1",
                             *backend.args)
    stop_when(process, backend, KILL_POINTS[point], signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    frames, videos, done = index_state(backend)
    assert 0 < frames < len(clean_run) and videos < 3  # really killed part-way
    if point == "mid-video":
        assert frames > done  # the killed video's frames are there, unregistered

    again = run_cli("index", SAMPLE_VIDEOS, "--model", tiny_model, "--every", EVERY, "--json", *backend.args)
    assert again.exit_code == 0, again.stderr
    statuses = [v["status"] for v in json.loads(again.stdout)["videos"]]
    assert statuses.count("unchanged") == videos and statuses.count("indexed") == 3 - videos
    assert backend.frame_ids() == clean_run  # same ids, so same count: none missing, none duplicated

    doctor = run_cli("doctor", "--model", tiny_model, "--json", *backend.args)
    assert doctor.exit_code == 0, doctor.stdout
    assert json.loads(doctor.stdout)["ok"]


def test_ctrl_c_stops_cleanly_says_how_to_resume_and_leaves_no_partial_video(clean_run, tiny_model, tmp_path, request,
                                                                             run_cli, run_subprocess):
    from conftest import SAMPLE_VIDEOS

    backend = make_backend("embedded", tmp_path, request)
    process = run_subprocess("index", SAMPLE_VIDEOS, "--model", tiny_model, "--every", EVERY, "--batch-size", "1",
                             *backend.args)
    stop_when(process, backend, KILL_POINTS["mid-video"], signal.SIGINT)
    stderr = process.stderr.read()
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "run the same `scenegrep index` command again to resume" in stderr
    assert "Traceback" not in stderr
    frames, videos, done = index_state(backend)
    assert frames == done  # the video in progress was cleaned up, not left half-indexed

    again = run_cli("index", SAMPLE_VIDEOS, "--model", tiny_model, "--every", EVERY, *backend.args)
    assert again.exit_code == 0, again.stderr
    assert backend.frame_ids() == clean_run


def test_search_works_while_an_index_is_running(tiny_model, tmp_path, request, run_subprocess):
    from conftest import write_video

    long_video = write_video(tmp_path / "long.mp4", range(25 * 30), rate=25)  # 60 samples
    backend = make_backend("embedded", tmp_path, request)
    indexing = run_subprocess("index", long_video, "--model", tiny_model, "--every", "0.5", "--batch-size", "1",
                              *backend.args)
    try:
        # Paused mid-video, the run stays in progress (lock held, its video unregistered) while the search runs.
        frames, videos, _ = pause_when(indexing, backend, KILL_POINTS["mid-video"])
        assert 10 <= frames < 60 and videos == 0
        search = run_subprocess("search", "a red circle", "--json", "-k", "3", *backend.args)
        out, err = search.communicate(timeout=POLL_TIMEOUT)
        assert search.returncode == 0, err
        hits = json.loads(out)  # the frames stored so far are searchable
        assert hits and {hit["path"] for hit in hits} == {str(long_video)}
        indexing.send_signal(signal.SIGCONT)
        indexing.wait(timeout=POLL_TIMEOUT)
        assert indexing.returncode == 0, indexing.stderr.read()
        assert index_state(backend)[:2] == (60, 1)  # and the run went on to the end
    finally:
        if indexing.poll() is None:
            indexing.kill()


def test_a_second_index_on_the_same_folder_stops_with_a_clear_message(tmp_path, tiny_model, run_cli):
    from conftest import SAMPLE_VIDEOS
    from scenegrep.pipeline.lock import IndexLock

    db = tmp_path / "db"
    assert run_cli("index", SAMPLE_VIDEOS / "episode_01.mp4", "--model", tiny_model, "--db", db).exit_code == 0
    with IndexLock(str(db)):  # as a running `scenegrep index` holds it
        busy = run_cli("index", SAMPLE_VIDEOS, "--model", tiny_model, "--db", db)
        prune = run_cli("prune", "--db", db)
    assert busy.exit_code == 1
    assert "is writing to the index at" in busy.stderr and "--wait" in busy.stderr
    assert len(busy.stderr.strip().splitlines()) == 1 and "Traceback" not in busy.stderr
    assert prune.exit_code == 1 and "is writing to the index" in prune.stderr
    assert run_cli("index", SAMPLE_VIDEOS, "--model", tiny_model, "--db", db).exit_code == 0  # free again


def test_wait_queues_behind_the_running_index(tmp_path, tiny_model, run_subprocess):
    import os
    import threading

    from conftest import SAMPLE_VIDEOS, Backend
    from scenegrep.pipeline.lock import IndexLock

    db = tmp_path / "db"
    with IndexLock(str(db)):  # as a running `scenegrep index` holds it
        queued = run_subprocess("index", SAMPLE_VIDEOS / "episode_01.mp4", "--model", tiny_model, "--db", db, "--wait")
        watchdog = threading.Timer(POLL_TIMEOUT, queued.kill)  # a run that never says it waits ends the read below
        watchdog.start()
        try:
            said = next((line for line in iter(queued.stderr.readline, "") if "waiting for" in line), "")
        finally:
            watchdog.cancel()
        # A wait says so instead of looking like a hang, naming who holds the index…
        assert f"waiting for scenegrep (pid {os.getpid()}) to finish writing" in said
        # …and opens nothing until the other writer lets go.
        assert queued.poll() is None and not (db / "chroma.sqlite3").exists()
    _, err = queued.communicate(timeout=POLL_TIMEOUT)
    assert queued.returncode == 0, err
    assert [v.episode for v in Backend("embedded", db=str(db)).store().indexed_videos()] == ["episode_01"]
