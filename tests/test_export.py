"""Every export read back by an independent parser: csv, json, OpenTimelineIO's CMX 3600 reader,
M3U lines, XSPF via xml.etree, HTML via html.parser."""

from __future__ import annotations

import csv
import json
import os
import xml.etree.ElementTree as ET
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS
from PIL import Image
from test_cli import frame_at

from scenegrep.pipeline.timecode import Timecode

FORMATS = ("csv", "json", "edl", "m3u", "xspf", "html")


@pytest.fixture(scope="module")
def exported(shared_index, tmp_path_factory, tiny_model):
    """One search exported to every format, plus its --json output."""
    from click.testing import CliRunner

    from scenegrep.cli.main import cli

    out = tmp_path_factory.mktemp("exports")
    args = ["search", "a shape", "--db", str(shared_index), "--json", "-k", "6", "--keep-duplicates", "--gap", "0",
            "--per-episode", "2"]
    for fmt in FORMATS:
        args += ["--export", str(out / f"hits.{fmt}")]
    result = CliRunner().invoke(cli, args, prog_name="scenegrep", catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    clips = json.loads(result.stdout)
    assert len(clips) == 6 and len({c["episode"] for c in clips}) == 3
    return out, clips, result.stderr


def test_csv_has_one_row_per_clip_with_both_timecodes(exported):
    out, clips, _ = exported
    with open(out / "hits.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["rank"]) for r in rows] == [c["rank"] for c in clips]
    for row, clip in zip(rows, clips):
        assert row["episode"] == clip["episode"] and row["path"] == clip["path"]
        assert float(row["start"]) == clip["start"] and float(row["end"]) == clip["end"]
        assert Timecode.parse(row["start_tc"]).seconds == pytest.approx(clip["start"], abs=5e-4)
        rate = Fraction(row["fps"])
        assert Timecode.from_smpte(row["start_smpte"], rate).frames(rate) == Timecode(clip["start"]).frames(rate)
        assert float(row["score"]) == clip["score"]
        # relative to the export, so the CSV and its folder can move together
        assert row["thumbnail"].startswith("hits_thumbs/") and (out / row["thumbnail"]).is_file()


def test_json_export_matches_search_json_and_adds_thumbnails(exported):
    out, clips, _ = exported
    saved = json.loads((out / "hits.json").read_text(encoding="utf-8"))
    assert saved["query"] == "a shape"
    for record, clip in zip(saved["clips"], clips, strict=True):
        assert {k: v for k, v in record.items() if k != "thumbnail"} == {k: v for k, v in clip.items() if k != "thumbnail"}
        assert record["thumbnail"].startswith("hits_thumbs/") and (out / record["thumbnail"]).is_file()
    rates = {c["episode"]: c["fps"] for c in clips}
    assert rates == {"episode_01": "24", "episode_02": "30000/1001", "episode_03": "25"}
    ntsc = next(c for c in clips if c["episode"] == "episode_02")
    assert ";" in ntsc["start_smpte"] and ":" in next(c for c in clips if c["episode"] == "episode_01")["start_smpte"]


def test_thumbnails_show_the_frame_at_the_best_hit(exported):
    out, clips, _ = exported
    saved = json.loads((out / "hits.json").read_text(encoding="utf-8"))["clips"]
    for record in saved:
        thumb = np.asarray(Image.open(out / record["thumbnail"]).convert("RGB"), np.float32)
        truth = np.asarray(frame_at(record["path"], record["best_t"]).convert("RGB"), np.float32)
        assert thumb.shape == truth.shape  # 320×180: already at most THUMB_WIDTH wide
        assert np.abs(thumb - truth).mean() < 8  # the same picture, JPEG aside


def test_edl_imports_into_opentimelineio_with_the_right_in_and_out_points(exported):
    import opentimelineio as otio

    out, clips, stderr = exported
    by_rate: dict[str, list[dict]] = {}
    for clip in clips:
        by_rate.setdefault(clip["fps"], []).append(clip)
    # One EDL per frame rate: the best clip's rate in the file asked for, the others beside it.
    assert set(by_rate) == {"24", "30000/1001", "25"}
    beside = {"24": "hits_24fps.edl", "30000/1001": "hits_29.97fps.edl", "25": "hits_25fps.edl"}
    files = {fps: out / ("hits.edl" if fps == clips[0]["fps"] else beside[fps]) for fps in by_rate}
    assert sorted(p.name for p in out.glob("*.edl")) == sorted(p.name for p in files.values())
    assert "3 timecode rates" in stderr
    for fps, path in files.items():
        rate = Fraction(fps)
        timeline = otio.adapters.read_from_file(str(path), "cmx_3600", rate=float(rate))
        events = list(timeline.tracks[0].find_clips())
        assert len(events) == len(by_rate[fps])
        record = 0
        for event, clip in zip(events, by_rate[fps]):
            source = event.source_range
            assert source.start_time.to_frames() == Timecode(clip["start"]).frames(rate)
            assert source.end_time_exclusive().to_frames() == Timecode(clip["end"]).frames(rate)
            assert otio.opentime.to_timecode(source.start_time, float(rate)) == clip["start_smpte"]
            assert unquote(urlparse(event.media_reference.target_url).path) == clip["path"]
            assert timeline.tracks[0].range_of_child(event).start_time.to_frames() == record  # end to end
            record += source.duration.to_frames()
        text = path.read_text()
        event_lines = [line.split() for line in text.splitlines() if line[:3].isdigit()]
        assert [line[1] for line in event_lines] == ["AX"] * len(events)  # file-based media: reel AX
        assert text.count("* FROM CLIP NAME:") == len(events)


def test_m3u_entries_carry_vlc_start_and_stop(exported):
    out, clips, _ = exported
    lines = (out / "hits.m3u").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#EXTM3U"
    entries, options = [], {}
    for line in lines[1:]:
        if line.startswith("#EXTVLCOPT:"):
            key, value = line[len("#EXTVLCOPT:"):].split("=", 1)
            options[key] = float(value)
        elif line and not line.startswith("#"):
            entries.append((line, options))
            options = {}
    assert [(path, opts["start-time"], opts["stop-time"]) for path, opts in entries] == [
        (c["path"], pytest.approx(c["start"], abs=5e-4), pytest.approx(c["end"], abs=5e-4)) for c in clips
    ]


def test_xspf_is_valid_xml_with_file_locations_and_vlc_options(exported):
    out, clips, _ = exported
    ns = {"x": "http://xspf.org/ns/0/", "vlc": "http://www.videolan.org/vlc/playlist/0"}
    root = ET.parse(out / "hits.xspf").getroot()
    tracks = root.findall("x:trackList/x:track", ns)
    assert len(tracks) == len(clips)
    for track, clip in zip(tracks, clips):
        location = track.find("x:location", ns).text
        assert location.startswith("file://") and unquote(urlparse(location).path) == clip["path"]
        opts = dict(o.text.split("=") for o in track.findall("x:extension/vlc:option", ns))
        assert float(opts["start-time"]) == pytest.approx(clip["start"], abs=5e-4)
        assert float(opts["stop-time"]) == pytest.approx(clip["end"], abs=5e-4)
        assert int(track.find("x:duration", ns).text) == round((clip["end"] - clip["start"]) * 1000)


class SheetParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])

    def handle_data(self, data):
        self.text.append(data)


def test_html_sheet_links_thumbnails_timecodes_and_the_video_at_the_clip(exported):
    out, clips, _ = exported
    parser = SheetParser()
    parser.feed((out / "hits.html").read_text(encoding="utf-8"))
    assert len(parser.images) == len(clips)
    for src in parser.images:
        assert (out / unquote(src)).is_file() and not os.path.isabs(unquote(src))
    text = " ".join(parser.text)
    for clip in clips:
        assert clip["start_tc"] in text and clip["start_smpte"] in text and f"{clip['score']:.3f}" in text
        link = f"{Path(clip['path']).as_uri()}#t={clip['start']:.3f},{clip['end']:.3f}"
        assert link in parser.links


def test_format_from_extension_or_flag_and_bad_names(shared_index, run_cli, tmp_path):
    result = run_cli("search", "x", "--db", shared_index, "-k", "1", "--export", tmp_path / "list.txt", "--format", "m3u")
    assert result.exit_code == 0 and (tmp_path / "list.txt").read_text().startswith("#EXTM3U")
    result = run_cli("search", "x", "--db", shared_index, "--export", tmp_path / "list.txt")
    assert result.exit_code == 1 and "cannot tell the export format" in result.stderr and "--format" in result.stderr
    result = run_cli("search", "x", "--db", shared_index, "--export", tmp_path / "missing" / "a.csv")
    assert result.exit_code == 1 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    # --format serves names that do not say; a name that says its format keeps it.
    result = run_cli("search", "x", "--db", shared_index, "-k", "1", "--export", tmp_path / "b.csv",
                     "--export", tmp_path / "c.out", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "b.csv").read_text().startswith("rank,")
    assert json.loads((tmp_path / "c.out").read_text())["clips"]


def test_thumbnails_are_listed_relative_to_the_export_and_survive_a_move(shared_index, run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the export named from elsewhere: paths are relative to it, not to the working folder
    (tmp_path / "out").mkdir()
    result = run_cli("search", "a shape", "--db", shared_index, "-k", "2", "--export", "out/hits.csv",
                     "--export", "out/hits.json")
    assert result.exit_code == 0, result.stderr
    (tmp_path / "out").rename(tmp_path / "moved")
    moved = tmp_path / "moved"
    with open(moved / "hits.csv", newline="", encoding="utf-8") as handle:
        listed = [row["thumbnail"] for row in csv.DictReader(handle)]
    listed += [clip["thumbnail"] for clip in json.loads((moved / "hits.json").read_text(encoding="utf-8"))["clips"]]
    assert len(listed) == 4 and all(name.startswith("hits_thumbs/") and (moved / name).is_file() for name in listed)


def test_an_unwritable_thumbnail_folder_is_one_line(shared_index, run_cli, tmp_path):
    (tmp_path / "sheet_thumbs").write_text("a file where the thumbnail folder should be")
    result = run_cli("search", "x", "--db", shared_index, "-k", "1", "--export", tmp_path / "sheet.html")
    assert result.exit_code == 1, result.stderr
    assert "thumbnail" in result.stderr and "Traceback" not in result.stderr


def test_edl_for_one_frame_rate_is_one_file(shared_index, run_cli, tmp_path):
    import opentimelineio as otio

    result = run_cli("search", "x", "--db", shared_index, "-k", "3", "--episode", "episode_02", "--keep-duplicates",
                     "--export", tmp_path / "ntsc.edl", "--json")
    assert result.exit_code == 0, result.stderr
    assert [p.name for p in tmp_path.glob("*.edl")] == ["ntsc.edl"]
    clips = json.loads(result.stdout)
    timeline = otio.adapters.read_from_file(str(tmp_path / "ntsc.edl"), "cmx_3600", rate=30000 / 1001)
    assert [otio.opentime.to_timecode(e.source_range.start_time, 30000 / 1001) for e in timeline.tracks[0].find_clips()] \
        == [c["start_smpte"] for c in clips]


def test_the_index_records_each_videos_exact_frame_rate(shared_on, annotations):
    recorded = {v.episode: v.fps for v in shared_on.store().indexed_videos()}
    assert recorded == {v["file"].rsplit(".", 1)[0]: v["fps"].removesuffix("/1") for v in annotations["videos"]}


def test_an_index_without_recorded_rates_reads_the_rate_from_the_file():
    from scenegrep.pipeline.present import clip_record
    from scenegrep.pipeline.records import Clip, Hit

    path = str(SAMPLE_VIDEOS / "episode_02.mp4")
    clip = Clip("episode_02", path, 60.06, 61.0, 0.5, (Hit("episode_02", path, 60.06, 0.5),), fps=None)
    record = clip_record(1, clip)
    assert record["fps"] == "30000/1001" and record["start_smpte"] == "00:01:00;02"
