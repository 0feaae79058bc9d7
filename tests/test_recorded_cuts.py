"""Shot changes are recorded while indexing, so a search snaps clip edges without
decoding: the same cuts whichever way the video was decoded, the same clips as
decoding at search time, and indexes from before still snap (and say how)."""

from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest
from conftest import REPO, SAMPLE_VIDEOS
from test_shots import GREEN_SQUARE, RED_BALL, WHITE_TRIANGLE, shot_pixels, write_shots

from scenegrep.pipeline import segments
from scenegrep.pipeline.encode import ClipEncoder
from scenegrep.pipeline.evaluate import read_annotations
from scenegrep.pipeline.files import video_for
from scenegrep.pipeline.index_access import Location, open_index
from scenegrep.pipeline.indexer import index_videos
from scenegrep.pipeline.query import Query, query_vector
from scenegrep.pipeline.registry import cuts_metadata, parse_cuts
from scenegrep.pipeline.sample import VideoSampler
from scenegrep.pipeline.search import search
from scenegrep.pipeline.segments import SegmentedSampler
from scenegrep.pipeline.shots import first_change, last_change
from scenegrep.pipeline.snap import _WindowReader
from scenegrep.pipeline.workers import DecodePool

SHOTS = REPO / "sample_shots"
EPISODE_04 = SHOTS / "episode_04.mp4"
MINI_CLIP = SAMPLE_VIDEOS / "mini_clip"


@pytest.fixture
def short_segments(monkeypatch):
    """Segments of about a second: episode_04 splits at its keyframes, which x264 put on its cuts."""
    monkeypatch.setattr(segments, "MIN_SEGMENT_SECONDS", 0.5)
    monkeypatch.setattr(segments, "MAX_SEGMENT_SECONDS", 1.0)


def single_pass(path, every=2.0):
    with VideoSampler(video_for(str(path)), every, strategy="decode", record_cuts=True) as sampler:
        times = [frame.t for frame in sampler]
    return times, sampler.cuts


def in_segments(path, pool, every=2.0):
    sampler = SegmentedSampler(video_for(str(path)), every, pool, record_cuts=True)
    times = [frame.t for frame in sampler]
    return times, sampler.cuts, sampler.segments


def search_time_cuts(path, samples, every=2.0) -> tuple[float, ...]:
    """What the search-time detector finds between each sample and the next (and one interval after the last)."""
    reader = _WindowReader(str(path))
    found = set()
    try:
        for low, high in zip(samples, [*samples[1:], samples[-1] + every]):
            window = reader.window(low, high)
            for change in (first_change(window, until=high + 1e-3), last_change(window, until=high + 1e-3)):
                if change is not None:
                    found.add(round(change, 6))
    finally:
        reader.close()
    return tuple(sorted(found))


def test_cuts_recorded_while_decoding_are_the_search_time_detectors_in_both_decode_paths(short_segments):
    truth = [scene["start"] for scene in json.loads((SHOTS / "annotations.json").read_text())["videos"][0]["scenes"]][1:]
    times, cuts = single_pass(EPISODE_04)
    assert cuts == pytest.approx(truth, abs=1e-6)  # the cut between held drawings, the cross-fade's midpoint, no flash
    assert cuts == search_time_cuts(EPISODE_04, times)
    with DecodePool(2) as pool:
        segmented_times, segmented_cuts, planned = in_segments(EPISODE_04, pool)
    assert segmented_times == times and segmented_cuts == cuts
    # x264 put keyframes on the hard cuts: three segments start on a cut's first frame, whose
    # previous frame another worker decoded.
    assert sum(any(abs(s.start_t - cut) < 1e-3 for cut in cuts) for s in planned) == 3


def ntsc_fade(path) -> str:
    """30000/1001 fps: grey 40 for 90 frames, then a 30-frame fade to a grey far enough away
    to be a gradual change (`shots.GRADUAL_DISTANCE`) only with its last frame, 119, which
    is no sample (samples are the first frames at or after each 2 s: 0, 60, 120, ...)."""
    from test_shots import SIZE

    from scenegrep.pipeline.shots import GRADUAL_DISTANCE, distance, signature

    width, height = SIZE
    grey = lambda value: np.full((height, width, 3), value, np.uint8)  # noqa: E731
    far = next(value for value in range(60, 255) if distance(signature(grey(40)), signature(grey(value))) >= GRADUAL_DISTANCE)
    frames = [grey(round(40 + (far - 40) * min(1.0, max(0, i - 90) / 30))) for i in range(200)]
    return write_shots(path, frames, rate=Fraction(30000, 1001), options={"crf": "0"})


@pytest.mark.parametrize("video", ["cut after a sample", "fade ending on a sample"])
def test_at_29_97_fps_decoding_finds_the_edges_the_recorder_found(video, tmp_path):
    """Found by review: at 29.97 fps a grid sample is one frame after its grid time, and decoding
    looked from grid time to grid time, missing the cut on the frame after a sample and the last
    frame of a fade; it now looks from stored sample to stored sample, as the recorder did."""
    from test_shots import grid_clip

    from scenegrep.pipeline.snap import snap_clips, snap_to_cuts

    path = (write_shots(tmp_path / "cut.mp4", shot_pixels([(RED_BALL, 61), (GREEN_SQUARE, 100)], 30),
                        rate=Fraction(30000, 1001))
            if video == "cut after a sample" else ntsc_fade(tmp_path / "fade.mp4"))
    times, cuts = single_pass(path)
    assert times[1] == pytest.approx(2.002) and len(cuts) == 1
    samples = {str(path): np.asarray(times)}
    for hit in times:
        clip = grid_clip(path, [hit])
        recorded, decoded = snap_to_cuts(clip, cuts, 2.0), snap_clips([clip], 2.0, samples)[0]
        assert (decoded.start, decoded.end) == pytest.approx((recorded.start, recorded.end), abs=1e-6), hit
    assert any((snap_to_cuts(grid_clip(path, [hit]), cuts, 2.0).start, snap_to_cuts(grid_clip(path, [hit]), cuts, 2.0).end)
               != (hit, hit + 2.0) for hit in times)  # some edge moved


def test_at_29_97_fps_a_search_snaps_the_same_from_recorded_cuts_and_by_decoding(tmp_path):
    """The search's decoding fallback reads the stored sample times of the videos it decodes: the
    green shot starts on the frame after the sample at 10.01 s, which grid times missed."""
    videos = tmp_path / "videos"
    videos.mkdir()
    path = write_shots(videos / "cut.mp4", shot_pixels([(RED_BALL, 301), (GREEN_SQUARE, 300), (RED_BALL, 200)], 30),
                       rate=Fraction(30000, 1001))
    found = []
    for name, record_cuts in (("recorded", True), ("unrecorded", False)):
        build_index(tmp_path / name, [path], record_cuts)
        with open_index(Location.of(str(tmp_path / name), None)) as opened:
            encoder = ClipEncoder(str(MINI_CLIP))
            store = opened.for_reading(encoder.info)
            found.append([[(round(c.start, 5), round(c.end, 5)) for c in search(
                store, query_vector(encoder, Query.parse([text])), k=10, on_note=lambda note: None)]
                for text in ("a red ball", "a green square")])
    recorded, by_decoding = found
    assert recorded == by_decoding
    assert (round(301 * 1001 / 30000, 5), round(601 * 1001 / 30000, 5)) in recorded[1]  # the green shot, exactly


def test_a_cut_beside_a_segment_boundary_is_found_on_either_side(tmp_path, short_segments):
    # A keyframe every 12 frames and segments of 24 (1 s): cuts at frames 47 (the last of a
    # segment), 72 (the first of one) and 97 (the second of one); a sample every 12 frames.
    pixels = shot_pixels([(RED_BALL, 47), (GREEN_SQUARE, 25), (WHITE_TRIANGLE, 25), (RED_BALL, 23)], 24)
    path = write_shots(tmp_path / "boundaries.mp4", pixels, options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    times, cuts = single_pass(path, every=0.5)
    assert cuts == pytest.approx([47 / 24, 72 / 24, 97 / 24], abs=1e-6)
    with DecodePool(2) as pool:
        segmented_times, segmented_cuts, planned = in_segments(path, pool, every=0.5)
    assert segmented_times == times and segmented_cuts == cuts
    assert {round(s.start_t * 24) for s in planned} >= {48, 72, 96}


def test_segments_that_skip_gops_record_no_cuts(tmp_path, short_segments):
    # Keyframes every 12 frames and a sample every 3 s: skipping GOPs without a sample saves most
    # of the decoding, so they are still skipped (as a single pass seeks), and nothing is recorded.
    pixels = shot_pixels([(RED_BALL, 50), (GREEN_SQUARE, 70)], 24)
    path = write_shots(tmp_path / "sparse.mp4", pixels, options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    with DecodePool(1) as pool:
        times, cuts, _ = in_segments(path, pool, every=3.0)
    assert times == single_pass(path, 3.0)[0] and cuts is None


def test_recording_decodes_through_where_seeking_would_save_little_and_seeks_where_it_saves_much(tmp_path):
    # episode_04: keyframes 4-10 s apart, N = 2: seeking would skip ~20 %, so a recording sampler decodes all.
    with VideoSampler(video_for(str(EPISODE_04)), 2.0, record_cuts=True) as sampler:
        times = [frame.t for frame in sampler]
    assert sampler.used_strategy == "decode" and len(sampler.cuts) == 4
    with VideoSampler(video_for(str(EPISODE_04)), 2.0) as plain:
        assert [frame.t for frame in plain] == times and plain.used_strategy == "seek" and plain.cuts is None
    # A keyframe every 12 frames, N = 5: seeking skips most frames; nothing is recorded.
    pixels = shot_pixels([(RED_BALL, 130), (GREEN_SQUARE, 110)], 24)
    path = write_shots(tmp_path / "sparse.mp4", pixels, options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    with VideoSampler(video_for(str(path)), 5.0, record_cuts=True) as sampler:
        assert len(list(sampler)) == 2 and sampler.used_strategy == "seek" and sampler.cuts is None


def test_recorded_cuts_survive_the_registry_and_bad_ones_are_ignored():
    assert parse_cuts(cuts_metadata((4.295958, 8.883875))["cuts"]) == (4.295958, 8.883875)
    assert parse_cuts(cuts_metadata(())["cuts"]) == ()  # recorded: no cut at all
    assert cuts_metadata(None) == {}  # not recorded: no field, as in indexes from before
    for damaged in (None, 3, "1 two 3", "nan", "-1", "1e309", "4.5 4.5", "3 2", "1_0", " 1", "1  2", "1.1234567",
                    "0x10", "١"):  # (found by review: repeated, unsorted, digit separators and such were taken)
        assert parse_cuts(damaged) is None, damaged
    assert parse_cuts("2.5 9.6", 9.67) == (2.5, 9.6) and parse_cuts("2.5 99999", 9.67) is None  # past its end


def test_a_damaged_cut_list_is_decoded_instead_named_in_a_note_and_by_doctor(tmp_path, run_cli):
    """Found by review: a damaged `cuts` field moved clip edges without a word."""
    from test_serve_security import edit_registry

    db = tmp_path / "db"
    build_index(db, [EPISODE_04], True)
    intact = [(round(c.start, 5), round(c.end, 5)) for c in search_all(db)[0]]  # recorded: to the microsecond
    edit_registry(db, cuts="4.5 4.5 4.5")
    found, notes = search_all(db)
    assert [(round(c.start, 5), round(c.end, 5)) for c in found] == intact  # found by decoding, as recorded
    assert len(notes) == 1 and "shot changes stored for 1 video in these results are damaged" in notes[0]
    doctor = run_cli("doctor", "--model", MINI_CLIP, "--db", db)
    assert doctor.exit_code != 0 and "recorded shot changes of 1 video(s) are damaged" in doctor.stdout + doctor.stderr


def search_all(db):
    notes: list[str] = []
    with open_index(Location.of(str(db), None)) as opened:
        encoder = ClipEncoder(str(MINI_CLIP))
        store = opened.for_reading(encoder.info)
        return search(store, query_vector(encoder, Query.parse(["a red star"])), k=10, on_note=notes.append), notes


# --- searching ---------------------------------------------------------------------------------

def build_index(db, paths, record_cuts, workers=1):
    with open_index(Location.of(str(db), None), write=True) as opened:
        encoder = ClipEncoder(str(MINI_CLIP))
        store = opened.for_writing(encoder.info, 2.0)
        results = list(index_videos([video_for(str(p)) for p in paths], encoder, store, workers=workers,
                                    record_cuts=record_cuts))
        assert all(result.status in ("indexed", "copied", "moved") for result in results)
        return {entry.path: entry.cuts for entry in store.indexed_videos()}


def all_searches(db):
    annotated = read_annotations(str(SAMPLE_VIDEOS / "annotations.json")) + read_annotations(str(SHOTS / "annotations.json"))
    notes: list[str] = []
    found = []
    with open_index(Location.of(str(db), None)) as opened:
        encoder = ClipEncoder(str(MINI_CLIP))
        store = opened.for_reading(encoder.info)
        for video in annotated:
            for scene in video["scenes"]:
                clips = search(store, query_vector(encoder, Query.parse([scene["caption"]])), k=10,
                               on_note=notes.append)
                # Recorded cuts are kept to the microsecond, as stored sample times are.
                found.append([(c.path, *(round(t, 5) for t in (c.start, c.end, c.grid_start, c.grid_end))) for c in clips])
    return found, notes


@pytest.fixture(scope="module")
def indexes(tmp_path_factory):
    paths = [*sorted(SAMPLE_VIDEOS.glob("*.mp4")), EPISODE_04]
    recorded, unrecorded = tmp_path_factory.mktemp("recorded"), tmp_path_factory.mktemp("unrecorded")
    return (recorded, build_index(recorded, paths, True)), (unrecorded, build_index(unrecorded, paths, False))


def test_clips_snapped_from_recorded_cuts_are_those_decoding_finds(indexes):
    (recorded, cuts), (unrecorded, none) = indexes
    assert all(found is not None for found in cuts.values()) and all(found is None for found in none.values())
    from_record, record_notes = all_searches(recorded)
    by_decoding, decoding_notes = all_searches(unrecorded)
    assert from_record == by_decoding
    assert any(start != grid_start for clips in from_record for _, start, _, grid_start, _ in clips)  # some moved
    assert record_notes == [] and decoding_notes and all("decoding them now" in note for note in decoding_notes)


def test_an_index_without_recorded_cuts_still_snaps_and_says_so_once(run_cli, indexes):
    (recorded, _), (unrecorded, _) = indexes
    old = run_cli("search", "a red star", "--db", unrecorded, "--json", "-k", "10")
    new = run_cli("search", "a red star", "--db", recorded, "--json", "-k", "10")
    assert old.exit_code == new.exit_code == 0, old.stderr + new.stderr
    assert json.loads(old.stdout) == json.loads(new.stdout)
    assert old.stderr.count("scenegrep: note:") == 1 and "in these results were indexed without" in old.stderr
    assert "note" not in new.stderr
    star = json.loads(run_cli("search", "a red star", "--db", recorded, "--json", "-k", "1", "--episode", "episode_04").stdout)[0]
    assert (star["start"], star["grid_start"]) == (pytest.approx(321 * 1001 / 24000, abs=1e-6), pytest.approx(14.014))


def test_no_snap_gives_grid_edges_and_decodes_nothing(run_cli, indexes):
    (_, _), (unrecorded, _) = indexes
    result = run_cli("search", "a red star", "--db", unrecorded, "--json", "-k", "3", "--no-snap")
    assert result.exit_code == 0 and "note" not in result.stderr
    for clip in json.loads(result.stdout):
        assert clip["grid_start"] is None and abs(clip["start"] - 2 * round(clip["start"] / 2)) < 0.05  # on the 2-s grid


def test_moved_and_copied_videos_keep_their_recorded_cuts(tmp_path):
    import shutil

    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(EPISODE_04, folder / "a.mp4")
    db = tmp_path / "db"
    first = build_index(db, [folder / "a.mp4"], True)
    shutil.copy(folder / "a.mp4", folder / "copy.mp4")
    (folder / "a.mp4").rename(folder / "moved.mp4")
    after = build_index(db, [folder / "moved.mp4", folder / "copy.mp4"], False)  # reused, not decoded
    recorded = first[str(folder / "a.mp4")]
    assert recorded and after == {str(folder / "moved.mp4"): recorded, str(folder / "copy.mp4"): recorded}


def test_indexing_with_worker_processes_records_the_same_cuts(tmp_path, short_segments):
    in_process = build_index(tmp_path / "one", [EPISODE_04], True)
    in_workers = build_index(tmp_path / "two", [EPISODE_04], True, workers=2)
    assert in_workers == in_process and len(in_process[str(EPISODE_04)]) == 4


def test_a_video_without_a_cut_records_an_empty_list_not_nothing(tmp_path):
    path = write_shots(tmp_path / "one shot.mp4", shot_pixels([(RED_BALL, 100)], 24))
    assert build_index(tmp_path / "db", [path], True) == {path: ()}  # recorded: searches need not decode it


def test_padded_snapped_clips_that_merge_are_made_up_to_k_and_keep_their_grid_edges(tmp_path):
    """Found by review: a merged clip kept its first part's grid edges; and with --pad, snapped
    clips were cut to k before padding merged some, so fewer than k could come back where more existed."""
    from scenegrep.pipeline.clips import ClipRules

    db = tmp_path / "db"
    build_index(db, sorted(SAMPLE_VIDEOS.glob("*.mp4")), True)
    with open_index(Location.of(str(db), None)) as opened:
        encoder = ClipEncoder(str(MINI_CLIP))
        store = opened.for_reading(encoder.info)
        query = query_vector(encoder, Query.parse(["a green square on black"]))
        rules = ClipRules(score_jump=1e-9, duplicate_similarity=None, pad=1.5)
        every_clip = search(store, query, k=200, rules=rules)
        for k in range(1, len(every_clip) + 2):
            found = search(store, query, k=k, rules=rules)
            assert min(k, len(every_clip)) <= len(found) <= k, k  # (merging more clips can leave fewer)
            for clip in found:
                assert clip.grid_start <= clip.hits[0].t and clip.grid_end > clip.hits[-1].t, clip
