"""Fixtures: a tiny CLIP saved like a real one, videos made with PyAV, a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
for _user_setting in ("SCENEGREP_DB", "SCENEGREP_CHROMA_URL", "SCENEGREP_MODEL"):
    os.environ.pop(_user_setting, None)  # a user's own index must never be touched by tests

from scenegrep.cli.common import quiet_libraries  # noqa: E402

quiet_libraries()

REPO = Path(__file__).resolve().parent.parent
SAMPLE_VIDEOS = REPO / "sample_videos"


@pytest.fixture(scope="session", autouse=True)
def scratch_state_home(tmp_path_factory):
    """Server-mode searches keep their results for `open` in $XDG_STATE_HOME and
    their vector cache in $XDG_CACHE_HOME: scratch ones, not the user's."""
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    from tiny_clip import save_tiny_clip

    return save_tiny_clip(str(tmp_path_factory.mktemp("tiny_clip")))


@pytest.fixture(scope="session")
def annotations() -> dict:
    return json.loads((SAMPLE_VIDEOS / "annotations.json").read_text())


@pytest.fixture
def sample_copy(tmp_path) -> Path:
    """A private copy of sample_videos/ a test may change."""
    target = tmp_path / "videos"
    target.mkdir()
    for video in SAMPLE_VIDEOS.glob("*.mp4"):
        shutil.copy2(video, target / video.name)
    return target


def write_video(path, frame_times, rate=None, time_base=None, size=(64, 48), codec="libx264", options=None,
                index_bar=False, keyframes_at=()):
    """Write a video whose frames have exactly the given pts (in `time_base` units).

    Each frame's grey level encodes its index so tests can tell frames apart;
    `index_bar` also draws a white bar as long as the index along the top.
    `options` go to the encoder (e.g. libx264's keyframe interval "g");
    frames whose index is in `keyframes_at` are forced to be keyframes.
    """
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate or 25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if options:
            stream.options = options
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        for index, pts in enumerate(frame_times):
            pixels = np.full((height, width, 3), (index * 7) % 256, np.uint8)
            if index_bar:
                pixels[:8, : index % width] = 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = pts
            if index in keyframes_at:
                frame.pict_type = av.video.frame.PictureType.I
            if time_base is not None:
                frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def index_once(*args) -> None:
    """`scenegrep index ARGS` in-process, for fixtures a module or session shares (`run_cli` is per test)."""
    from click.testing import CliRunner

    from scenegrep.cli.main import cli

    result = CliRunner().invoke(cli, ["index", *[str(a) for a in args]], prog_name="scenegrep", catch_exceptions=False)
    assert result.exit_code == 0, result.stderr


@pytest.fixture
def run_cli():
    """Run the scenegrep CLI in-process; returns click's Result (stdout and stderr apart)."""
    from click.testing import CliRunner

    from scenegrep.cli.main import cli

    def run(*args):
        runner = CliRunner()
        # color=True: click would strip escape sequences from output that is not a terminal,
        # hiding from tests any that reach a user's terminal.
        return runner.invoke(cli, [str(a) for a in args], prog_name="scenegrep", catch_exceptions=False, color=True)

    return run


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """The URL of a real `chroma run` server on 127.0.0.1: the one CI started
    ($SCENEGREP_TEST_CHROMA_URL, see .ci/run), else one started for this session."""
    from chroma_server import heartbeat, start, stop

    url = os.environ.get("SCENEGREP_TEST_CHROMA_URL")
    if url:
        assert heartbeat(url), f"SCENEGREP_TEST_CHROMA_URL={url} does not answer"
        yield url
        return
    folder = tmp_path_factory.mktemp("chroma_server")
    url, process = start(str(folder / "data"), log_path=str(folder / "server.log"))
    yield url
    stop(process)


@dataclass
class Backend:
    """Where a test's index lives: an embedded folder or a database on the server."""

    name: str
    db: str | None = None
    url: str | None = None

    @property
    def args(self) -> list[str]:
        return ["--db", self.db] if self.db else ["--chroma-url", self.url]

    def store(self):
        """The (single) index's FrameStore, opened the way the CLI opens it."""
        from scenegrep.pipeline.index_access import Location, open_index

        with open_index(Location.of(self.db, self.url)) as opened:
            (index,) = opened.indexes
            return opened.store(index)

    def frame_ids(self) -> list[str]:
        store = self.store()
        ids = []
        for offset in range(0, store.frames.count() + 1, 1000):
            ids.extend(store.frames.get(include=[], limit=1000, offset=offset)["ids"])
        return sorted(ids)


def make_backend(kind: str, tmp_path, request) -> Backend:
    if kind == "embedded":
        return Backend("embedded", db=str(tmp_path / "db"))
    url = request.getfixturevalue("chroma_server")
    return Backend("server", url=f"{url}/{uuid.uuid4().hex[:16]}")


@pytest.fixture(params=["embedded", "server"])
def backend(request, tmp_path) -> Backend:
    """Each test using it runs against the embedded store and a Chroma server."""
    return make_backend(request.param, tmp_path, request)


@pytest.fixture
def run_subprocess():
    """Start the installed CLI in a fresh process, as a user runs it."""

    def start(*args, **kwargs):
        return subprocess.Popen(
            [sys.executable, "-m", "scenegrep.cli", *[str(a) for a in args]],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "ANONYMIZED_TELEMETRY": "False"}, **kwargs,
        )

    return start


@pytest.fixture(scope="session")
def shared_indexes(tmp_path_factory, tiny_model, request):
    """`get(kind)`: the sample videos indexed once per session into an embedded
    folder ("embedded") or a database on the Chroma server ("server"), for
    tests that only search (each search rewrites the last-search results)."""
    built: dict[str, Backend] = {}

    def get(kind: str) -> Backend:
        if kind not in built:
            backend = make_backend(kind, tmp_path_factory.mktemp("shared"), request)
            index_once(SAMPLE_VIDEOS, "--model", tiny_model, *backend.args)
            built[kind] = backend
        return built[kind]

    return get


CLEAN_RUN_EVERY = "0.5"
"""The interval of `clean_run`: ~148 frames over the three sample videos, enough to stop an index mid-way."""


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory, tiny_model) -> list[str]:
    """The frame ids of the sample videos indexed at CLEAN_RUN_EVERY without interruption, in
    one process (--workers 1): what an interrupted and resumed run, with or without worker
    processes, must end with (embedded; ids do not depend on the backend)."""
    backend = Backend("embedded", db=str(tmp_path_factory.mktemp("clean") / "db"))
    index_once(SAMPLE_VIDEOS, "--model", tiny_model, "--every", CLEAN_RUN_EVERY, "--workers", "1", *backend.args)
    return backend.frame_ids()


@pytest.fixture(scope="session")
def shared_index(shared_indexes) -> Path:
    """The shared sample index's embedded folder."""
    return Path(shared_indexes("embedded").db)


@pytest.fixture(params=["embedded", "server"])
def shared_on(request, shared_indexes) -> Backend:
    """The shared sample index, in the embedded store and on a Chroma server."""
    return shared_indexes(request.param)


__all__ = ["write_video", "Fraction", "Backend", "make_backend"]
