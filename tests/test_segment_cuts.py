"""Shot changes recorded inside `--ray` decoding tasks' segments (`pipeline/segment_cuts.py`).

Ray's decoding tasks run here as plain functions, and the driver's side
(`ray_index.record_segment`) over their signals in segment order: the cuts
must be exactly those of one recorder fed every frame (a single pass), while
a segment that records its own intervals sends only its edges' signatures.
No Ray needed; `tests/test_ray.py` runs the same on a real cluster.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from test_recorded_cuts import EPISODE_04, single_pass
from test_shots import GREEN_SQUARE, RED_BALL, WHITE_TRIANGLE, shot_pixels, write_shots

from scenegrep.pipeline import segments
from scenegrep.pipeline.cuts import CutRecorder
from scenegrep.pipeline.decoders import PyAVDecoder
from scenegrep.pipeline.ray_index import record_segment
from scenegrep.pipeline.ray_tasks import _signals, decode_segment


def recorded_as_on_ray(path, every: float, monkeypatch, segment_seconds: tuple[float, float]):
    """Ray's decoding tasks, run here as plain functions, over the segments a driver plans with
    segments of `segment_seconds` (min, max), and the driver's recorder fed their signals:
    (kept sample times, cuts, segments planned, signatures sent, hand-offs)."""

    monkeypatch.setattr(segments, "MIN_SEGMENT_SECONDS", segment_seconds[0])
    monkeypatch.setattr(segments, "MAX_SEGMENT_SECONDS", segment_seconds[1])
    decoder = PyAVDecoder(str(path))
    keyframes, duration = decoder.keyframes(), decoder.info().duration
    decoder.close()
    planned, recording = segments.plan_recording(keyframes, every, duration, 2, True)
    assert recording
    rule, recorder, kept_times = segments.GridRule(every), CutRecorder(every), []
    sent = hand_offs = 0
    for segment in planned:
        decoded = decode_segment(str(path), segment.start_pts, segment.end_pts, every, None, signals=True)
        kept = [rule.keeps(t) for t in decoded.times]
        kept_times += [t for t, keep in zip(decoded.times, kept) if keep]
        signals = decoded.signals
        assert record_segment(recorder, decoded.times, kept, signals)
        sent += len(signals.signatures)
        if signals.hand_off is not None:
            hand_offs += 1
            sent += len(signals.hand_off.pending_signatures)
    return kept_times, recorder.finish(), planned, sent, hand_offs


def test_cuts_beside_ray_segment_boundaries_are_recorded_as_in_one_pass(monkeypatch):
    """Segments of about a second of episode_04 (x264 put keyframes on its cuts, so they start
    there): the driver's recorder finds every cut a single pass does."""

    times, cuts = single_pass(EPISODE_04)
    kept_times, recorded, planned, _, _ = recorded_as_on_ray(EPISODE_04, 2.0, monkeypatch, (0.5, 1.0))
    assert sum(any(abs(s.start_t - cut) < 1e-3 for cut in cuts) for s in planned) == 3
    assert kept_times == times and recorded == cuts and len(cuts) == 4


@pytest.fixture(scope="module")
def many_shots(tmp_path_factory):
    """15 s of shots 1 to 30 frames long (seeded), a keyframe every 12 frames: (path, frames)."""
    import random

    rng, shots, frames = random.Random(7), [], 0
    while frames < 360:
        scene = rng.choice([s for s in (RED_BALL, GREEN_SQUARE, WHITE_TRIANGLE) if not shots or s is not shots[-1][0]])
        shots.append((scene, rng.choice([1, 2, 3, 5, 8, 11, 12, 13, 17, 23, 30])))
        frames += shots[-1][1]
    path = tmp_path_factory.mktemp("shots") / "many_shots.mp4"
    write_shots(path, shot_pixels(shots, 24), options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    return path, frames


@pytest.mark.parametrize("every, segment_seconds", [(0.25, (0.5, 1.0)), (0.5, (1.5, 2.5)), (1.0, (4.0, 6.0))])
def test_segments_that_record_their_own_cuts_send_only_their_edges_and_the_cuts_are_one_passes(
        every, segment_seconds, many_shots, monkeypatch):
    """A segment with two samples of its own decides its intervals where it is decoded and sends
    the signatures of its edges only; the video's cuts are still exactly a single pass's."""

    path, frames = many_shots
    times, cuts = single_pass(path, every)
    kept_times, recorded, planned, sent, hand_offs = recorded_as_on_ray(path, every, monkeypatch, segment_seconds)
    assert kept_times == times and recorded == cuts and len(cuts) >= 10
    assert hand_offs >= len(planned) - 1 >= 3  # the last segment may be too short to decide an interval
    assert sent < frames * 0.75, f"{sent} of {frames} frames' signatures sent over {len(planned)} segments"


def test_a_hand_off_whose_samples_the_driver_did_not_keep_is_refused(many_shots, monkeypatch):
    """The task assumed the grid rule's samples; where the driver's rule kept others, its
    recording cannot go on (the driver then leaves the video's edges to search time)."""

    path, _ = many_shots
    decoded = decode_segment(str(path), None, None, 0.5, None, signals=True)
    assert decoded.signals.hand_off is not None
    rule = segments.GridRule(0.5)
    kept = [rule.keeps(t) for t in decoded.times]
    assert record_segment(CutRecorder(0.5), decoded.times, kept, decoded.signals)
    last = max(i for i, keep in enumerate(kept) if keep)
    kept[last] = False
    assert not record_segment(CutRecorder(0.5), decoded.times, kept, decoded.signals)


def test_episode_04_records_the_same_cuts_when_its_segments_record_their_own(monkeypatch):

    times, cuts = single_pass(EPISODE_04, 0.5)
    kept_times, recorded, planned, sent, hand_offs = recorded_as_on_ray(EPISODE_04, 0.5, monkeypatch, (4.0, 6.0))
    assert kept_times == times and recorded == cuts and len(cuts) >= 4
    assert hand_offs == len(planned) and sent < 553 / 4


def test_a_cut_on_a_segments_edge_is_found_when_the_segment_records_its_own(tmp_path, monkeypatch):
    """Cuts on the last frame of a segment, the first of the next and the second of one, with
    samples every 6 frames: each segment hands off, and the driver finds all three."""

    pixels = shot_pixels([(RED_BALL, 47), (GREEN_SQUARE, 25), (WHITE_TRIANGLE, 25), (RED_BALL, 23)], 24)
    path = write_shots(tmp_path / "boundaries.mp4", pixels, options={"g": "12", "keyint_min": "12", "sc_threshold": "0"})
    times, cuts = single_pass(path, every=0.25)
    assert cuts == pytest.approx([47 / 24, 72 / 24, 97 / 24], abs=1e-6)
    kept_times, recorded, planned, _, hand_offs = recorded_as_on_ray(path, 0.25, monkeypatch, (0.5, 1.0))
    assert kept_times == times and recorded == cuts
    assert {round(s.start_t * 24) for s in planned} >= {48, 72, 96} and hand_offs == len(planned)


def one_recorder(frames, starts: list[int], every: float) -> tuple[float, ...]:
    """The cuts of one recorder fed every frame ((t, signature) pairs), each candidate the grid rule keeps a sample."""
    rule, recorder = segments.GridRule(every), CutRecorder(every)
    for segment in split(frames, starts):
        times = [t for t, _ in segment]
        candidates = set(candidate_indexes(times, every))
        for j, (t, signature) in enumerate(segment):
            recorder.add_frame(t, signature)
            if j in candidates and rule.keeps(t):
                recorder.add_sample(t)
    return recorder.finish()


def segments_then_driver(frames, starts: list[int], every: float) -> tuple[tuple[float, ...] | None, int]:
    """(the driver's cuts, None where it gave up; hand-offs) for the same frames cut into segments at `starts`."""
    rule, recorder, hand_offs = segments.GridRule(every), CutRecorder(every), 0
    for segment in split(frames, starts):
        times = [t for t, _ in segment]
        indexes = candidate_indexes(times, every)
        candidates = [times[j] for j in indexes]
        signals = _signals(candidates, [j + 1 for j in indexes], times, np.stack([s for _, s in segment]), every)
        hand_offs += signals.hand_off is not None
        if not record_segment(recorder, candidates, [rule.keeps(t) for t in candidates], signals):
            return None, hand_offs
    return recorder.finish(), hand_offs


def split(frames, starts: list[int]):
    bounds = [0, *starts, len(frames)]
    return [frames[a:b] for a, b in zip(bounds, bounds[1:])]


def candidate_indexes(times: list[float], every: float) -> list[int]:
    return [j for j, t in enumerate(times) if segments.is_candidate(times[j - 1] if j else None, t, every)]


def flat(value: int) -> np.ndarray:
    return np.full((4, 4, 3), value, np.int16)


@pytest.mark.parametrize("gaps", [(1 / 24, 1 / 30, 1 / 60, 0.1, 0.2, 0.9), (1 / 24, 0.0004, 0.4)],
                         ids=["frame rates and gaps", "frames under a millisecond apart"])
def test_random_frame_times_shots_and_segments_give_one_recorders_cuts(gaps):
    """Seeded: 300 videos of random frame times, shots and segments each way; no segment gives up."""
    rng = random.Random(11)
    hand_offs = 0
    for _ in range(300):
        every = rng.choice([0.1, 0.25, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 2.5, 3.0])
        t, end, times = rng.uniform(-0.05, 0.3), rng.uniform(3, 12), []
        while t < end:
            times.append(round(t, 6))
            t += rng.choice(gaps)
        value, left, frames = 0, 0, []
        for t in sorted(set(times)):
            if left <= 0:
                value, left = rng.choice([v for v in (0, 60, 120, 180, 240) if v != value]), rng.choice([1, 2, 3, 5, 30])
            frames.append((t, flat(value)))
            left -= 1
        starts = sorted(rng.sample(range(1, len(frames)), min(rng.randint(0, 6), len(frames) - 1)))
        cuts, handed = segments_then_driver(frames, starts, every)
        assert cuts == one_recorder(frames, starts, every), (every, starts)
        hand_offs += handed
    assert hand_offs >= 100


def test_a_frame_just_before_a_segments_first_sample_keeps_the_cuts_of_one_recorder():
    """Found by review: a frame 0.5 ms before a segment's first own sample belongs to the next
    window in one recorder, not in the segment's (such a segment now sends every signature)."""
    times = sorted([i / 24 for i in range(97)] + [1.0 - 0.0005])
    frames = [(t, flat(0 if t < 1.0 else 80 if t < 1.3 else 160 if t < 1.6 else 240)) for t in times]
    cuts, _ = segments_then_driver(frames, [], 1.0)
    assert cuts == one_recorder(frames, [], 1.0) == (1.0, 1.625)
