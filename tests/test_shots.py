"""Clips start and end where their shots do: a clip that the grid put at 2-6 s
comes back as 2.21-5.5 s when those are the cuts, whatever the frame rate, the
keyframes or the transitions in between."""

from __future__ import annotations

import json
import sys
from fractions import Fraction

import numpy as np
import pytest
from conftest import REPO, SAMPLE_VIDEOS, index_once

from scenegrep.pipeline.decoders import open_decoder
from scenegrep.pipeline.present.fields import clip_record
from scenegrep.pipeline.records import Clip, Hit
from scenegrep.pipeline.shots import WindowFrame, first_change, last_change
from scenegrep.pipeline.snap import snap_clips

sys.path.insert(0, str(REPO / "tools"))
from scenes import Scene, render  # noqa: E402

SHOTS = REPO / "sample_shots"
MINI_CLIP = SAMPLE_VIDEOS / "mini_clip"
RED_BALL = Scene("circle", "red", "blue", "bouncing")
GREEN_SQUARE = Scene("square", "green", "black", "still")
WHITE_TRIANGLE = Scene("triangle", "white", "black", "still")
SIZE = (96, 54)


def shot_pixels(scenes: list[tuple[Scene, int]], rate: float) -> list[np.ndarray]:
    return [render(scene, k / rate, *SIZE) for scene, count in scenes for k in range(count)]


def write_shots(path, pixels, rate=Fraction(24), pts=None, time_base=None, options=None):
    """Encode RGB frames with libx264; `pts` in `time_base` units (default: one per frame)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *SIZE, "yuv420p"
        stream.options = {"preset": "ultrafast", **(options or {})}
        base = time_base or 1 / Fraction(rate)
        stream.codec_context.time_base = base
        for index, image in enumerate(pixels):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = (index if pts is None else pts[index]), base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


def grid_clip(path, hit_times, every=2.0, fps=None) -> Clip:
    hits = tuple(Hit("ep", str(path), t, 0.5) for t in hit_times)
    return Clip("ep", str(path), hit_times[0], hit_times[-1] + every, 0.5, hits, fps=fps)


def frames_of(images, rate=24.0) -> list[WindowFrame]:
    return [WindowFrame(i / rate, lambda image=image: image) for i, image in enumerate(images)]


def shot_changes(images) -> list[float]:
    """The first and the last shot change in a window of frames (one entry when they agree)."""
    found = {first_change(frames_of(images)), last_change(frames_of(images))} - {None}
    return sorted(found)


# --- the detector on frames -------------------------------------------------------------------

def test_a_held_drawing_cut_to_another_on_the_same_background_is_a_cut():
    images = shot_pixels([(GREEN_SQUARE, 20), (WHITE_TRIANGLE, 20)], 24)
    assert shot_changes(images) == [pytest.approx(20 / 24)]


def test_a_flash_frame_inside_a_shot_is_no_cut_but_a_flash_at_a_cut_is():
    images = shot_pixels([(RED_BALL, 40)], 24)
    images[17] = np.full_like(images[17], 255)
    assert shot_changes(images) == []
    at_cut = shot_pixels([(RED_BALL, 20), (GREEN_SQUARE, 20)], 24)
    at_cut[20] = np.full_like(at_cut[20], 255)  # the new shot opens on a flash
    changes = shot_changes(at_cut)
    assert changes[0] == pytest.approx(20 / 24) and changes[-1] == pytest.approx(21 / 24)


def test_a_cross_fade_changes_shot_at_its_midpoint():
    old, new = shot_pixels([(GREEN_SQUARE, 1)], 24)[0], shot_pixels([(RED_BALL, 1)], 24)[0]
    images = [old] * 10 + [((1 - a) * old + a * new).astype(np.uint8) for a in (np.arange(12) + 0.5) / 12] + [new] * 10
    assert shot_changes(images) == [pytest.approx(16 / 24)]  # the 7th fade frame is more new than old


def test_motion_without_a_cut_is_no_shot_change():
    assert shot_changes(shot_pixels([(RED_BALL, 48)], 24)) == []


# --- clips snapped on real videos --------------------------------------------------------------

@pytest.mark.parametrize("keyframe_at_cut", [True, False])
def test_cuts_between_grid_points_snap_with_or_without_a_keyframe_there(tmp_path, keyframe_at_cut):
    # Shots: red ball 0-53 (2.208 s), green square 53-132 (5.5 s), red ball again to 168.
    pixels = shot_pixels([(RED_BALL, 53), (GREEN_SQUARE, 79), (RED_BALL, 36)], 24)
    # x264's veryfast preset puts a keyframe at the first cut; no scene-cut detection puts none there.
    options = {"preset": "veryfast"} if keyframe_at_cut else {"x264-params": "keyint=1000:scenecut=0"}
    path = write_shots(tmp_path / "cuts.mp4", pixels, options=options)
    decoder = open_decoder(path)
    keyframes = [t for t, _ in decoder.keyframes()]
    decoder.close()
    assert any(abs(t - 53 / 24) < 1e-6 for t in keyframes) == keyframe_at_cut
    # The square matched at 4 s only: the sample at 2 s (< 2.208 s) shows the ball.
    (clip,) = snap_clips([grid_clip(path, [4.0])], every=2.0)
    assert (clip.start, clip.end) == (pytest.approx(53 / 24), pytest.approx(132 / 24))
    assert (clip.grid_start, clip.grid_end) == (4.0, 6.0)


def test_a_video_without_a_cut_keeps_its_grid_clip(tmp_path):
    path = write_shots(tmp_path / "one.mp4", shot_pixels([(RED_BALL, 150)], 24))
    (clip,) = snap_clips([grid_clip(path, [2.0, 4.0])], every=2.0)
    assert (clip.start, clip.end) == (2.0, 6.0)


def test_a_video_that_cannot_be_read_any_more_keeps_its_grid_clip(tmp_path):
    gone = grid_clip(tmp_path / "moved-away.mp4", [2.0, 4.0])
    assert snap_clips([gone], every=2.0) == [gone]


def test_a_variable_frame_rate_video_snaps_to_the_true_time_of_the_cut(tmp_path):
    # Frames 40 ms apart, then 100 ms apart from 2 s on; the cut falls at 3.1 s.
    times = [i * 40 for i in range(50)] + [2000 + i * 100 for i in range(1, 41)]
    cut = times.index(3100)
    pixels = shot_pixels([(RED_BALL, cut), (GREEN_SQUARE, len(times) - cut)], 25)
    path = write_shots(tmp_path / "vfr.mp4", pixels, rate=Fraction(25), pts=times, time_base=Fraction(1, 1000))
    (clip,) = snap_clips([grid_clip(path, [4.0, 6.0])], every=2.0)
    assert clip.start == pytest.approx(3.1)


def test_a_snapped_edge_shows_ntsc_drop_frame_timecode(tmp_path):
    rate = Fraction(30000, 1001)
    # 1800 frames of one shot, then another: drop-frame labels frame 1800 00:01:00;02 (;00 and ;01 are skipped).
    pixels = [np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)] * 1800 + [np.full((SIZE[1], SIZE[0], 3), 200, np.uint8)] * 90
    path = write_shots(tmp_path / "ntsc.mp4", pixels, rate=rate)
    (clip,) = snap_clips([grid_clip(path, [61.0], fps=rate)], every=2.0)
    record = clip_record(1, clip)
    assert record["start_smpte"] == "00:01:00;02" and record["grid_start"] == 61.0
    assert record["start"] == pytest.approx(float(1800 / rate), abs=1e-6)


# --- everything downstream ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def shots_index(tmp_path_factory):
    db = tmp_path_factory.mktemp("shots") / "db"
    index_once(SHOTS, "--model", MINI_CLIP, "--db", db)
    return db


def test_the_transitions_video_gets_clips_that_start_and_end_with_their_shots(run_cli, shots_index):
    result = run_cli("eval", "videos", SHOTS / "annotations.json", "--model", MINI_CLIP, "--db", shots_index, "--json",
                     "--snap")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recall_at_1"] == 1.0 and report["mean_iou"] >= 0.95
    assert report["boundary_error_median"] <= 1 and report["clips_into_neighbouring_shots"] == 0
    grid = json.loads(run_cli("eval", "videos", SHOTS / "annotations.json", "--model", MINI_CLIP, "--db", shots_index,
                              "--json", "--no-snap").stdout)
    assert grid["mean_iou"] < 0.8 and grid["clips_into_neighbouring_shots"] > 0


def test_search_exports_and_open_use_the_snapped_edges(run_cli, shots_index, tmp_path):
    # The red star's shot runs from the cross-fade's midpoint (frame 321) to the cut at frame 448,
    # with a flash frame inside; the grid clip was 14.014-20.018 s (last hit 18.018 + 2).
    rate = Fraction(24000, 1001)
    edl = tmp_path / "star.edl"
    result = run_cli("search", "a red star", "--db", shots_index, "--json", "-k", "1", "--export", edl, "--snap")
    assert result.exit_code == 0, result.stderr
    (star,) = json.loads(result.stdout)
    assert star["start"] == pytest.approx(float(321 / rate), abs=1e-6) and star["end"] == pytest.approx(float(448 / rate), abs=1e-6)
    assert (star["grid_start"], star["grid_end"]) == (pytest.approx(14.014), pytest.approx(20.018))
    assert "00:00:13:09 00:00:18:16" in edl.read_text()  # frames 321 and 448 at 24 fps nominal
    opened = run_cli("open", "1", "--db", shots_index, "--print", "--player", "mpv")
    assert "--start=13.389" in opened.stdout, opened.stdout  # 13.388375 rounded up: no frame of the shot before
    padded = json.loads(run_cli("search", "a red star", "--db", shots_index, "--json", "-k", "1", "--pad", "1",
                                "--snap").stdout)[0]
    assert padded["start"] == pytest.approx(star["start"] - 1) and padded["end"] == pytest.approx(star["end"] + 1)
    grid = json.loads(run_cli("search", "a red star", "--db", shots_index, "--json", "-k", "1", "--no-snap").stdout)[0]
    assert (grid["start"], grid["end"], grid["grid_start"]) == (pytest.approx(14.014), pytest.approx(20.018), None)


def test_players_and_playlists_start_no_earlier_and_stop_no_later_than_the_clips_frames():
    """Found by review: a snapped end is the next shot's first frame (4.295958 s here), and
    rounding it to the nearest millisecond (4.296) let a player show that frame."""
    from scenegrep.pipeline.present.player import player_command
    from scenegrep.pipeline.present.playlist import m3u_text, xspf_text

    assert player_command("mpv", "/v/ep.mp4", 13.388375, 4.295958 + 10)[1:3] == ["--start=13.389", "--end=14.295"]
    assert player_command("vlc", "/v/ep.mp4", 2.0, 4.0)[1:3] == ["--start-time=2.000", "--stop-time=4.000"]
    clip = Clip("ep", "/v/ep.mp4", 13.388375, 14.295958, 0.5, ())
    for text in (m3u_text([clip]), xspf_text([clip])):
        assert "start-time=13.389" in text and "stop-time=14.295" in text
