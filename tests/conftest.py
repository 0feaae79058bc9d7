"""Fixtures: a tiny CLIP saved like a real one, videos made with PyAV, a CLI runner."""

from __future__ import annotations

import json
import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from scenegrep.cli.common import quiet_libraries  # noqa: E402

quiet_libraries()

REPO = Path(__file__).resolve().parent.parent
SAMPLE_VIDEOS = REPO / "sample_videos"


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


def write_video(path, frame_times, rate=None, time_base=None, size=(64, 48), codec="libx264"):
    """Write a video whose frames have exactly the given pts (in `time_base` units).

    Each frame's grey level encodes its index so tests can tell frames apart.
    """
    import av

    width, height = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate or 25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if time_base is not None:
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
        for index, pts in enumerate(frame_times):
            pixels = np.full((height, width, 3), (index * 7) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = pts
            if time_base is not None:
                frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


@pytest.fixture
def run_cli():
    """Run the scenegrep CLI in-process; returns click's Result (stdout and stderr apart)."""
    from click.testing import CliRunner

    from scenegrep.cli.main import cli

    def run(*args):
        runner = CliRunner()
        return runner.invoke(cli, [str(a) for a in args], prog_name="scenegrep", catch_exceptions=False)

    return run


__all__ = ["write_video", "Fraction"]


@pytest.fixture(scope="session")
def shared_index(tmp_path_factory, tiny_model) -> Path:
    """The sample videos indexed once for tests that only search (each search rewrites last-search.json)."""
    from click.testing import CliRunner

    from scenegrep.cli.main import cli

    db = tmp_path_factory.mktemp("shared") / "db"
    result = CliRunner().invoke(cli, ["index", str(SAMPLE_VIDEOS), "--model", tiny_model, "--db", str(db)],
                                prog_name="scenegrep", catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return db
