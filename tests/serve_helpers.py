"""Shared by the `scenegrep serve` tests: indexes built with the real CLI, and the app over them."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import SAMPLE_VIDEOS, write_video

MINI_CLIP = SAMPLE_VIDEOS / "mini_clip"

HOSTILE_EPISODE = '<img src=x onerror="window.pwned=1">\'q'
"""An episode name that would run script if a page inserted it as HTML."""

UNPLAYABLE_EPISODE = "mpeg4_in_avi"
"""A video browsers cannot play (MPEG-4 Part 2 in AVI) but PyAV can index."""

_built: dict[str, Path] = {}


def mini_index(tmp_path_factory) -> Path:
    """The annotated sample videos, plus a hostile-named video and an unplayable
    one, indexed once per session with the miniature CLIP (scores mean something)."""
    if "mini" not in _built:
        from click.testing import CliRunner

        from scenegrep.cli.main import cli

        root = tmp_path_factory.mktemp("serve_mini")
        videos = root / "videos"
        videos.mkdir()
        for video in SAMPLE_VIDEOS.glob("*.mp4"):
            shutil.copy2(video, videos / video.name)
        write_video(videos / f"{HOSTILE_EPISODE}.mp4", list(range(12)), rate=2, size=(64, 48))
        write_video(videos / f"{UNPLAYABLE_EPISODE}.avi", list(range(12)), rate=2, size=(64, 48), codec="mpeg4")
        db = root / "db"
        result = CliRunner().invoke(cli, ["index", str(videos), "--model", str(MINI_CLIP), "--db", str(db)])
        assert result.exit_code == 0, result.stderr
        _built["mini"] = db
    return _built["mini"]


def client(db, *, token=None, allow_open=True, base_url="http://127.0.0.1"):
    """A test client of the app over the index at `db` (the model loaded once, as `serve` does)."""
    from fastapi.testclient import TestClient

    from scenegrep.pipeline.index_access import Location
    from scenegrep.serve.app import create_app
    from scenegrep.serve.engine import Engine

    engine = Engine(Location.of(str(db), None))
    engine.warm_up()
    return TestClient(create_app(engine, token=token, allow_open=allow_open), base_url=base_url,
                      raise_server_exceptions=False)
