"""A damaged index is reported as damaged, by `doctor` and by the command that meets the damage, never answered silently wrong."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3

import pytest
from conftest import SAMPLE_VIDEOS, index_once

DENSE_EVERY = 0.04
"""Samples the three sample videos into ~1,800 frames: past Chroma's sync
threshold (1,000), so the frames' vectors live only in the HNSW segment files
and losing those files loses them (below it Chroma still has them in its log)."""


@pytest.fixture(scope="module")
def dense_index(tmp_path_factory, tiny_model):
    db = tmp_path_factory.mktemp("dense") / "db"
    index_once(SAMPLE_VIDEOS, "--model", tiny_model, "--db", db, "--every", DENSE_EVERY)
    return db


def frames_segment(db) -> str:
    """The folder of the frames collection's vector (HNSW) segment, from Chroma's own catalogue."""
    with sqlite3.connect(os.path.join(db, "chroma.sqlite3")) as connection:
        (segment,) = connection.execute(
            "SELECT s.id FROM segments s JOIN collections c ON s.collection = c.id "
            "WHERE c.name LIKE 'sg-%' AND s.scope = 'VECTOR'").fetchone()
    return os.path.join(db, segment)


def forget_open_clients() -> None:
    """Each scenegrep command is a process of its own; in-process runs share Chroma's
    cached client (with its vector index in memory): drop it, as a new process would start."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


@pytest.mark.parametrize("damage", ["removed", "lengths cut short"])
def test_a_lost_or_cut_short_vector_segment_is_reported_by_doctor_and_search(damage, dense_index, tmp_path, run_cli):
    db = tmp_path / "db"
    shutil.copytree(dense_index, db)
    assert run_cli("doctor", "--db", db).exit_code == 0  # the copy itself is healthy
    forget_open_clients()
    segment = frames_segment(db)
    if damage == "removed":
        shutil.rmtree(segment)
    else:  # Chroma then returns vectors of any length (cutting `data_level0.bin` short can crash it outright)
        os.truncate(os.path.join(segment, "length.bin"), 1000)

    doctor = run_cli("doctor", "--db", db, "--json")
    assert doctor.exit_code == 1
    problems = [c["detail"] for c in json.loads(doctor.stdout)["checks"] if c["status"] == "problem"]
    assert any("cannot be read back" in p and "episode_01.mp4" in p for p in problems), problems

    assert run_cli("info", "--db", db).exit_code in (0, 1)  # counts may still read; never a traceback
    # The local copies `index` wrote would answer an episode search without the lost vectors (rightly:
    # they copy the frames stored); without them the search meets the damage.
    shutil.rmtree(db / "vectors")
    filtered = run_cli("search", "a red ball", "--db", db, "--episode", "episode_01")
    assert filtered.exit_code == 1
    assert "is damaged" in filtered.stderr and "scenegrep doctor" in filtered.stderr
    assert filtered.stdout == ""


def sqlite_without_chroma(path) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (text)")
    with open(path, "rb") as fh:
        return fh.read()


@pytest.mark.parametrize("content", ["empty", "not SQLite", "SQLite without Chroma's tables"])
def test_an_empty_or_foreign_database_file_is_damage_not_a_fresh_start(content, tmp_path, tiny_model, run_cli):
    db = tmp_path / "db"
    assert run_cli("index", SAMPLE_VIDEOS / "episode_01.mp4", "--model", tiny_model, "--db", db).exit_code == 0
    content = {"empty": b"", "not SQLite": b"not a database at all" * 100,
               "SQLite without Chroma's tables": sqlite_without_chroma(tmp_path / "other.sqlite3")}[content]
    (db / "chroma.sqlite3").write_bytes(content)
    before = sorted(os.listdir(db))

    for args in (["index", SAMPLE_VIDEOS, "--model", tiny_model], ["search", "red"], ["info"]):
        result = run_cli(*args, "--db", db)
        assert result.exit_code == 1, args
        assert "is damaged" in result.stderr and "chroma.sqlite3" in result.stderr, result.stderr
        assert "try again in a moment" not in result.stderr  # not the hint for a concurrent `index`
    assert sorted(os.listdir(db)) == before  # nothing started over beside the old segment folders
    assert (db / "chroma.sqlite3").read_bytes() == content
    assert run_cli("doctor", "--db", db).exit_code == 1


def test_a_foreign_cached_vector_file_is_reported_by_doctor_and_never_used(tmp_path, tiny_model, run_cli):
    db = tmp_path / "db"
    assert run_cli("index", SAMPLE_VIDEOS, "--model", tiny_model, "--db", db).exit_code == 0
    first = run_cli("search", "a red ball", "--db", db, "--episode", "episode_01", "--json")
    (folder,) = (db / "vectors").iterdir()
    files = {path.name.split("-")[0]: path for path in folder.iterdir()}
    assert len(files) == 3  # written by `index`, one per video
    from scenegrep.pipeline.files import video_for

    one = files[video_for(SAMPLE_VIDEOS / "episode_01.mp4").video_id]
    two = files[video_for(SAMPLE_VIDEOS / "episode_02.mp4").video_id]
    shutil.copy(two, one)  # another video's vectors under episode_01's name

    doctor = run_cli("doctor", "--db", db, "--json")
    assert doctor.exit_code == 1
    problems = [c["detail"] for c in json.loads(doctor.stdout)["checks"] if c["status"] == "problem"]
    assert any("local vector copies of 1 video(s) differ" in p and "episode_01.mp4" in p for p in problems), problems
    assert one.read_bytes() == two.read_bytes()  # doctor only looks

    again = run_cli("search", "a red ball", "--db", db, "--episode", "episode_01", "--json")
    assert json.loads(again.stdout) == json.loads(first.stdout)
    assert one.read_bytes() != two.read_bytes()  # fetched again from the index
    assert run_cli("doctor", "--db", db).exit_code == 0


def test_a_database_file_being_created_by_a_running_index_is_not_called_damaged(tmp_path, run_cli):
    """SQLite makes the file before its header and Chroma adds its tables after: a reader
    arriving in between while `index` holds the lock is asked to wait, not told to rebuild."""
    from scenegrep.pipeline.lock import IndexLock

    db = tmp_path / "db"
    db.mkdir()
    (db / "chroma.sqlite3").write_bytes(b"")
    with IndexLock(str(db)):
        result = run_cli("search", "red", "--db", db)
    assert result.exit_code == 1 and "being created" in result.stderr and "damaged" not in result.stderr
    assert "damaged" in run_cli("search", "red", "--db", db).stderr  # nobody writing: it is damage


def test_garbage_vectors_read_back_are_not_unit_length_and_print_no_numpy_warning():
    """What a cut-short segment hands back (huge or NaN values) is damage: one clear error
    later, never a stray RuntimeWarning from numpy on the way."""
    import warnings

    import numpy as np

    from scenegrep.pipeline.encode import all_unit_length

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not all_unit_length(np.array([[3e38, 3e38], [0.6, 0.8]], np.float32))
        assert not all_unit_length(np.array([[np.nan, 1.0]], np.float32))
        assert all_unit_length(np.array([[0.6, 0.8]], np.float32))
