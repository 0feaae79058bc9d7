"""End to end through the CLI: real PyAV, real transformers, real Chroma."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS, write_video


def frame_at(video_path, t):
    """The decoded frame of `video_path` shown at time `t` (seconds)."""
    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if float(frame.pts * stream.time_base) + 1e-6 >= t:
                return frame.to_image()
    raise AssertionError(f"no frame at {t}")


def expected_frames(annotations, every=2.0):
    """Samples per video: one per target 0, N, 2N… that a frame reaches."""
    counts = {}
    for video in annotations["videos"]:
        fps = Fraction(video["fps"])
        last = Fraction(video["num_frames"] - 1) / fps
        counts[video["file"].rsplit(".", 1)[0]] = int(last // Fraction(every)) + 1 if last % every else int(last // every) + 1
    return counts


def test_index_then_info_counts_every_video_and_frame(shared_on, run_cli, annotations):
    result = run_cli("info", *shared_on.args, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    (index,) = report["indexes"]
    assert index["every"] == 2.0
    per_video = {v["episode"]: v["frames"] for v in index["per_video"]}
    assert per_video == expected_frames(annotations)
    assert index["frames"] == sum(per_video.values())


def test_image_query_finds_the_frame_time_as_top_clip(shared_on, tmp_path, tiny_model, run_cli):
    video = SAMPLE_VIDEOS / "episode_02.mp4"
    query = tmp_path / "still.png"
    frame_at(video, 12.0).save(query)  # a sampled time: 12.012 at 29.97 fps
    result = run_cli("search", "--image", query, "--model", tiny_model, *shared_on.args, "--json", "-k", "3")
    assert result.exit_code == 0, result.stderr
    top = json.loads(result.stdout)[0]
    assert top["episode"] == "episode_02"
    assert top["start"] <= 12.012 < top["end"]
    assert top["score"] == pytest.approx(1.0, abs=1e-3)
    assert any(h["t"] == pytest.approx(12.012, abs=1e-6) for h in top["hits"])


def test_indexing_again_adds_nothing_and_a_changed_file_is_replaced_not_duplicated(backend, tiny_model, run_cli,
                                                                                     sample_copy, annotations):
    first = run_cli("index", sample_copy, "--model", tiny_model, *backend.args, "--json")
    assert first.exit_code == 0, first.stderr
    frames = json.loads(run_cli("info", *backend.args, "--json").stdout)["indexes"][0]["frames"]

    again = run_cli("index", sample_copy, "--model", tiny_model, *backend.args, "--json")
    assert [v["status"] for v in json.loads(again.stdout)["videos"]] == ["unchanged"] * 3

    os.utime(sample_copy / "episode_01.mp4", ns=(1, 1))  # touched, same content: nothing to re-encode
    touched = run_cli("index", sample_copy, "--model", tiny_model, *backend.args, "--json")
    assert [v["status"] for v in json.loads(touched.stdout)["videos"]] == ["unchanged"] * 3

    # New content at the same path (a 10 s video: 5 samples): re-indexed, its old frames gone.
    write_video(sample_copy / "episode_01.mp4", range(250), rate=25)
    third = run_cli("index", sample_copy, "--model", tiny_model, *backend.args, "--json")
    statuses = {os.path.basename(v["path"]): v["status"] for v in json.loads(third.stdout)["videos"]}
    assert statuses == {"episode_01.mp4": "indexed", "episode_02.mp4": "unchanged", "episode_03.mp4": "unchanged"}
    per_video = {v["episode"]: v["frames"] for v in json.loads(run_cli("info", *backend.args, "--json").stdout)["indexes"][0]["per_video"]}
    expected = expected_frames(annotations)
    assert per_video == {**expected, "episode_01": 5}
    assert json.loads(run_cli("info", *backend.args, "--json").stdout)["indexes"][0]["frames"] == frames - expected["episode_01"] + 5


def test_text_query_returns_well_formed_clips(shared_on, tiny_model, run_cli):
    result = run_cli("search", "a red circle bouncing", *shared_on.args, "--json", "-k", "5")
    assert result.exit_code == 0, result.stderr
    clips = json.loads(result.stdout)
    assert 1 <= len(clips) <= 5
    assert [c["rank"] for c in clips] == list(range(1, len(clips) + 1))
    assert [c["score"] for c in clips] == sorted((c["score"] for c in clips), reverse=True)
    for clip in clips:
        assert os.path.isabs(clip["path"]) and clip["path"].endswith(clip["episode"] + ".mp4")
        assert 0 <= clip["start"] < clip["end"]
        assert -1.0 <= clip["score"] <= 1.0
        times = [h["t"] for h in clip["hits"]]
        assert times == sorted(times) and clip["start"] == times[0]  # grid clips unless --snap
        assert clip["score"] == max(h["score"] for h in clip["hits"])


def test_human_output_is_a_table_with_timecodes(shared_index, run_cli):
    # --keep-duplicates: the tiny random model sees all frames as alike and would fold them into one clip.
    result = run_cli("search", "a yellow square", "--db", shared_index, "-k", "2", "--keep-duplicates")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["#", "episode", "start", "end", "score"]
    assert len(lines) == 3
    assert all(len(line.split()[2]) == len("00:00:00.000") for line in lines[1:])


def test_episode_filter(shared_index, run_cli):
    clips = json.loads(run_cli("search", "a shape", "--db", shared_index, "--json", "--episode", "episode_03").stdout)
    assert clips and {c["episode"] for c in clips} == {"episode_03"}


def test_other_frame_rates_and_vfr_are_indexed_with_true_times(tmp_path, tiny_model, run_cli):
    folder = tmp_path / "rates"
    folder.mkdir()
    write_video(folder / "ntsc.mp4", range(200), rate=Fraction(30000, 1001))
    write_video(folder / "pal.mp4", range(150), rate=25)
    write_video(folder / "vfr.mkv", [0, 500, 2100, 2150, 4400, 6000], rate=25, time_base=Fraction(1, 1000))
    db = tmp_path / "db"
    assert run_cli("index", folder, "--model", tiny_model, "--db", db).exit_code == 0
    hits = {}
    for clip in json.loads(run_cli("search", "x", "--db", db, "--json", "-k", "50", "--keep-duplicates").stdout):
        hits.setdefault(clip["episode"], []).extend(h["t"] for h in clip["hits"])
    assert sorted(hits["ntsc"]) == pytest.approx([0.0, 2.002, 4.004, 6.006])
    assert sorted(hits["pal"]) == pytest.approx([0.0, 2.0, 4.0])
    assert sorted(hits["vfr"]) == pytest.approx([0.0, 2.1, 4.4, 6.0])


def test_a_bad_file_is_named_and_the_rest_indexed(tmp_path, tiny_model, run_cli, sample_copy):
    (sample_copy / "notes.mp4").write_text("not a video\n")
    db = tmp_path / "db"
    result = run_cli("index", sample_copy, tmp_path / "missing.mkv", "--model", tiny_model, "--db", db, "--json")
    assert result.exit_code == 3
    assert "notes.mp4: cannot open as a video" in result.stderr
    assert "missing.mkv: no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr
    statuses = {os.path.basename(v["path"]): v["status"] for v in json.loads(result.stdout)["videos"]}
    assert statuses == {"episode_01.mp4": "indexed", "episode_02.mp4": "indexed", "episode_03.mp4": "indexed",
                        "notes.mp4": "failed", "missing.mkv": "failed"}


def test_search_with_another_model_is_refused(shared_on, tmp_path, run_cli):
    from tiny_clip import save_tiny_clip

    other = save_tiny_clip(str(tmp_path / "other_model"), seed=1, image_size=48)
    result = run_cli("search", "a red circle", "--model", other, *shared_on.args)
    assert result.exit_code == 1
    assert "was built with" in result.stderr and "--model" in result.stderr
    assert result.stdout == ""


def test_user_mistakes_are_one_line_errors(tmp_path, run_cli, shared_index):
    cases = [
        (("search", "x", "--db", tmp_path / "nothing-here"), "no index at"),
        (("search", "--db", shared_index), "empty query"),
        (("search", "--image", tmp_path / "nope.png", "--db", shared_index), "no such file"),
        (("index", tmp_path / "empty-folder-that-is-missing", "--db", shared_index), "no video files found"),
    ]
    for args, message in cases:
        result = run_cli(*args)
        assert result.exit_code == 1, (args, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 2, result.stderr
        assert "Traceback" not in result.stderr


def test_every_command_has_help_with_an_example(run_cli):
    for command in ([], ["index"], ["search"], ["info"], ["open"], ["prune"], ["doctor"],
                    ["eval"], ["eval", "images"], ["eval", "videos"]):
        result = run_cli(*command, "--help")
        assert result.exit_code == 0
        assert "scenegrep" in result.stdout and "Example" in result.stdout


def test_console_script_runs_and_keeps_stdout_clean(shared_on, tiny_model):
    # The installed entry point, in a fresh process, as a user runs it; the server URL from the environment.
    where = dict(zip(shared_on.args[::2], shared_on.args[1::2]))
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    env.update({"SCENEGREP_DB": where["--db"]} if "--db" in where else {"SCENEGREP_CHROMA_URL": where["--chroma-url"]})
    result = subprocess.run(
        [sys.executable, "-m", "scenegrep.cli", "search", "a red circle", "--json", "-k", "1"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 1
    assert result.stderr == ""


def test_an_explicit_db_beats_the_server_in_the_environment(run_cli, shared_index, monkeypatch):
    monkeypatch.setenv("SCENEGREP_CHROMA_URL", "http://127.0.0.1:9")  # nothing listens there
    result = run_cli("info", "--db", shared_index, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["indexes"][0]["videos"] == 3
    both = run_cli("info", "--db", shared_index, "--chroma-url", "http://127.0.0.1:9")
    assert both.exit_code == 2 and "not both" in both.stderr


def test_bad_devices_are_one_line_errors(run_cli, shared_index):
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    missing = f"cuda:{gpus}"  # numbered from 0: one past the last GPU this machine has (cuda:0 on a machine without)
    why = f"torch sees {gpus} GPU(s)" if gpus else "no CUDA GPU is visible"
    for device, message in [("gpu", "unknown device"), (missing, why), ("meta", "scenegrep runs on")]:
        result = run_cli("search", "x", "--db", shared_index, "--device", device)
        assert result.exit_code == 1, (device, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr


def test_index_without_model_refuses_to_guess_among_several(tmp_path, tiny_model, run_cli, sample_copy):
    from tiny_clip import save_tiny_clip

    other = save_tiny_clip(str(tmp_path / "other"), seed=3)
    db = tmp_path / "db"
    one = sample_copy / "episode_01.mp4"
    assert run_cli("index", one, "--model", tiny_model, "--db", db).exit_code == 0
    assert run_cli("index", one, "--model", other, "--db", db).exit_code == 0
    result = run_cli("index", sample_copy, "--db", db)
    assert result.exit_code == 1 and "several models" in result.stderr and "--model" in result.stderr


def test_index_keeps_the_index_interval_when_every_is_not_given(tmp_path, tiny_model, run_cli, sample_copy):
    db = tmp_path / "db"
    assert run_cli("index", sample_copy / "episode_01.mp4", "--model", tiny_model, "--db", db, "--every", "3").exit_code == 0
    more = run_cli("index", sample_copy, "--db", db, "--json")  # no --every, no --model: the index's
    assert more.exit_code == 0, more.stderr
    assert json.loads(more.stdout)["every"] == 3.0
    refused = run_cli("index", sample_copy, "--db", db, "--every", "2")
    assert refused.exit_code == 1 and "samples every 3 s" in refused.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_a_non_finite_interval_is_a_usage_error_and_writes_nothing(tmp_path, tiny_model, run_cli, sample_copy, value):
    db = tmp_path / "db"
    result = run_cli("index", sample_copy / "episode_01.mp4", "--model", tiny_model, "--db", db, "--every", value)
    assert result.exit_code == 2 and "not a finite number" in result.stderr, result.stderr
    assert not db.exists()
    evaluated = run_cli("eval", "videos", SAMPLE_VIDEOS / "annotations.json", "--model", tiny_model, "--db", db,
                        "--every", value)
    assert evaluated.exit_code == 2 and "not a finite number" in evaluated.stderr
    assert not db.exists()
    for option in ("--gap", "--pad", "--within", "--min-score"):
        searched = run_cli("search", "x", "--db", db, option, value)
        assert searched.exit_code == 2 and "not a finite number" in searched.stderr, option
    # The index is then built as if nothing had happened.
    fine = run_cli("index", sample_copy / "episode_01.mp4", "--model", tiny_model, "--db", db, "--json")
    assert fine.exit_code == 0, fine.stderr
    assert json.loads(fine.stdout)["every"] == 2.0


def test_a_library_user_cannot_store_a_non_finite_interval(tmp_path, tiny_model):
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.index_access import Location, open_index

    where = Location(db=str(tmp_path / "db"))
    with open_index(where, write=True) as opened:
        with pytest.raises(ValueError, match="positive number"):
            opened.for_writing(ClipEncoder(tiny_model).info, float("nan"))
    with open_index(where) as opened:
        assert opened.indexes == []



def test_fp16_on_a_cpu_is_refused_for_text_and_image_queries_alike(run_cli, shared_index, tmp_path):
    import torch

    from PIL import Image

    still = tmp_path / "still.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(still)
    devices = ["cpu"] + ([] if torch.cuda.is_available() or torch.backends.mps.is_available() else ["auto"])
    for device in devices:
        for query in (["a shape"], ["--image", still]):
            result = run_cli("search", *query, "--db", shared_index, "--device", device, "--precision", "fp16")
            assert result.exit_code == 1, (device, query, result.stderr)
            assert "--precision fp16 is for GPUs" in result.stderr and "Traceback" not in result.stderr
    for precision in ("fp32", "bf16", "auto"):  # what a CPU runs works for both
        for query in (["a shape"], ["--image", still]):
            result = run_cli("search", *query, "--db", shared_index, "--device", "cpu", "--precision", precision)
            assert result.exit_code == 0, (precision, query, result.stderr)


def test_the_fps_of_a_variable_frame_rate_video_is_readable(tmp_path, tiny_model, run_cli):
    folder = tmp_path / "rates"
    folder.mkdir()
    write_video(folder / "ntsc.mp4", range(90), rate=Fraction(30000, 1001))
    # MP4 keeps each frame's time: FFmpeg's average rate is frames ÷ duration, 400/407.
    write_video(folder / "vfr.mp4", [0, 500, 2100, 2150, 4400, 6000, 6033, 9000], rate=25, time_base=Fraction(1, 1000))
    db = tmp_path / "db"
    assert run_cli("index", folder, "--model", tiny_model, "--db", db).exit_code == 0

    def rates():
        result = run_cli("search", "x", "--db", db, "--json", "-k", "50", "--keep-duplicates")
        assert result.exit_code == 0, result.stderr
        return {clip["episode"]: (clip["fps"], clip["start_smpte"]) for clip in json.loads(result.stdout)}

    found = rates()
    assert found["ntsc"][0] == "30000/1001"
    assert found["vfr"][0] == "0.983"  # the average rate to a thousandth
    assert Fraction(found["vfr"][0]) == Fraction(983, 1000)
    assert all(smpte and len(smpte) == 11 for _, smpte in found.values())

    # An index written before kept the raw average; it is shown readable too.
    from conftest import Backend

    store = Backend("embedded", db=str(db)).store()
    (vfr,) = [entry for entry in store.indexed_videos() if entry.episode == "vfr"]
    store.update_fingerprint(vfr.video_id, {"fps": "3102357836338419/200000000000000"})
    assert rates()["vfr"][0] == "15.512"
