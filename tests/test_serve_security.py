"""`scenegrep serve`'s security rules, one test each: every refusal is a clean
4xx with a JSON message, never a traceback, never a file outside the index."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import SAMPLE_VIDEOS
from PIL import Image
from serve_helpers import client

TOKEN = "s3cret-token-for-tests"

SERVER_START_S = 60.0
"""How long `scenegrep serve` may take to answer after printing its URL: a hundred tries
(about 10 s) could run out on a loaded CI machine; a deadline costs nothing when it is quick."""


@pytest.fixture(scope="module")
def api(shared_index):
    return client(shared_index)


def refused(response, status: int, words: str = "") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and words.lower() in body["error"].lower()
    assert "Traceback" not in response.text and "File \"" not in response.text
    return body


def png(width=32, height=32) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_a_token_is_checked_on_every_request(shared_index):
    guarded = client(shared_index, token=TOKEN, allow_open=False, base_url="http://192.0.2.7:8765")
    for path in ("/", "/static/app.js", "/api/info", "/api/openapi.json", "/api/videos/0123456789abcdef"):
        refused(guarded.get(path), 401, "token")
    refused(guarded.post("/api/search", data={"text": "a shape"}), 401, "token")
    refused(guarded.get("/api/info", headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}), 401)
    assert guarded.get("/api/info", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    entered = guarded.get(f"/?token={TOKEN}", follow_redirects=False)  # the printed URL: token → cookie
    assert entered.status_code == 303 and entered.headers["location"] == "/"
    assert "HttpOnly" in entered.headers["set-cookie"] and "SameSite=Strict" in entered.headers["set-cookie"]
    assert guarded.get("/api/info").status_code == 200  # the client now sends the cookie
    guarded.cookies.clear()
    refused(guarded.get("/api/info"), 401)


def test_binding_beyond_loopback_prints_a_url_with_a_new_token(shared_index):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "scenegrep.cli", "serve", "--db", str(shared_index), "--host",
                               "0.0.0.0", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()
        assert url.startswith("http://") and f":{port}/?token=" in url, server.stderr.read() if server.poll() else url
        token = url.split("?token=")[1]
        assert len(token) >= 24
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + SERVER_START_S  # the URL is printed just before uvicorn binds the port
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/info", timeout=2)
                pytest.fail("the server answered a request without its token")
            except urllib.error.HTTPError as exc:
                assert exc.code == 401
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the server did not answer")
                time.sleep(0.1)
        request = urllib.request.Request(f"{base}/api/info", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)


def test_a_bad_token_option_is_one_line(run_cli, shared_index):
    result = run_cli("serve", "--db", shared_index, "--token", "short")
    assert result.exit_code == 2 and "at least 16" in result.stderr


def test_no_index_or_a_taken_port_is_one_line(run_cli, shared_index, tmp_path):
    result = run_cli("serve", "--db", tmp_path / "nothing-here")
    (error,) = [line for line in result.stderr.splitlines() if "error" in line]
    assert result.exit_code == 1 and error.startswith("scenegrep: error: ") and "scenegrep index" in error
    assert "Traceback" not in result.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_cli("serve", "--db", shared_index, "--port", taken.getsockname()[1])
    assert result.exit_code == 1 and "choose another --port" in result.stderr and "Traceback" not in result.stderr


def test_without_a_token_only_loopback_host_names_are_answered(shared_index, api):
    assert api.get("/api/info").status_code == 200
    assert api.get("/api/info", headers={"Host": "localhost:8765"}).status_code == 200
    refused(api.get("/api/info", headers={"Host": "attacker.example:8765"}), 403, "127.0.0.1")


def test_requests_that_act_must_come_from_the_page_itself(api):
    refused(api.post("/api/search", data={"text": "a shape"}, headers={"Origin": "http://attacker.example"}), 403)
    refused(api.post("/api/open", json={"video_id": "0123456789abcdef", "start": 0},
                     headers={"Origin": "http://attacker.example"}), 403)
    refused(api.post("/api/search", data={"text": "a shape"}, headers={"Origin": "null"}), 403)  # a sandboxed frame
    assert api.post("/api/search", data={"text": "a shape"}, headers={"Origin": "http://127.0.0.1"}).status_code == 200


@pytest.mark.parametrize("path", [
    "/api/videos/..%2F..%2F..%2Fetc%2Fpasswd", "/api/videos/%2e%2e", "/api/videos/..",
    "/api/videos/%2Fetc%2Fpasswd", "/api/thumbnails/..%2Fpyproject.toml?t=1", "/static/..%2F..%2Fpyproject.toml",
    "/static/../../pyproject.toml", "/api/videos/" + "a" * 200,
])
def test_path_traversal_finds_nothing(api, path):
    response = api.get(path)
    assert 400 <= response.status_code < 500, response.status_code
    assert b"root:" not in response.content and b"[project]" not in response.content


def test_videos_are_served_by_index_id_only(api):
    path = str(SAMPLE_VIDEOS / "episode_01.mp4")
    refused(api.get("/api/videos/0123456789abcdef"), 404, "no video with this id")
    refused(api.get("/api/thumbnails/0123456789abcdef?t=1"), 404, "no video with this id")
    refused(api.get("/api/videos/" + path.replace("/", "%2F")), 404)
    refused(api.post("/api/open", json={"video_id": "0123456789abcdef", "start": 0}), 404)


def test_an_oversized_upload_is_refused(api):
    from scenegrep.serve.uploads import MAX_REQUEST_BYTES

    big = b"\xff" * (MAX_REQUEST_BYTES + 1)
    refused(api.post("/api/search", files={"image": ("big.jpg", big, "image/jpeg")}), 413, "MB")
    bomb = png(9000, 9000)  # a few KB of PNG that would decode to 243 MB
    assert len(bomb) < MAX_REQUEST_BYTES
    refused(api.post("/api/search", files={"image": ("bomb.png", bomb, "image/png")}), 413, "megapixels")


def test_a_non_image_upload_is_refused(api):
    refused(api.post("/api/search", files={"image": ("still.png", b"#!/bin/sh\necho hi\n", "image/png")}), 415,
            "not a readable picture")
    refused(api.post("/api/search", files={"image": ("x.pdf", b"%PDF-1.4\n%\xe2\xe3\n", "application/pdf")}), 415)
    assert api.post("/api/search", files={"image": ("ok.png", png(), "image/png")}).status_code == 200


@pytest.mark.parametrize("form, status, words", [
    ({}, 400, "empty query"),
    ({"not": "a shape"}, 400, "only --not terms"),
    ({"text": "0:a shape"}, 400, "weight 0"),
    ({"text": "a shape", "k": "0"}, 422, "k"),
    ({"text": "a shape", "k": "many"}, 422, "k"),
    ({"text": "a shape", "from": "yesterday"}, 400, "from"),
    ({"text": "a shape", "from": "20", "to": "10"}, 400, "swap"),
    ({"text": "a shape", "within": "-1"}, 422, "within"),
    ({"text": "a shape", "pad": "nan"}, 422, "pad"),
    ({"text": "a shape", "episode": "no_such_*"}, 400, "no indexed episode"),
])
def test_malformed_queries_are_a_clean_4xx(api, form, status, words):
    refused(api.post("/api/search", data=form), status, words)


def test_malformed_export_and_thumbnail_parameters_are_a_clean_4xx(api):
    refused(api.post("/api/export?format=exe", data={"text": "a shape"}), 422, "format")
    video = api.get("/api/info").json()["per_video"][0]["video_id"]
    refused(api.get(f"/api/thumbnails/{video}?t=-1"), 422, "t")
    refused(api.get(f"/api/thumbnails/{video}?t=inf"), 422, "t")
    refused(api.get(f"/api/thumbnails/{video}?t=99999"), 404, "no frame")
    refused(api.post("/api/open", content=b"{not json", headers={"content-type": "application/json"}), 422)


def test_a_bug_is_a_500_with_a_message_not_a_traceback(shared_index, monkeypatch):
    from scenegrep.serve.engine import Engine

    api = client(shared_index)
    monkeypatch.setattr(Engine, "status", lambda self: 1 / 0)
    body = refused_500 = api.get("/api/info")
    assert refused_500.status_code == 500 and body.json() == {"error": "internal error; the server's log has the details"}
    assert "ZeroDivision" not in refused_500.text


def test_no_shell_anywhere():
    import scenegrep.serve as package

    folder = os.path.dirname(package.__file__)
    for name in os.listdir(folder):
        if name.endswith(".py"):
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            assert "shell=True" not in text and "os.system" not in text and "os.popen" not in text, name


# Found by a hostile review: what a server does with registry entries and files it cannot trust.

@pytest.fixture
def own_index(tmp_path, tiny_model, run_cli):
    """Two sample videos copied and indexed into a folder of this test's own (its registry gets edited)."""
    import shutil

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("episode_02.mp4", "episode_03.mp4"):
        shutil.copy2(SAMPLE_VIDEOS / name, videos / name)
    db = tmp_path / "db"
    assert run_cli("index", videos, "--model", tiny_model, "--db", db).exit_code == 0
    return db, videos


def edit_registry(db, **changes) -> str:
    """Change the first registry entry's fields as an attacker or a damaged disk might; returns its id."""
    from scenegrep.pipeline.index_access import Location, open_index

    with open_index(Location.of(str(db), None), write=True) as opened:
        store = opened.store(opened.indexes[0])
        video_id = store.registry.all()[0].video_id
        store.registry.update(video_id, changes)
    return video_id


def test_an_entry_edited_to_name_another_file_is_refused_as_damaged_not_served(own_index, tmp_path, tiny_model,
                                                                              run_cli):
    db, _ = own_index
    secret = tmp_path / "secret-notes.html"
    secret.write_text("<h1>not a video of this index</h1>")
    video_id = edit_registry(db, path=str(secret))
    api = client(db)
    body = refused(api.get(f"/api/videos/{video_id}"), 503, "damaged")
    refused(api.get(f"/api/videos/{video_id}", headers={"Range": "bytes=0-10"}), 503, "damaged")
    refused(api.get(f"/api/thumbnails/{video_id}?t=1"), 503, "damaged")
    assert "scenegrep doctor" in body["error"]  # … which names it:
    doctor = run_cli("doctor", "--model", tiny_model, "--db", db)
    assert doctor.exit_code != 0 and "1 registry entry does not name its own file" in doctor.stdout + doctor.stderr


def test_a_video_file_replaced_since_indexing_is_refused_not_served(own_index, tmp_path):
    db, videos = own_index
    api = client(db)
    clip = api.post("/api/search", data={"text": "a shape", "k": "1"}).json()["clips"][0]
    video = api.get(clip["video_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in video.headers.get_list("content-security-policy")
    secret = tmp_path / "id_rsa"
    secret.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    os.rename(clip["path"], clip["path"] + ".kept")
    os.symlink(secret, clip["path"])  # the indexed file is now a link to another
    refused(api.get(clip["video_url"]), 409, "changed since it was indexed")


def test_exports_of_entries_whose_stored_paths_are_not_absolute_still_write_safe_files(own_index):
    db, _ = own_index
    edit_registry(db, path="#EXTINF:0,injected")
    api = client(db)
    form = {"text": "a shape", "k": "20"}
    for kind in ("edl", "m3u", "xspf", "html", "csv", "json"):
        assert api.post(f"/api/export?format={kind}", data=form).status_code == 200, kind
    m3u = api.post("/api/export?format=m3u", data=form).text
    assert "#EXTINF:0,injected" not in m3u and "%23EXTINF%3A0%2Cinjected" in m3u


def test_a_thumbnail_far_past_any_video_is_a_404_even_without_a_duration(own_index):
    db, _ = own_index
    video_id = edit_registry(db, duration=0)
    api = client(db)
    for t in ("1e20", "1e308"):
        refused(api.get(f"/api/thumbnails/{video_id}?t={t}"), 404, "no frame")


def test_a_broken_png_is_an_unreadable_picture_not_a_server_error(api):
    import base64

    broken = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAACAAAAAYCAIAAAAUMWhjAAAAEElEQVR4nGPkOiHHQEvAr1PTRy0YtWDUglEL"
                              "Ri0YUGDUglELqAYAaGsBIK1C6tYAAAAASUVORK5CYII=")  # PIL raises SyntaxError
    refused(api.post("/api/search", files={"image": ("broken.png", broken, "image/png")}), 415, "not a readable picture")


def test_text_terms_are_bounded_in_number_and_length(api):
    refused(api.post("/api/search", data={"text": "a" * 1001}), 400, "at most")
    refused(api.post("/api/search", data={"text": ["a shape"] * 33}), 400, "at most")
    assert api.post("/api/search", data={"text": "a" * 1000, "k": "1"}).status_code == 200
