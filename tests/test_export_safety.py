"""Exports of videos with odd frame rates and hostile names: every file stays readable by its own
parser, one failing export leaves the others, and no export lands on the index or a video."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from conftest import SAMPLE_VIDEOS, write_video

from scenegrep.pipeline.present.names import visible

FORMATS = ("csv", "json", "edl", "m3u", "xspf", "html")
ODD_NAMES = ("new\nline", "cr\rname", "tab\there", "\x1b[31mred\x1b[0m", "=cmd|calc", "+plus", "-minus", "@at",
             "épisode_ü", "line\u2028sep")
"""Episode names a file system allows and a careless export or terminal does not survive."""
RATES = (10, 12, 15, 120)
EDITOR_RATES = {Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30), Fraction(50),
                Fraction(60000, 1001), Fraction(60)}
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@pytest.fixture(scope="module")
def odd_index(tmp_path_factory, tiny_model):
    """Short videos at 10, 12, 15, 120 fps, one of variable frame rate, and 25 fps ones with odd names, indexed."""
    from click.testing import CliRunner

    from scenegrep.cli.main import cli

    root = tmp_path_factory.mktemp("odd")
    videos = root / "videos"
    videos.mkdir()
    for index, name in enumerate(ODD_NAMES):  # different content: no two are folded into one clip
        write_video(videos / f"{name}.mp4", range(index, index + 50), rate=25)
    for rate in RATES:
        write_video(videos / f"rate_{rate}.mp4", range(rate * 3), rate=rate, index_bar=True)
    write_video(videos / "vfr.mp4", [0, 4, 10, 33, 70, 90, 130, 140, 190, 200, 260, 300], time_base=Fraction(1, 100),
                index_bar=True)
    db = root / "db"
    result = CliRunner().invoke(cli, ["index", str(videos), "--db", str(db), "--model", tiny_model],
                                prog_name="scenegrep", catch_exceptions=False, color=True)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stderr
    return db, videos


def search(run_cli, db, *args):
    return run_cli("search", "x", "--db", db, "-k", "40", "--per-episode", "1", "--keep-duplicates", *args)


@pytest.mark.parametrize("episode, timecode_rate", [("rate_10", 30), ("rate_12", 24), ("rate_15", 30),
                                                    ("rate_120", 60), ("vfr", None)])
def test_an_edl_at_a_rate_editors_take_for_any_video(odd_index, run_cli, tmp_path, episode, timecode_rate):
    import opentimelineio as otio

    db, _ = odd_index
    result = run_cli("search", "x", "--db", db, "-k", "3", "--keep-duplicates", "--gap", "0", "--episode", episode,
                     "--export", tmp_path / "cut.edl", "--export", tmp_path / "cut.csv", "--json")
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr and (tmp_path / "cut.csv").stat().st_size > 0
    clips = json.loads(result.stdout)
    assert len(clips) >= 2 and [p.name for p in tmp_path.glob("*.edl")] == ["cut.edl"]
    text = (tmp_path / "cut.edl").read_text(encoding="utf-8")
    notes = re.findall(r"^\* SOURCE FRAME RATE (\S+) FPS, TIMECODE AT (\S+) FPS", text, re.M)
    assert len(notes) == len(clips)  # every converted event says so
    source_label, timecode_label = notes[0]
    rate = min(EDITOR_RATES, key=lambda r: abs(float(r) - float(timecode_label)))
    assert rate in EDITOR_RATES and (timecode_rate is None or rate == timecode_rate)
    assert float(source_label) == pytest.approx(float(Fraction(clips[0]["fps"])), abs=1e-3)
    timeline = otio.adapters.read_from_file(str(tmp_path / "cut.edl"), "cmx_3600", rate=float(rate))
    events = list(timeline.tracks[0].find_clips())
    assert len(events) == len(clips)
    frame = 1 / float(rate)
    record = 0.0
    for event, clip in zip(events, clips):
        assert event.name == f"{episode}.mp4"
        assert unquote(urlparse(event.media_reference.target_url).path) == clip["path"]
        source = event.source_range
        # To the nearest frame; the JSON times are rounded to the microsecond, so a snapped edge half a
        # frame from two EDL frames (frame 37 of 120 fps at 60 fps) may read a hair further.
        assert source.start_time.to_seconds() == pytest.approx(clip["start"], abs=frame / 2 + 1e-6)
        assert source.end_time_exclusive().to_seconds() == pytest.approx(clip["end"], abs=frame / 2 + 1e-6)
        placed = timeline.tracks[0].range_of_child(event)
        assert placed.start_time.to_seconds() == pytest.approx(record, abs=1e-9)  # end to end, whole frames
        record += source.duration.to_seconds()
    assert f"{len(clips)} clip(s)" in result.stderr and "timecode" in result.stderr  # the conversion is said once


@pytest.fixture(scope="module")
def odd_exports(odd_index, tmp_path_factory):
    """One search over the odd names exported to every format, plus --json and the table."""
    from click.testing import CliRunner

    from scenegrep.cli.main import cli

    db, _ = odd_index
    out = tmp_path_factory.mktemp("odd_exports")
    args = ["search", "x", "--db", str(db), "-k", "40", "--per-episode", "1", "--keep-duplicates",
            "--episode", "[!rv]*", "--episode", "vfr"]
    for fmt in FORMATS:
        args += ["--export", str(out / f"odd.{fmt}")]
    runner = CliRunner()
    result = runner.invoke(cli, [*args, "--json"], prog_name="scenegrep", catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    table = runner.invoke(cli, args[:-2 * len(FORMATS)], prog_name="scenegrep", catch_exceptions=False)
    assert table.exit_code == 0, table.stderr
    clips = json.loads(result.stdout)
    assert {c["episode"] for c in clips} == {*ODD_NAMES, "vfr"}
    return out, clips, result.stderr, table.stdout


def test_json_keeps_odd_names_exactly(odd_exports):
    out, clips, _, _ = odd_exports
    saved = json.loads((out / "odd.json").read_text(encoding="utf-8"))["clips"]
    assert [(r["episode"], r["path"]) for r in saved] == [(c["episode"], c["path"]) for c in clips]


def test_csv_keeps_one_row_per_clip_and_neutralises_formulas(odd_exports):
    out, clips, _, _ = odd_exports
    with open(out / "odd.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(clips)
    for row, clip in zip(rows, clips):
        assert row["path"] == clip["path"]  # quoting keeps newlines; a path starts with /
        episode = clip["episode"]
        # OWASP: a text cell starting with = + - @ (or tab, CR) is prefixed with ' so no spreadsheet runs it
        assert row["episode"] == ("'" + episode if episode[0] in "=+-@\t\r" else episode)
        assert float(row["score"]) == clip["score"]  # numbers stay numbers, negative ones too
    raw = (out / "odd.csv").read_text(encoding="utf-8")
    assert ",=cmd" not in raw and ",+plus" not in raw and ",-minus" not in raw and ",@at" not in raw


def test_csv_negative_scores_stay_numbers():
    from scenegrep.pipeline.present.tabular import csv_text

    text = csv_text([{"rank": 1, "episode": "-x", "score": -0.25, "start": 0.0, "fps": "25"}])
    row = next(csv.DictReader(text.splitlines()))
    assert row["score"] == "-0.25" and row["episode"] == "'-x"


def test_m3u_has_one_entry_per_clip_whatever_the_names(odd_exports):
    out, clips, _, _ = odd_exports
    text = (out / "odd.m3u").read_text(encoding="utf-8")
    assert not CONTROL.search(text.replace("\n", ""))
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U" and len(lines) == 1 + 4 * len(clips)
    entries = [line for line in lines[1:] if not line.startswith("#")]
    assert [e for e in lines[1:] if e.startswith("#EXTVLCOPT:")] == [
        opt for c in clips for opt in (f"#EXTVLCOPT:start-time={c['start']:.3f}", f"#EXTVLCOPT:stop-time={c['end']:.3f}")]
    for entry, clip in zip(entries, clips, strict=True):
        path = unquote(urlparse(entry).path) if entry.startswith("file://") else entry
        assert path == clip["path"]


def test_edl_names_keep_their_text_and_every_event_reads_back(odd_exports):
    import opentimelineio as otio

    out, clips, _, _ = odd_exports
    odd = [clip for clip in clips if clip["episode"] != "vfr"]  # 25 fps; the vfr video is timed at another rate
    path = out / ("odd.edl" if clips[0]["episode"] != "vfr" else "odd_25fps.edl")
    other = "odd_24fps.edl" if path.name == "odd.edl" else "odd_25fps.edl"
    assert sorted(p.name for p in out.glob("*.edl")) == ["odd.edl", other]
    text = path.read_text(encoding="utf-8")
    assert not CONTROL.search(text.replace("\n", "")) and "?" not in text
    assert "épisode_ü.mp4" in text  # UTF-8, not "?"
    timeline = otio.adapters.read_from_file(str(path), "cmx_3600", rate=25)
    events = list(timeline.tracks[0].find_clips())
    assert [e.name for e in events] == [visible(os.path.basename(c["path"])) for c in odd]
    assert [unquote(urlparse(e.media_reference.target_url).path) for e in events] == [c["path"] for c in odd]
    for event, clip in zip(events, odd):
        assert event.source_range.start_time.to_frames() == round(clip["start"] * 25)


def test_xspf_and_html_parse_and_name_every_clip(odd_exports):
    out, clips, _, _ = odd_exports
    ns = {"x": "http://xspf.org/ns/0/"}
    tracks = ET.parse(out / "odd.xspf").getroot().findall("x:trackList/x:track", ns)
    assert len(tracks) == len(clips)
    for track, clip in zip(tracks, clips):
        assert unquote(urlparse(track.find("x:location", ns).text).path) == clip["path"]
        assert visible(clip["episode"]) in track.find("x:title", ns).text

    class Cards(HTMLParser):
        def __init__(self):
            super().__init__()
            self.cards, self.text, self.links = 0, [], []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.cards += tag == "div" and attrs.get("class") == "clip"
            if tag == "a":
                self.links.append(attrs["href"])

        def handle_data(self, data):
            self.text.append(data)

    page = (out / "odd.html").read_text(encoding="utf-8")
    assert not CONTROL.search(page.replace("\n", ""))
    sheet = Cards()
    sheet.feed(page)
    assert sheet.cards == len(clips)
    text = "".join(sheet.text)
    for clip in clips:
        assert visible(clip["episode"]) in text
        assert Path(clip["path"]).as_uri() + f"#t={clip['start']:.3f},{clip['end']:.3f}" in sheet.links


def test_the_terminal_sees_no_escape_sequences_or_extra_lines(odd_exports):
    _, clips, stderr, table = odd_exports
    assert "\x1b" not in table and "\r" not in table and "\u2028" not in table
    assert len(table.splitlines()) == 1 + len(clips)
    assert "\\x1b[31mred\\x1b[0m" in table and "new\\nline" in table and "épisode_ü" in table
    assert "\x1b" not in stderr


def test_info_shows_names_without_escape_sequences(odd_index, run_cli):
    db, _ = odd_index
    info = run_cli("info", "--db", db)
    assert info.exit_code == 0, info.stderr
    assert "\x1b" not in info.stdout and "\r" not in info.stdout and "\\x1b[31mred" in info.stdout


def test_index_names_a_copied_videos_source_without_escape_sequences(run_cli, tmp_path, tiny_model):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "\x1b[31mred.mp4", range(50), rate=25)
    (videos / "same.mp4").write_bytes((videos / "\x1b[31mred.mp4").read_bytes())
    result = run_cli("index", videos, "--db", tmp_path / "db", "--model", tiny_model)
    assert result.exit_code == 0, result.stderr
    assert "\x1b" not in result.stderr and "from " + str(videos / "\\x1b[31mred.mp4") in result.stderr


def test_the_visible_form_of_a_name():
    assert visible("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert visible("\x1b[31m\x7f\x85") == "\\x1b[31m\\x7f\\x85"
    assert visible("é\u2028ü") == "é\\u2028ü"
    assert visible(os.fsdecode(b"bad\xff")) == "bad\\xff"
    assert visible("plain name (1).mp4") == "plain name (1).mp4"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_export_never_lands_on_the_index_or_a_video(odd_index, run_cli, tmp_path):
    db, videos = odd_index
    store = db / "chroma.sqlite3"
    video = videos / "rate_10.mp4"
    link = tmp_path / "link.csv"
    link.symlink_to(video)
    before = {p: _digest(p) for p in (store, video)}
    result = search(run_cli, db, "--export", store, "--format", "csv", "--export", video, "--format", "m3u",
                    "--export", link, "--export", db / "new.csv", "--export", tmp_path / "fine.csv",
                    "--export", db / "sheet.html")
    assert result.exit_code == 1, result.stderr
    assert {p: _digest(p) for p in before} == before and link.is_symlink()
    assert not (db / "new.csv").exists() and not (db / "sheet_thumbs").exists() and not (db / "sheet.html").exists()
    errors = [line for line in result.stderr.splitlines() if line.startswith("scenegrep: error:")]
    assert len(errors) == 5 and "Traceback" not in result.stderr
    assert sum("index folder" in line for line in errors) == 3 and sum("indexed video" in line for line in errors) == 2
    assert (tmp_path / "fine.csv").read_text(encoding="utf-8").startswith("rank,")
    assert result.stdout.strip()  # the results are still printed


def test_an_indexed_video_that_is_a_link_is_protected_under_both_names(tiny_model, run_cli, tmp_path):
    """The index keeps the link's path; the file it points to has another name. An export
    named like either must leave the video whole."""
    store, videos = tmp_path / "store", tmp_path / "videos"
    store.mkdir()
    videos.mkdir()
    shutil.copy(SAMPLE_VIDEOS / "episode_01.mp4", store / "blob1")
    (videos / "ep1.mp4").symlink_to(store / "blob1")
    db = tmp_path / "db"
    assert run_cli("index", videos, "--db", db, "--model", tiny_model).exit_code == 0
    before = _digest(store / "blob1")
    for target in (videos / "ep1.mp4", store / "blob1"):
        result = run_cli("search", "x", "--db", db, "--export", target, "--format", "m3u")
        assert result.exit_code == 1 and "indexed video" in result.stderr, result.stderr
    assert _digest(store / "blob1") == before


def test_rewriting_an_earlier_export_is_allowed(odd_index, run_cli, tmp_path):
    db, _ = odd_index
    (tmp_path / "again.csv").write_text("old")
    os.chmod(tmp_path / "again.csv", 0o640)
    result = search(run_cli, db, "--export", tmp_path / "again.csv")
    assert result.exit_code == 0 and (tmp_path / "again.csv").read_text(encoding="utf-8").startswith("rank,")
    assert (tmp_path / "again.csv").stat().st_mode & 0o777 == 0o640  # the file's own permissions kept
    (tmp_path / "link.m3u").symlink_to(tmp_path / "again.m3u")  # a link to an export: the export is rewritten
    result = search(run_cli, db, "--export", tmp_path / "link.m3u")
    assert result.exit_code == 0 and (tmp_path / "link.m3u").is_symlink()
    assert (tmp_path / "again.m3u").read_text(encoding="utf-8").startswith("#EXTM3U")


def test_one_failing_export_leaves_the_others_and_no_half_files(odd_index, run_cli, tmp_path):
    db, _ = odd_index
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    bad = os.fsdecode(str(tmp_path).encode() + b"/bad\xff.csv")
    result = search(run_cli, db, "--export", tmp_path / "a.edl", "--export", bad, "--export", fifo,
                    "--export", tmp_path / "b.json", "--export", tmp_path / "b.m3u")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("scenegrep: error:")]
    assert len(errors) == 2 and "UTF-8" in errors[0] and "\\xff" in errors[0] and "not a regular file" in errors[1]
    names = sorted(os.listdir(tmp_path))
    assert names == sorted(["a.edl", "b.json", "b.m3u", "b_thumbs", "pipe.csv", *[n for n in names if n.startswith("a_")
                                                                                   and n.endswith("fps.edl")]])
    assert all((tmp_path / n).stat().st_size > 0 for n in names if n.endswith((".edl", ".json", ".m3u")))
    assert result.stdout.strip()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from scenegrep.pipeline.present.atomic import write_atomically

    target = tmp_path / "results.csv"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomically(str(target), "x" * 100_000 + "\udcff")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["results.csv"]
    write_atomically(str(target), "new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["results.csv"]


def test_the_timecode_rate_of_a_video():
    from scenegrep.pipeline.present.edl import timecode_rate

    assert {r: timecode_rate(r) for r in EDITOR_RATES} == {r: r for r in EDITOR_RATES}
    assert [timecode_rate(Fraction(r)) for r in (10, 12, 15, 120, 48, 100, 5)] == [30, 24, 30, 60, 24, 50, 25]
    assert timecode_rate(Fraction(15000, 1001)) == Fraction(30000, 1001)
    assert timecode_rate(Fraction(27)) in (25, 30) and timecode_rate(Fraction(1234, 100)) in EDITOR_RATES
