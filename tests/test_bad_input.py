"""A folder of good and bad files: the good ones are indexed, each bad one is
named on stderr with its reason, the summary counts them, no traceback."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys

import av
import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS, write_video

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def without_root_file_access():
    """preexec_fn: drop the capabilities that let root read any file, so a
    chmod 000 file is unreadable to the child even when tests run as root."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def write_noise_video(path, frames, options=None):
    """Noise frames (they compress badly, so the file is big enough to cut in half meaningfully)."""
    rng = np.random.default_rng(len(str(path)))
    with av.open(str(path), "w", options=options or {}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_audio_only(path):
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=44100)
        for index in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, index * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def cut_in_half(source, target):
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    source.unlink()


@pytest.fixture
def messy_folder(tmp_path):
    folder = tmp_path / "archive"
    folder.mkdir()
    # Good videos, each with its own content (so none is a copy of another).
    shutil.copy(SAMPLE_VIDEOS / "episode_01.mp4", folder / "episode 01 with spaces.mp4")
    write_video(folder / "épisode_02_ü.mp4", range(150), rate=25)  # 6 s: samples at 0, 2, 4
    (folder / "x.mp4").mkdir()  # a folder named like a video is a folder: searched
    write_video(folder / "x.mp4" / "inner.mkv", range(100), rate=25)  # 4 s: samples at 0, 2
    # Truncated but decodable as far as it goes (index at the front): a warning.
    write_noise_video(folder / "whole.mp4", 500, options={"movflags": "faststart"})
    cut_in_half(folder / "whole.mp4", folder / "cut short.mp4")
    # Bad ones.
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "notes.mp4").write_text("not a video\n")
    (folder / "noise.mkv").write_bytes(np.random.default_rng(1).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    write_noise_video(folder / "moov_at_end.mp4", 200)
    cut_in_half(folder / "moov_at_end.mp4", folder / "truncated.mp4")
    write_audio_only(folder / "podcast.mp4")
    (folder / "broken.mp4").symlink_to(folder / "deleted-long-ago.mp4")
    locked = folder / "locked.mp4"
    write_video(locked, range(50), rate=25)
    locked.chmod(0)
    return folder


EXPECTED_FAILURES = {
    "empty.mp4": "empty file",
    "notes.mp4": "cannot open as a video",
    "noise.mkv": "cannot open as a video",
    "truncated.mp4": "truncated MP4/MOV: its index (moov box) is missing",
    "podcast.mp4": "has no video stream",
    "broken.mp4": "broken symbolic link",
    "locked.mp4": "permission denied",
    "missing.mp4": "no such file or folder",
}


def test_bad_files_are_named_with_a_reason_and_the_good_ones_fully_indexed(messy_folder, tmp_path, tiny_model, run_cli):
    db = tmp_path / "db"
    result = subprocess.run(
        [sys.executable, "-m", "scenegrep.cli", "index", str(messy_folder), str(tmp_path / "missing.mp4"),
         "--model", tiny_model, "--db", str(db), "--json"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "ANONYMIZED_TELEMETRY": "False"},
        preexec_fn=without_root_file_access if os.geteuid() == 0 else None,
    )
    assert result.returncode == 3, result.stderr  # some inputs failed, the rest indexed
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    for name, reason in EXPECTED_FAILURES.items():
        named = [line for line in lines if line.startswith("scenegrep: skipping ") and f"/{name}: " in line]
        assert len(named) == 1 and reason in named[0], (name, result.stderr)
    warned = [line for line in lines if "warning" in line and "cut short.mp4" in line]
    assert len(warned) == 1 and "indexed as far as it decodes" in warned[0]
    assert "indexed 4 video(s)" in lines[-1] and f"{len(EXPECTED_FAILURES)} failed" in lines[-1]

    report = json.loads(result.stdout)
    statuses = {os.path.relpath(v["path"], messy_folder): (v["status"], v["frames"]) for v in report["videos"]}
    assert statuses["episode 01 with spaces.mp4"] == ("indexed", 12)
    assert statuses["épisode_02_ü.mp4"] == ("indexed", 3)
    assert statuses[os.path.join("x.mp4", "inner.mkv")] == ("indexed", 2)
    status, frames = statuses["cut short.mp4"]  # 20 s written, about half of it left
    assert status == "indexed" and 2 <= frames <= 7
    assert report["counts"] == {"indexed": 4, "unchanged": 0, "moved": 0, "copied": 0,
                                "failed": len(EXPECTED_FAILURES), "pruned": 0}

    info = run_cli("info", "--db", db, "--json")  # in-process: only `index` needs a process without root's file access
    assert info.exit_code == 0, info.stderr
    per_video = {os.path.basename(v["path"]): v["frames"] for v in json.loads(info.stdout)["indexes"][0]["per_video"]}
    assert per_video == {"episode 01 with spaces.mp4": 12, "épisode_02_ü.mp4": 3, "inner.mkv": 2, "cut short.mp4": frames}


def test_a_file_name_that_is_not_utf8_fails_alone(tmp_path, tiny_model, run_cli):
    folder = tmp_path / "odd"
    folder.mkdir()
    write_video(folder / "fine.mp4", range(50), rate=25)
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.mp4")  # Latin-1 bytes: not valid UTF-8
    shutil.copy(SAMPLE_VIDEOS / "episode_03.mp4", odd)
    result = run_cli("index", folder, "--model", tiny_model, "--db", tmp_path / "db")
    assert result.exit_code == 3
    assert "caf\ufffd.mp4: its name is not valid UTF-8" in result.stderr and "rename the file" in result.stderr
    assert "indexed 1 video(s)" in result.stderr


def test_bad_queries_are_one_line_errors(tmp_path, tiny_model, run_cli):
    from tiny_clip import save_tiny_clip

    db = tmp_path / "db"
    assert run_cli("index", SAMPLE_VIDEOS / "episode_03.mp4", "--model", tiny_model, "--db", db).exit_code == 0
    not_a_picture = tmp_path / "still.png"
    not_a_picture.write_text("this is text")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # never opened: reading it would block
    other_model = save_tiny_clip(str(tmp_path / "other"), seed=3)
    cases = [
        (("search", "--image", not_a_picture, "--db", db), "not a readable image"),
        (("search", "--image", fifo, "--db", db), "not a regular file"),
        (("search", "   ", "--db", db), "empty query"),
        (("search", "x", "--db", tmp_path / "nowhere"), "no index at"),
        (("search", "x", "--model", other_model, "--db", db), "was built with"),
        (("index", SAMPLE_VIDEOS, "--model", tiny_model, "--every", "3", "--db", db), "samples every 2 s"),
        (("search", "x", "--chroma-url", "http://127.0.0.1:9"), "cannot reach the Chroma server"),
        (("info", "--chroma-url", "ftp://127.0.0.1:9"), "expected http://HOST:PORT"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.exit_code == 1, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_a_fifo_is_named_as_one_and_never_opened(tmp_path, tiny_model, run_cli):
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy2(SAMPLE_VIDEOS / "episode_01.mp4", folder / "episode_01.mp4")
    os.mkfifo(folder / "pipe.mp4")  # opening it for reading would block until a writer came
    named = tmp_path / "named.mkv"
    os.mkfifo(named)
    result = run_cli("index", folder, named, "--model", tiny_model, "--db", tmp_path / "db", "--json")
    assert result.exit_code == 3, result.stderr
    for path in (folder / "pipe.mp4", named):
        assert f"skipping {path}: not a regular file (a named pipe (FIFO)); only video files can be indexed" \
            in result.stderr
    assert "empty file" not in result.stderr
    counts = json.loads(result.stdout)["counts"]
    assert (counts["indexed"], counts["failed"]) == (1, 2)


def test_the_indexer_refuses_a_fifo_given_as_a_video(tmp_path, tiny_model):
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.indexer import update_video
    from scenegrep.pipeline.index_access import Location, open_index

    os.mkfifo(tmp_path / "pipe.mp4")
    with open_index(Location(db=str(tmp_path / "db")), write=True) as opened:
        store = opened.for_writing(ClipEncoder(tiny_model).info)
    result = update_video(video_for(tmp_path / "pipe.mp4"), store)
    assert result.status == "failed" and result.reason.startswith("not a regular file (a named pipe (FIFO))")
