"""Incremental indexing: moved, renamed and copied files reuse their embeddings;
deleted files are pruned; nothing is ever mixed or duplicated."""

from __future__ import annotations

import json
import os
import shutil

from conftest import write_video


def statuses(result) -> dict[str, tuple[str, int]]:
    return {os.path.basename(v["path"]): (v["status"], v["frames"]) for v in json.loads(result.stdout)["videos"]}


def per_video(backend, run_cli) -> dict[str, int]:
    report = json.loads(run_cli("info", "--json", *backend.args).stdout)
    return {v["path"]: v["frames"] for v in report["indexes"][0]["per_video"]}


def test_a_renamed_or_moved_file_is_repointed_without_re_encoding(backend, tmp_path, tiny_model, run_cli, sample_copy):
    first = run_cli("index", sample_copy, "--model", tiny_model, "--json", *backend.args)
    assert first.exit_code == 0, first.stderr
    before = backend.frame_ids()
    frames = per_video(backend, run_cli)

    elsewhere = tmp_path / "season 1"
    elsewhere.mkdir()
    os.rename(sample_copy / "episode_01.mp4", sample_copy / "pilot.mp4")
    shutil.move(sample_copy / "episode_02.mp4", elsewhere / "episode_02.mp4")
    again = run_cli("index", sample_copy, elsewhere, "--model", tiny_model, "--json", *backend.args)
    assert again.exit_code == 0, again.stderr
    assert statuses(again) == {"pilot.mp4": ("moved", frames[str(sample_copy / "episode_01.mp4")]),
                               "episode_02.mp4": ("moved", frames[str(sample_copy / "episode_02.mp4")]),
                               "episode_03.mp4": ("unchanged", frames[str(sample_copy / "episode_03.mp4")])}
    assert "nothing re-encoded" in again.stderr and "0 new frame(s)" in again.stderr
    assert per_video(backend, run_cli) == {
        str(sample_copy / "pilot.mp4"): frames[str(sample_copy / "episode_01.mp4")],
        str(elsewhere / "episode_02.mp4"): frames[str(sample_copy / "episode_02.mp4")],
        str(sample_copy / "episode_03.mp4"): frames[str(sample_copy / "episode_03.mp4")],
    }
    assert len(backend.frame_ids()) == len(before)  # old frames gone, none duplicated
    rates = {os.path.basename(v.path): v.fps for v in backend.store().indexed_videos()}
    assert rates == {"pilot.mp4": "24", "episode_02.mp4": "30000/1001", "episode_03.mp4": "25"}  # kept for exports

    # --keep-duplicates: the tiny random model sees all frames as alike and would fold them into one clip.
    found = json.loads(run_cli("search", "a shape", "--json", "-k", "50", "--keep-duplicates", *backend.args).stdout)
    assert {clip["episode"] for clip in found} == {"pilot", "episode_02", "episode_03"}
    assert all(os.path.exists(clip["path"]) for clip in found)


def test_a_copy_is_indexed_from_the_stored_embeddings_and_both_stay_searchable(backend, tmp_path, tiny_model, run_cli,
                                                                               sample_copy):
    assert run_cli("index", sample_copy / "episode_03.mp4", "--model", tiny_model, *backend.args).exit_code == 0
    shutil.copy(sample_copy / "episode_03.mp4", sample_copy / "episode_03 (copy).mp4")
    result = run_cli("index", sample_copy / "episode_03 (copy).mp4", "--model", tiny_model, "--json", *backend.args)
    assert result.exit_code == 0, result.stderr
    (video,) = json.loads(result.stdout)["videos"]
    assert video["status"] == "copied" and video["from"] == str(sample_copy / "episode_03.mp4")
    counts = per_video(backend, run_cli)
    assert counts[str(sample_copy / "episode_03 (copy).mp4")] == counts[str(sample_copy / "episode_03.mp4")] > 0
    assert len(backend.frame_ids()) == 2 * counts[str(sample_copy / "episode_03.mp4")]
    rates = {os.path.basename(v.path): v.fps for v in backend.store().indexed_videos()}
    assert rates == {"episode_03.mp4": "25", "episode_03 (copy).mp4": "25"}


def test_prune_removes_deleted_videos_only_under_the_given_paths(backend, tmp_path, tiny_model, run_cli, sample_copy):
    other = tmp_path / "other"
    other.mkdir()
    write_video(other / "short.mp4", range(100), rate=25)
    assert run_cli("index", sample_copy, other, "--model", tiny_model, *backend.args).exit_code == 0
    total = len(backend.frame_ids())
    gone = per_video(backend, run_cli)[str(sample_copy / "episode_02.mp4")]
    os.remove(sample_copy / "episode_02.mp4")
    os.remove(other / "short.mp4")

    dry = run_cli("prune", sample_copy, "--dry-run", "--json", *backend.args)
    assert dry.exit_code == 0, dry.stderr
    assert [v["path"] for v in json.loads(dry.stdout)["indexes"][0]["videos"]] == [str(sample_copy / "episode_02.mp4")]
    assert len(backend.frame_ids()) == total  # a dry run changes nothing

    result = run_cli("prune", sample_copy, *backend.args)
    assert result.exit_code == 0, result.stderr
    assert f"removed {sample_copy / 'episode_02.mp4'}" in result.stdout
    assert str(other / "short.mp4") not in result.stdout  # not under the path given
    assert len(backend.frame_ids()) == total - gone
    assert str(other / "short.mp4") in per_video(backend, run_cli)

    # `index --prune` does the same after indexing.
    pruned = run_cli("index", other.parent, "--model", tiny_model, "--prune", "--json", *backend.args)
    assert pruned.exit_code == 0, pruned.stderr
    assert json.loads(pruned.stdout)["pruned"] == [str(other / "short.mp4")]
    assert str(other / "short.mp4") not in per_video(backend, run_cli)


def test_prune_leaves_everything_when_a_given_folder_is_missing(tmp_path, tiny_model, run_cli, sample_copy):
    db = tmp_path / "db"
    assert run_cli("index", sample_copy, "--model", tiny_model, "--db", db).exit_code == 0
    moved_away = tmp_path / "unplugged"
    shutil.move(sample_copy, moved_away)  # like an unmounted drive
    result = run_cli("index", sample_copy, "--model", tiny_model, "--db", db, "--prune", "--json")
    assert "no such file or folder" in result.stderr
    assert json.loads(result.stdout)["pruned"] == []
    assert len(json.loads(run_cli("info", "--db", db, "--json").stdout)["indexes"][0]["per_video"]) == 3
    # `scenegrep prune FOLDER` follows the same rule as `index --prune`.
    result = run_cli("prune", sample_copy, "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    assert "nothing under it is pruned" in result.stderr
    assert json.loads(result.stdout)["indexes"][0]["videos"] == []
    assert len(json.loads(run_cli("info", "--db", db, "--json").stdout)["indexes"][0]["per_video"]) == 3
