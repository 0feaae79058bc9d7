"""One way to open an index: one rule picks the model, readers write nothing, and every prune forgets stale vectors."""

from __future__ import annotations

import json
import os

import pytest
from conftest import SAMPLE_VIDEOS


@pytest.fixture(scope="module")
def second_model(tmp_path_factory) -> str:
    from tiny_clip import save_tiny_clip

    return save_tiny_clip(str(tmp_path_factory.mktemp("tiny_clip_b")), seed=1)


def test_reading_commands_create_no_index_folder(tmp_path, run_cli):
    db = tmp_path / "nothing-here"
    for args in (["search", "red"], ["info"], ["prune"], ["open", "1"]):
        assert run_cli(*args, "--db", db).exit_code == 1, args
    assert run_cli("doctor", "--db", db, "--model", str(tmp_path / "no-model")).exit_code == 1
    assert not db.exists()


def test_doctor_and_search_leave_the_index_as_they_found_it(tmp_path, tiny_model, run_cli):
    from scenegrep.pipeline.index_access import Location, open_index

    db = tmp_path / "db"
    assert run_cli("index", SAMPLE_VIDEOS / "episode_01.mp4", "--model", tiny_model, "--db", db).exit_code == 0
    lock = db / "scenegrep-index.lock"
    os.utime(lock, ns=(1, 1))
    with open_index(Location(db=str(db))) as opened:
        (index,) = opened.indexes
        opened.client.delete_collection(index.registry_collection)  # as if a run died before registering anything

    assert run_cli("doctor", "--db", db).exit_code == 1  # orphan frames: nothing is registered
    assert run_cli("search", "red", "--db", db).exit_code == 0
    assert os.stat(lock).st_mtime_ns == 1  # not rewritten by doctor's look at the lock
    with open_index(Location(db=str(db))) as opened:
        names = {getattr(c, "name", c) for c in opened.client.list_collections()}
    assert index.registry_collection not in names  # no reader created it


def test_one_rule_picks_the_model_in_every_command(tmp_path, tiny_model, second_model, run_cli):
    db = tmp_path / "db"
    for model in (tiny_model, second_model):
        assert run_cli("index", SAMPLE_VIDEOS / "episode_01.mp4", "--model", model, "--db", db).exit_code == 0
    for args in (["search", "red"], ["index", SAMPLE_VIDEOS / "episode_02.mp4"], ["eval", "videos",
                 SAMPLE_VIDEOS / "annotations.json"]):
        result = run_cli(*args, "--db", db)
        assert result.exit_code == 1 and "several models" in result.stderr and "--model" in result.stderr, args

    doctor = run_cli("doctor", "--db", db, "--json")
    assert doctor.exit_code == 1
    checks = json.loads(doctor.stdout)["checks"]
    (model_check,) = [c for c in checks if c["name"] == "model"]
    assert model_check["status"] == "problem" and "several models" in model_check["detail"]
    assert "openai" not in doctor.stdout  # no silent fall-back to the hub model
    assert sum(c["name"].startswith("index") and c["status"] == "ok" for c in checks) == 2  # both indexes checked

    info = json.loads(run_cli("info", "--db", db, "--json").stdout)
    assert len(info["indexes"]) == 2
    assert run_cli("doctor", "--db", db, "--model", second_model).exit_code == 0
    missing = run_cli("info", "--db", db, "--model", str(SAMPLE_VIDEOS / "mini_clip"))
    assert missing.exit_code == 1 and "was indexed with" in missing.stderr


def test_index_prune_forgets_the_vectors_of_pruned_videos(sample_copy, tmp_path, tiny_model, run_cli):
    db = tmp_path / "db"
    assert run_cli("index", sample_copy, "--model", tiny_model, "--db", db).exit_code == 0
    (folder,) = (db / "vectors").iterdir()
    assert len(os.listdir(folder)) == 3  # `index` writes each video's copy
    os.remove(sample_copy / "episode_02.mp4")
    result = run_cli("index", sample_copy, "--prune", "--db", db, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["pruned"] == [str(sample_copy / "episode_02.mp4")]
    from scenegrep.pipeline.files import video_for

    assert sorted(name.split("-")[0] for name in os.listdir(folder)) == sorted(
        video_for(sample_copy / name).video_id for name in ("episode_01.mp4", "episode_03.mp4"))
