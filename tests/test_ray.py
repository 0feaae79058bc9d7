"""`scenegrep index --ray`: a real multi-node Ray cluster on 127.0.0.1, the trained miniature CLIP.

One cluster (a head and a second node, 2 CPUs each) is shared by the module:
Ray takes tens of seconds to start on 2 cores (the reference index is built meanwhile). The index a `--ray` run builds
must equal the one `scenegrep index --workers 2` builds on this machine (the
same segment decoding and resizing): the same frame ids, vectors within 1e-5,
the same search results; a node killed mid-run or a killed driver must not
lose or duplicate a frame.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS, Backend, make_backend

from scenegrep.pipeline.workers import usable_cores

if not os.environ.get("CI"):  # CI installs Ray (.ci/run, as README says): there a missing Ray fails the tests
    pytest.importorskip("ray", reason="the Ray tests need `pip install -e '.[dev,ray]'` (README)")

MINI_CLIP = SAMPLE_VIDEOS / "mini_clip"
QUERIES = ("a red ball", "a blue square", "a green triangle")
KILL_EVERY = "0.1"
"""~740 frames over the sample videos, encoded one by one (--batch-size 1): a run in which
a node can be caught encoding, however fast the machine."""
RUN_TIMEOUT = 600
"""Seconds one `--ray` run may take on a busy 2-core CI machine (about 40 here)."""


@pytest.fixture(scope="module")
def launched():
    from ray_cluster import RayCluster

    started = RayCluster.launch([2, 2])
    yield started
    started.stop()


@pytest.fixture(scope="module")
def cluster(launched, reference):
    """The module's cluster, once its nodes have joined; the reference index is built while they start."""
    launched.wait()
    return launched


def ray_index(*args) -> subprocess.CompletedProcess:
    """`scenegrep index ... --ray ...` in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "scenegrep.cli", "index", *[str(a) for a in args]],
                          capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})


def index_json(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def vectors(backend: Backend) -> dict[str, np.ndarray]:
    store = backend.store()
    got = store.frames.get(include=["embeddings"])
    return dict(zip(got["ids"], np.asarray(got["embeddings"], np.float32)))


def searches(run_cli, backend: Backend) -> list:
    found = []
    for query in QUERIES:
        result = run_cli("search", query, "--json", "--keep-duplicates", *backend.args)
        assert result.exit_code == 0 and "note" not in result.stderr, result.stderr  # snapped on recorded cuts
        found.append([(c["episode"], c["start"], c["end"], round(c["score"], 4), [h["t"] for h in c["hits"]])
                      for c in json.loads(result.stdout)])
    return found


def assert_same_index(ours: Backend, reference: Backend) -> None:
    mine, theirs = vectors(ours), vectors(reference)
    assert sorted(mine) == sorted(theirs) and len(mine) > 0
    assert max(float(np.abs(mine[k] - theirs[k]).max()) for k in theirs) <= 1e-5
    registered = {v.path: v.frames for v in ours.store().indexed_videos()}
    assert registered == {v.path: v.frames for v in reference.store().indexed_videos()}


def recorded_cuts(backend: Backend) -> dict[str, tuple[float, ...] | None]:
    return {v.path: v.cuts for v in backend.store().indexed_videos()}


def in_process_cuts() -> dict[str, tuple[float, ...] | None]:
    """The shot changes plain indexing records in one process (`sample.VideoSampler`, no model)."""
    from scenegrep.pipeline.files import find_videos
    from scenegrep.pipeline.sample import VideoSampler

    videos, _ = find_videos([str(SAMPLE_VIDEOS)])
    found = {}
    for video in videos:
        with VideoSampler(video, 2.0, record_cuts=True) as sampler:
            for _ in sampler:
                pass
        found[video.path] = sampler.cuts
    return found


def assert_consistent(run_cli, backend: Backend) -> None:
    doctor = run_cli("doctor", "--model", MINI_CLIP, "--json", *backend.args)
    assert doctor.exit_code == 0, doctor.stdout
    assert json.loads(doctor.stdout)["ok"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sample videos indexed without Ray, with the worker processes' decoding: the index to equal."""
    from click.testing import CliRunner

    from scenegrep.cli.main import cli

    backend = Backend("embedded", db=str(tmp_path_factory.mktemp("reference") / "db"))
    result = CliRunner().invoke(cli, ["index", str(SAMPLE_VIDEOS), "--model", str(MINI_CLIP), "--workers", "2",
                                      *backend.args])
    assert result.exit_code == 0, result.stderr
    return backend


@pytest.mark.parametrize("kind", ["embedded", "server"])
def test_a_ray_run_builds_the_same_index_as_one_machine(kind, cluster, reference, tmp_path, request, run_cli):
    """Into --db through the head's address; into a Chroma server through the Ray client (ray://)."""
    backend = make_backend(kind, tmp_path, request)
    address = cluster.address if kind == "embedded" else cluster.client_address
    report = index_json(ray_index(SAMPLE_VIDEOS, "--model", MINI_CLIP, *backend.args, "--ray", address, "--json"))
    assert report["counts"]["indexed"] == 3 and report["ray"]["nodes"] == 2
    kinds = {worker["kind"] for worker in report["ray"]["workers"]}
    assert kinds == {"decode", "encode"}  # per-worker throughput for the summary
    # encoders use every core, as `scenegrep index` does, not the one thread Ray's OMP_NUM_THREADS gives an actor
    assert {worker["threads"] for worker in report["ray"]["workers"] if worker["kind"] == "encode"} == {usable_cores()}
    if os.geteuid() == 0:  # workers leave Ray's niceness 15 for the driver's where the OS lets them (README)
        assert {worker["nice"] for worker in report["ray"]["workers"]} == {os.getpriority(os.PRIO_PROCESS, 0)}
    flow = report["ray"]  # back-pressure: never more segments out than the limit, which held some back
    assert 0 < flow["peak_in_flight"] <= flow["in_flight_limit"] < flow["segments"]
    assert_same_index(backend, reference)
    # the same shot changes recorded as without Ray, so searches snap clip edges without decoding
    cuts = recorded_cuts(backend)
    assert cuts == recorded_cuts(reference) == in_process_cuts() and all(cuts.values())
    assert searches(run_cli, backend) == searches(run_cli, reference)

    copy = tmp_path / "copies" / "episode_01_copy.mp4"
    copy.parent.mkdir()
    copy.write_bytes((SAMPLE_VIDEOS / "episode_01.mp4").read_bytes())
    again = run_cli("index", SAMPLE_VIDEOS, copy, "--model", MINI_CLIP, *backend.args, "--ray", "127.0.0.1:1", "--json")
    # decided here, before anything is scheduled: an unreachable cluster is never contacted
    assert again.exit_code == 0, again.stderr
    counts = json.loads(again.stdout)["counts"]
    assert counts["unchanged"] == 3 and counts["copied"] == 1


@pytest.mark.parametrize("stop", ["killed", "Ctrl-C"])
def test_a_stopped_driver_leaves_nothing_half_registered_and_a_rerun_finishes(stop, cluster, reference, tmp_path,
                                                                              run_cli):
    from test_resume import KILL_POINTS, stop_when

    backend = Backend("embedded", db=str(tmp_path / "db"))
    driver = subprocess.Popen([sys.executable, "-m", "scenegrep.cli", "index", str(SAMPLE_VIDEOS), "--model",
                               str(MINI_CLIP), *backend.args, "--ray", cluster.address],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Free until an encoder has loaded the model, then in short steps up to the point (stop_when)
    wait_for_worker(cluster, driver, lambda title: title == "ray::FrameEncoder" or
                    (title.startswith("ray::FrameEncoder.") and "__init__" not in title))
    frames, _, _ = stop_when(driver, backend, KILL_POINTS["after the first batch"],
                             signal.SIGKILL if stop == "killed" else signal.SIGINT)
    assert frames > 0  # stopped with frames stored: a video half-registered would be skipped by the re-run below
    if stop == "Ctrl-C":  # the driver stops at once, says how to resume and deletes the unregistered frames itself
        err = driver.stderr.read()
        assert driver.returncode == 130, err
        assert "run the same `scenegrep index` command again to resume" in err
        forget_cached_client(backend.db)
        store = backend.store()
        assert len(store.frames.get(include=[])["ids"]) == sum(entry.frames for entry in store.indexed_videos())
    forget_cached_client(backend.db)  # the re-run writes from another process: read its index afresh
    report = index_json(ray_index(SAMPLE_VIDEOS, "--model", MINI_CLIP, *backend.args, "--ray", cluster.address,
                                  "--json"))
    assert report["counts"]["indexed"] + report["counts"]["unchanged"] == 3
    assert_same_index(backend, reference)
    assert_consistent(run_cli, backend)


def test_videos_a_node_cannot_read_are_named_and_nothing_is_encoded(cluster, tmp_path, monkeypatch):
    """/proc/self/cwd is the driver's folder here and another on the workers: a file only this machine sees."""
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "only_here.mp4").write_bytes((SAMPLE_VIDEOS / "episode_02.mp4").read_bytes())
    monkeypatch.chdir(tmp_path)
    result = ray_index("/proc/self/cwd/videos", "--model", MINI_CLIP, "--db", tmp_path / "db", "--ray", cluster.address)
    assert result.returncode == 1
    assert "skipping /proc/self/cwd/videos/only_here.mp4: not readable by the Ray workers" in result.stderr
    assert "No such file or directory" in result.stderr and "every node mounts at the same path" in result.stderr
    assert "no encoder started" in result.stderr


def test_without_ray_installed_the_flag_says_how_to_install_it(tmp_path):
    hidden = tmp_path / "no_ray"
    (hidden / "ray").mkdir(parents=True)
    (hidden / "ray" / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    result = subprocess.run([sys.executable, "-m", "scenegrep.cli", "index", str(SAMPLE_VIDEOS), "--db",
                             str(tmp_path / "db"), "--ray"], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(hidden)})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "scenegrep: error: --ray needs Ray, which is not installed; install it with: pip install 'scenegrep[ray]'"]


def test_an_address_where_nothing_answers_is_one_line_at_once(tmp_path):
    started = time.monotonic()
    result = ray_index(SAMPLE_VIDEOS / "episode_02.mp4", "--model", MINI_CLIP, "--db", tmp_path / "db",
                       "--ray", "127.0.0.1:1")
    assert result.returncode == 1 and time.monotonic() - started < 60  # Ray alone retries for minutes
    assert result.stderr.strip().splitlines() == [
        "scenegrep: error: cannot connect to the Ray cluster at 127.0.0.1:1: nothing answers there (Connection "
        "refused); start one with `ray start --head` or check the address (auto, host:6379 or ray://host:10001)"]


def test_a_path_after_ray_is_refused_as_an_address_not_guessed(run_cli, tmp_path):
    result = run_cli("index", "--ray", SAMPLE_VIDEOS, "--db", tmp_path / "db")
    assert result.exit_code == 2
    assert "is not a Ray address" in result.stderr and "put --ray after the paths" in result.stderr
    both = run_cli("index", SAMPLE_VIDEOS, "--db", tmp_path / "db", "--workers", "2", "--ray", "auto")
    assert both.exit_code == 2 and "--workers is for one machine" in both.stderr


def test_a_node_killed_mid_run_loses_and_duplicates_no_frame(cluster, tmp_path, run_cli):
    """Last in the module: the shared cluster's second node dies (it is not started again)."""
    backend = Backend("embedded", db=str(tmp_path / "db"))
    driver = subprocess.Popen([sys.executable, "-m", "scenegrep.cli", "index", str(SAMPLE_VIDEOS), "--model",
                               str(MINI_CLIP), "--every", KILL_EVERY, "--batch-size", "1", *backend.args,
                               "--ray", cluster.address, "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_worker(cluster, driver, lambda title: "FrameEncoder.encode" in title, nodes=[1])
    cluster.kill_node(1)
    out, err = driver.communicate(timeout=RUN_TIMEOUT)
    if driver.returncode != 0:  # the run may give up on a video: then it says why, and a re-run finishes
        assert driver.returncode == 3 and "run the command again" in err, err
        out = index_json(ray_index(SAMPLE_VIDEOS, "--model", MINI_CLIP, "--every", KILL_EVERY, *backend.args,
                                   "--ray", cluster.address, "--json"))
    else:
        out = json.loads(out)
        assert out["ray"]["resubmitted"] >= 1  # the dead node's encoder had segments in flight
    assert_consistent(run_cli, backend)
    store = backend.store()
    ids = store.frames.get(include=[])["ids"]
    assert len(ids) == len(set(ids)) == sum(v.frames for v in store.indexed_videos())
    assert sorted(ids) == expected_frame_ids(float(KILL_EVERY))  # a single pass's frames, none lost


def wait_for_worker(cluster, driver: subprocess.Popen, wanted, nodes: list[int] | None = None) -> None:
    """Until a process of the cluster's nodes (all alive, or those listed) has a title
    (Ray's `ray::Class.method`) that `wanted` accepts, while `driver` runs."""
    from processes import command_of, session_members

    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        for i in nodes if nodes is not None else range(len(cluster.nodes)):
            if cluster.nodes[i].poll() is None and any(wanted(command_of(pid).strip())
                                                       for pid in session_members(cluster.nodes[i].pid)):
                return
        assert driver.poll() is None, driver.stderr.read()
        assert time.monotonic() < deadline, "no worker of the cluster got there"
        time.sleep(0.05)


def forget_cached_client(db: str) -> None:
    """Chroma keeps one client per folder in a process; this one watched a run that was killed."""
    from scenegrep.pipeline import connect

    (getattr(connect, "forget_client", None) or connect._forget_failed_client)(db)


def expected_frame_ids(every: float) -> list[str]:
    """The ids of the frames a single pass over the sample videos samples (decoded here, no model)."""
    from scenegrep.pipeline.files import find_videos
    from scenegrep.pipeline.sample import sample_video
    from scenegrep.pipeline.store import frame_id

    videos, _ = find_videos([str(SAMPLE_VIDEOS)])
    return sorted(frame_id(video, frame.t) for video in videos for frame in sample_video(video, every))


def test_the_test_cluster_never_hands_ray_a_port_ray_claims_for_itself(monkeypatch):
    """A CI run drew 52365 (Ray's dashboard agent's default) for the client server, and
    every node refused to start; the kernel hands such ports out, so free_port skips them."""
    import socket

    import ports

    drawn = iter([52365, 6379, 10001, 15000, 41234])

    class FakeSocket:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def bind(self, address):
            self.port = next(drawn)

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(socket, "socket", FakeSocket)
    assert ports.free_port() == 41234
