"""`scenegrep serve`'s JSON API through FastAPI's test client, against real
indexes built by the CLI with the miniature CLIP (mini) and the tiny one."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import time
import zipfile

import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS
from PIL import Image
from serve_helpers import HOSTILE_EPISODE, MINI_CLIP, client, mini_index


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    db = mini_index(tmp_path_factory)
    return db, client(db)


@pytest.fixture(scope="module")
def tiny(shared_index):
    return shared_index, client(shared_index)


PLAYER_START_S = 60.0
"""How long the started player (a shell script) may take to write its arguments: a spawn on a
loaded CI machine can take seconds, and waiting long costs nothing when it is quick."""


def cli_json(run_cli, *args):
    result = run_cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_a_text_search_returns_the_clis_clips_for_the_annotated_scene(mini, run_cli):
    db, api = mini
    answer = api.post("/api/search", data={"text": "a green triangle on a white background", "k": "5"})
    assert answer.status_code == 200, answer.text
    clips = answer.json()["clips"]
    # episode_01's green triangle fills 9-15 s; samples at 10, 12, 14 s make the grid clip 10-16 s,
    # whose edges snap to the shot's cuts (recorded while indexing) as in the CLI.
    assert (clips[0]["episode"], clips[0]["start_tc"], clips[0]["end_tc"]) == ("episode_01", "00:00:09.000", "00:00:15.000")
    assert (clips[0]["grid_start"], clips[0]["grid_end"]) == (10.0, 16.0) and answer.json()["notes"] == []
    expected = cli_json(run_cli, "search", "a green triangle on a white background", "-k", "5", "--db", db)
    assert [{k: c[k] for k in e} for c, e in zip(clips, expected)] == expected
    assert clips[0]["video_url"] == f"/api/videos/{clips[0]['video_id']}"
    grid = api.post("/api/search", data={"text": "a green triangle on a white background", "k": "5", "snap": "false"})
    assert (grid.json()["clips"][0]["start_tc"], grid.json()["clips"][0]["grid_start"]) == ("00:00:10.000", None)
    expected = cli_json(run_cli, "search", "a green triangle on a white background", "-k", "5", "--db", db, "--no-snap")
    assert [{k: c[k] for k in e} for c, e in zip(grid.json()["clips"], expected)] == expected


def test_weights_negative_terms_and_filters_mean_what_they_mean_in_the_cli(mini, run_cli):
    db, api = mini
    form = {"text": ["a shape", "2:a blue star"], "not": ["a red circle"], "episode": ["episode_0[12]"],
            "from": "0:05", "to": "20", "per_episode": "1", "within": "0.5", "pad": "1", "k": "4"}
    clips = api.post("/api/search", data=form).json()["clips"]
    expected = cli_json(run_cli, "search", "a shape", "2:a blue star", "--not", "a red circle", "--episode", "episode_0[12]",
                        "--from", "0:05", "--to", "20", "--per-episode", "1", "--within", "0.5", "--pad", "1", "-k", "4",
                        "--db", db)
    assert [(c["episode"], c["start"], c["end"], c["score"]) for c in clips] == \
           [(c["episode"], c["start"], c["end"], c["score"]) for c in expected]
    assert len({c["episode"] for c in clips}) == len(clips) and {c["episode"] for c in clips} <= {"episode_01", "episode_02"}
    assert all(c["start"] >= 5 and c["end"] <= 20 for c in clips)


def test_an_uploaded_picture_finds_its_own_scene(mini):
    import av

    _, api = mini
    with av.open(str(SAMPLE_VIDEOS / "episode_01.mp4")) as container:
        stream = container.streams.video[0]
        frame = next(f for f in container.decode(stream) if f.pts * stream.time_base >= 17)
        picture = io.BytesIO()
        frame.to_image().save(picture, format="PNG")
    answer = api.post("/api/search", files={"image": ("still 17s.png", picture.getvalue(), "image/png")}, data={"k": "3"})
    assert answer.status_code == 200, answer.text
    top = answer.json()["clips"][0]
    assert top["episode"] == "episode_01" and top["start"] <= 17 < top["end"]
    assert answer.json()["query"] == "image:still_17s.png"


def test_info_reports_what_the_cli_reports(tiny, run_cli):
    db, api = tiny
    info = api.get("/api/info").json()
    (expected,) = cli_json(run_cli, "info", "--db", db)["indexes"]
    assert {k: info[k] for k in ("model", "dim", "every", "videos", "frames")} == \
           {k: expected[k] for k in ("model", "dim", "every", "videos", "frames")}
    assert [v["episode"] for v in info["per_video"]] == ["episode_01", "episode_02", "episode_03"]
    assert info["indexing"] is False and info["unregistered_frames"] == 0 and info["can_open"] is True


def test_a_running_index_shows_as_indexing(tiny):
    from scenegrep.pipeline.lock import IndexLock

    db, api = tiny
    with IndexLock(str(db)):  # what `scenegrep index` holds while it writes
        assert api.get("/api/info").json()["indexing"] is True
    assert api.get("/api/info").json()["indexing"] is False


def test_videos_stream_with_range_requests(tiny):
    _, api = tiny
    video = api.get("/api/info").json()["per_video"][1]
    data = (SAMPLE_VIDEOS / "episode_02.mp4").read_bytes()
    part = api.get(f"/api/videos/{video['video_id']}", headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert part.headers["content-type"] == "video/mp4"
    whole = api.get(f"/api/videos/{video['video_id']}")
    assert whole.status_code == 200 and whole.content == data and whole.headers["accept-ranges"] == "bytes"


def test_thumbnails_are_made_on_demand_and_kept(tmp_path, sample_copy, tiny_model, run_cli):
    db = tmp_path / "db"
    assert run_cli("index", sample_copy, "--model", tiny_model, "--db", db).exit_code == 0
    api = client(db)
    clip = api.post("/api/search", data={"text": "a shape", "k": "1"}).json()["clips"][0]
    first = api.get(clip["thumbnail_url"])
    assert first.status_code == 200 and first.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(first.content))
    assert image.size == (320, 180)
    os.rename(clip["path"], clip["path"] + ".moved")  # the video is gone: only a kept thumbnail can answer
    again = api.get(clip["thumbnail_url"])
    assert again.status_code == 200 and again.content == first.content
    other = api.get(clip["thumbnail_url"].split("?")[0] + "?t=0.5")
    assert other.status_code == 404 and "no thumbnail" in other.json()["error"]


def test_exports_are_the_clis_files(mini, run_cli, tmp_path):
    import opentimelineio as otio

    db, api = mini
    form = {"text": "a green triangle on a white background", "k": "3", "episode": "episode_01"}
    edl = api.post("/api/export?format=edl", data=form)
    assert edl.status_code == 200, edl.text
    assert edl.headers["content-disposition"] == 'attachment; filename="scenegrep-results.edl"'
    path = tmp_path / "web.edl"
    path.write_bytes(edl.content)
    timeline = otio.adapters.read_from_file(str(path), "cmx_3600", rate=24)
    clips = api.post("/api/search", data=form).json()["clips"]
    assert [otio.opentime.to_timecode(c.source_range.start_time, 24) for c in timeline.tracks[0].find_clips()] == \
           [c["start_smpte"] for c in clips]
    assert run_cli("search", "a green triangle on a white background", "-k", "3", "--episode", "episode_01", "--db", db,
                   "--export", tmp_path / "cli.edl").exit_code == 0
    assert path.read_text() == (tmp_path / "cli.edl").read_text()

    sheet = api.post("/api/export?format=html", data=form)  # a sheet comes with its thumbnail folder
    names = zipfile.ZipFile(io.BytesIO(sheet.content)).namelist()
    assert "scenegrep-results.html" in names and sum(n.startswith("scenegrep-results_thumbs/") for n in names) == 3

    table = api.post("/api/export?format=json", data=form)
    with zipfile.ZipFile(io.BytesIO(table.content)) as archive:
        exported = json.loads(archive.read("scenegrep-results.json"))
    assert [c["start_tc"] for c in exported["clips"]] == [c["start_tc"] for c in clips]


def test_an_unzipped_export_finds_its_thumbnails_and_names_no_server_folder(mini, tmp_path):
    db, api = mini
    form = {"text": "a green triangle on a white background", "k": "3"}
    for fmt in ("csv", "json", "html"):
        answer = api.post(f"/api/export?format={fmt}", data=form)
        assert answer.status_code == 200, answer.text
        unzipped = tmp_path / fmt
        with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
            for name in archive.namelist():  # the server's temporary folder (scenegrep-export-…) appears nowhere
                assert b"scenegrep-export-" not in archive.read(name), (fmt, name)
            archive.extractall(unzipped)
        data = (unzipped / f"scenegrep-results.{fmt}").read_text(encoding="utf-8")
        if fmt == "csv":
            listed = [row["thumbnail"] for row in csv.DictReader(io.StringIO(data))]
        elif fmt == "json":
            listed = [clip["thumbnail"] for clip in json.loads(data)["clips"]]
        else:
            listed = re.findall(r'<img src="([^"]+)"', data)
        assert len(listed) == 3, fmt
        for thumbnail in listed:
            assert thumbnail.startswith("scenegrep-results_thumbs/"), thumbnail
            assert (unzipped / thumbnail).resolve().is_file()
            assert (unzipped / thumbnail).resolve().is_relative_to(unzipped.resolve())


def test_the_schema_describes_every_endpoint(tiny):
    _, api = tiny
    paths = api.get("/api/openapi.json").json()["paths"]
    assert {"/api/search", "/api/export", "/api/info", "/api/videos/{video_id}", "/api/thumbnails/{video_id}",
            "/api/open"} <= set(paths)


def test_open_starts_the_desktop_player_without_a_shell(tiny, tmp_path, monkeypatch):
    db, api = tiny
    record = tmp_path / "args.txt"
    player = tmp_path / "bin" / "mpv"
    player.parent.mkdir()
    player.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n')
    player.chmod(player.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{player.parent}{os.pathsep}{os.environ['PATH']}")
    video = api.get("/api/info").json()["per_video"][0]
    answer = api.post("/api/open", json={"video_id": video["video_id"], "start": 4, "end": 6.5})
    assert answer.status_code == 200, answer.text
    assert answer.json()["player"] == "mpv"
    deadline = time.monotonic() + PLAYER_START_S
    while not (record.exists() and record.read_text().count("\n") >= 4):  # all four arguments written
        assert time.monotonic() < deadline, f"the player was not started, or wrote {record.exists() and record.read_text()!r}"
        time.sleep(0.05)
    assert record.read_text().splitlines() == ["--start=4.000", "--end=6.500", "--", video["path"]]


def test_open_is_refused_unless_serving_on_loopback(shared_index):
    api = client(shared_index, allow_open=False, token="t" * 20)
    video = api.get("/api/info", headers={"Authorization": "Bearer " + "t" * 20}).json()["per_video"][0]
    answer = api.post("/api/open", json={"video_id": video["video_id"], "start": 0},
                      headers={"Authorization": "Bearer " + "t" * 20})
    assert answer.status_code == 403 and "127.0.0.1" in answer.json()["error"]


def test_the_page_is_served_without_anything_from_elsewhere(tiny):
    _, api = tiny
    page = api.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for name in ("app.js", "style.css"):
        assert api.get(f"/static/{name}").status_code == 200
    assert "http" not in page.text and "default-src 'self'" in page.headers["content-security-policy"]
    script = api.get("/static/app.js").text
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script


def test_untrusted_names_come_back_as_plain_json_strings(mini):
    _, api = mini
    clips = api.post("/api/search", data={"text": "a shape", "episode": "<img*", "k": "2"}).json()["clips"]
    assert clips and clips[0]["episode"] == HOSTILE_EPISODE
    assert np.isfinite(clips[0]["score"])


def test_a_refined_search_reuses_its_terms_embeddings(shared_index, monkeypatch):
    from scenegrep.pipeline.encode import ClipEncoder

    api = client(shared_index)
    calls = []
    real = ClipEncoder.embed_texts
    monkeypatch.setattr(ClipEncoder, "embed_texts", lambda self, texts: calls.append(list(texts)) or real(self, texts))
    first = api.post("/api/search", data={"text": ["a shape", "2:a circle"]}).json()
    api.post("/api/search", data={"text": ["a shape", "2:a circle"], "per_episode": "1"})
    api.post("/api/export?format=m3u", data={"text": ["a circle", "a square"]})
    assert calls == [["a shape", "a circle"], ["a square"]]
    again = api.post("/api/search", data={"text": ["a shape", "2:a circle"]}).json()
    assert again["clips"] == first["clips"]


def test_videos_indexed_while_serving_are_found(tmp_path, tiny_model, run_cli, run_subprocess, monkeypatch):
    # Another process writes to the folder (as `scenegrep index` does): the server must see it,
    # not keep the vector index it loaded (which then looked damaged: 12 of 25 frames).
    from scenegrep.serve import engine

    monkeypatch.setattr(engine, "REOPEN_AFTER_S", 0.0)
    db = tmp_path / "db"
    first = run_cli("index", SAMPLE_VIDEOS / "episode_01.mp4", "--model", tiny_model, "--db", db)  # before serving
    assert first.exit_code == 0, first.stderr
    api = client(db)
    form = {"text": "a shape", "k": "50", "keep_duplicates": "true"}
    assert {c["episode"] for c in api.post("/api/search", data=form).json()["clips"]} == {"episode_01"}
    process = run_subprocess("index", SAMPLE_VIDEOS / "episode_02.mp4", "--model", tiny_model, "--db", db)
    _, err = process.communicate(timeout=300)  # read as it runs: a full stderr pipe would block it
    assert process.returncode == 0, err
    answer = api.post("/api/search", data=form)
    assert answer.status_code == 200, answer.text
    assert {c["episode"] for c in answer.json()["clips"]} == {"episode_01", "episode_02"}
    assert api.get("/api/info").json()["videos"] == 2


def test_other_readers_do_not_make_the_server_reopen_the_index(shared_index, run_subprocess, monkeypatch):
    # Opening a Chroma client writes to the database file, so a reader elsewhere
    # (a CLI search, a second server) must not count as a writer: reopening
    # reloads the vector index, and two servers would make each other do it forever.
    from scenegrep.serve import engine

    monkeypatch.setattr(engine, "REOPEN_AFTER_S", 0.0)
    reopened = []
    real = engine.Engine._reopen
    monkeypatch.setattr(engine.Engine, "_reopen", lambda self: reopened.append(1) or real(self))
    api = client(shared_index)
    assert api.post("/api/search", data={"text": "a shape"}).status_code == 200
    searching = run_subprocess("search", "a shape", "--db", shared_index)
    _, err = searching.communicate(timeout=300)
    assert searching.returncode == 0, err
    assert api.post("/api/search", data={"text": "a shape"}).status_code == 200
    assert reopened == []
