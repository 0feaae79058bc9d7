"""`scenegrep open N`: the exact player commands, run as argument lists, and clear failures."""

from __future__ import annotations

import json
import os
import shlex
import stat
import sys

import pytest


@pytest.fixture(scope="module")
def first_searches() -> dict:
    """Per backend: (the clips, the saved results file) of the one search `searched` runs there."""
    return {}


@pytest.fixture
def searched(shared_on, run_cli, first_searches):
    """Search the shared index (embedded, then on a server); returns (its --db or --chroma-url
    arguments, the clips of that search). The search runs once per backend; each later test
    gets the results file back as that search wrote it (another test may have edited it, or
    another module searched since)."""
    if shared_on.name not in first_searches:
        result = run_cli("search", "a shape", *shared_on.args, "--json", "-k", "3", "--keep-duplicates", "--gap", "0")
        assert result.exit_code == 0, result.stderr
        with open(saved_results(shared_on.args), "rb") as handle:
            first_searches[shared_on.name] = (result.stdout, handle.read())
    clips, saved = first_searches[shared_on.name]
    with open(saved_results(shared_on.args), "wb") as handle:
        handle.write(saved)
    return shared_on.args, json.loads(clips)


@pytest.mark.parametrize("player, expected", [
    ("mpv", ["mpv", "--start={start}", "--", "{path}"]),
    ("vlc", ["vlc", "--start-time={start}", "--", "{path}"]),
    ("ffplay", ["ffplay", "-ss", "{start}", "--", "{path}"]),
    ("system", ["open" if sys.platform == "darwin" else "xdg-open", "{path}"]),
])
def test_print_shows_the_exact_command_for_each_player(searched, run_cli, player, expected):
    where, clips = searched
    clip = clips[1]
    result = run_cli("open", "2", "--player", player, "--print", *where)
    assert result.exit_code == 0, result.stderr
    want = [part.format(start=f"{clip['start']:.3f}", path=clip["path"]) for part in expected]
    assert shlex.split(result.stdout) == want


@pytest.mark.parametrize("player, extra", [
    ("mpv", ["--end={end}"]), ("vlc", ["--stop-time={end}"]), ("ffplay", ["-t", "{length}"]),
])
def test_clip_flag_stops_at_the_clip_end(searched, run_cli, player, extra):
    where, clips = searched
    clip = clips[0]
    words = shlex.split(run_cli("open", "1", "--player", player, "--clip", "--print", *where).stdout)
    for part in extra:
        assert part.format(end=f"{clip['end']:.3f}", length=f"{clip['end'] - clip['start']:.3f}") in words


def fake_player(folder, name):
    """An executable that records its arguments, one per line (a stand-in player: nothing to play here)."""
    folder.mkdir(exist_ok=True)
    script = folder / name
    log = folder / f"{name}.args"
    script.write_text(f"#!{sys.executable}\nimport sys\nopen({str(log)!r}, 'w').write('\\n'.join(sys.argv[1:]))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def test_auto_runs_the_first_installed_player_without_a_shell(searched, run_cli, tmp_path, monkeypatch):
    where, clips = searched
    bin_dir = tmp_path / "bin"
    log = fake_player(bin_dir, "vlc")
    fake_player(bin_dir, "ffplay")
    monkeypatch.setenv("PATH", str(bin_dir))
    result = run_cli("open", "1", *where)
    assert result.exit_code == 0, result.stderr
    # One argument per list item, spaces and all: no shell splitting happened.
    assert log.read_text().split("\n") == [f"--start-time={clips[0]['start']:.3f}", "--", clips[0]["path"]]
    assert "opening #1" in result.stderr


def test_no_player_found_says_what_to_install_and_run(searched, run_cli, tmp_path, monkeypatch):
    where, clips = searched
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_cli("open", "1", *where)
    assert result.exit_code == 1
    assert "no video player found" in result.stderr and "apt install mpv" in result.stderr
    assert shlex.join(["mpv", f"--start={clips[0]['start']:.3f}", "--", clips[0]["path"]]) in result.stderr
    assert "Traceback" not in result.stderr
    named = run_cli("open", "1", "--player", "mpv", *where)
    assert named.exit_code == 1 and "mpv is not installed" in named.stderr


def test_open_mistakes_are_one_line_errors(searched, run_cli, tmp_path):
    where, clips = searched
    result = run_cli("open", "9", *where)
    assert result.exit_code == 1 and f"returned {len(clips)} clip(s); use 1 to {len(clips)}" in result.stderr
    never = ["--db", tmp_path / "never-searched"] if where[0] == "--db" else ["--chroma-url", f"{where[1]}x"]
    result = run_cli("open", "1", *never)
    assert result.exit_code == 1 and "run `scenegrep search" in result.stderr
    assert run_cli("open", "0", *where).exit_code == 2


def test_results_file_sits_in_the_index_and_per_user_for_a_server(tmp_path, monkeypatch):
    from scenegrep.pipeline.present.results_file import results_path

    assert results_path(db=str(tmp_path)) == os.path.join(str(tmp_path), "last-search.json")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    a, b = results_path(url="http://a:8000"), results_path(url="http://b:8000")
    assert a != b and os.path.dirname(a) == str(tmp_path / "state" / "scenegrep")


def test_print_needs_no_installed_player(searched, run_cli, tmp_path, monkeypatch):
    where, clips = searched
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = run_cli("open", "1", "--print", *where)
    assert result.exit_code == 0, result.stderr
    assert shlex.split(result.stdout) == ["mpv", f"--start={clips[0]['start']:.3f}", "--", clips[0]["path"]]


def test_print_shows_control_characters_in_a_path_as_escapes(searched, run_cli):
    where, _ = searched
    rewrite_results(where, lambda saved: saved["clips"][0].update(path="/videos/\x1b[31mred\n.mp4"))
    result = run_cli("open", "1", "--print", "--player", "mpv", *where)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stdout and result.stdout.count("\n") == 1
    assert "/videos/\\x1b[31mred\\n.mp4" in result.stdout


def saved_results(where) -> str:
    from scenegrep.pipeline.present.results_file import results_path

    return results_path(db=where[1]) if where[0] == "--db" else results_path(url=where[1])


def rewrite_results(where, change):
    """Edit the saved results of the last search with `change(saved)` (a user or another tool editing the file)."""
    path = saved_results(where)
    with open(path, encoding="utf-8") as handle:
        saved = json.load(handle)
    change(saved)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(saved, handle)


def test_a_stored_path_never_becomes_a_player_option(searched, run_cli, tmp_path, monkeypatch):
    where, clips = searched
    bin_dir = tmp_path / "bin"
    log = fake_player(bin_dir, "mpv")
    monkeypatch.setenv("PATH", str(bin_dir))
    # An absolute path that looks like an option after `--`: a file to the player.
    rewrite_results(where, lambda saved: saved["clips"][0].update(path="/--script=evil.lua"))
    assert run_cli("open", "1", *where).exit_code == 0
    assert log.read_text().split("\n")[-2:] == ["--", "/--script=evil.lua"]
    # A relative one is refused before any player runs, for every player.
    log.unlink()
    rewrite_results(where, lambda saved: saved["clips"][0].update(path="--script=evil.lua"))
    for player in ("auto", "mpv", "system"):
        result = run_cli("open", "1", "--player", player, *where)
        assert result.exit_code == 1, player
        assert "must be absolute" in result.stderr and "Traceback" not in result.stderr
    assert not log.exists()
    assert run_cli("open", "1", "--print", *where).exit_code == 1


@pytest.mark.parametrize("change, says", [
    (lambda saved: saved.update(clips={"1": {}}), "'clips' is not a list"),
    (lambda saved: saved.update(query=7), "'query' is not text"),
    (lambda saved: saved["clips"].__setitem__(0, "x"), "result 1 is not a JSON object"),
    (lambda saved: saved["clips"][0].update(start="12"), "no time 'start'"),
    (lambda saved: saved["clips"][0].pop("path"), "no text 'path'"),
    (lambda saved: saved["clips"][0].update(path=["/a"]), "no text 'path'"),
    (lambda saved: saved["clips"][0].update(end=None), "no time 'end'"),
    (lambda saved: (saved.clear(), saved.update(clips=[[1]])), "result 1 is not a JSON object"),
])
def test_a_damaged_results_file_is_one_line(searched, run_cli, change, says):
    where, _ = searched
    rewrite_results(where, change)
    result = run_cli("open", "1", "--clip", "--print", *where)
    assert result.exit_code == 1
    assert "are damaged (" in result.stderr and says in result.stderr and "; search again" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_results_file_that_is_a_list_is_one_line(searched, run_cli):
    where, _ = searched
    with open(saved_results(where), "w", encoding="utf-8") as handle:
        json.dump([1, 2], handle)
    result = run_cli("open", "1", *where)
    assert result.exit_code == 1 and "damaged (not a JSON object)" in result.stderr


def test_open_finds_a_server_search_however_the_url_is_spelled(shared_indexes, run_cli):
    url = shared_indexes("server").url
    assert url.startswith("http://")
    result = run_cli("search", "a shape", "--chroma-url", url, "--json", "-k", "2")
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout)[0]
    for spelling in (url.removeprefix("http://"), url + "/", "HTTP://" + url.removeprefix("http://")):
        opened = run_cli("open", "1", "--print", "--player", "mpv", "--chroma-url", spelling)
        assert opened.exit_code == 0, (spelling, opened.stderr)
        assert shlex.split(opened.stdout)[-1] == first["path"]
