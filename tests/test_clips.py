"""Clip shaping: cut-offs, gap rule, padding and clamping, near-duplicate collapse, per-episode cap."""

import numpy as np
import pytest

from scenegrep.pipeline.clips import (
    ClipRules, collapse_duplicates, cut_off, default_score_jump, merge_hits, pad_and_clamp, shape_clips,
)
from scenegrep.pipeline.records import Hit


def hit(t, score, episode="ep1", vector=None):
    return Hit(episode=episode, path=f"/v/{episode}.mp4", t=t, score=score,
               vector=None if vector is None else np.asarray(vector, np.float32))


def unit(*values):
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def test_absolute_and_relative_cut_offs():
    hits = [hit(0, 0.30), hit(2, 0.28), hit(4, 0.20), hit(6, 0.10)]
    assert [h.t for h in cut_off(hits, min_score=0.2)] == [0, 2, 4]
    assert [h.t for h in cut_off(hits, within=0.05)] == [0, 2]  # best 0.30: keep ≥ 0.25
    assert [h.t for h in cut_off(hits, min_score=0.29, within=0.05)] == [0]  # the stricter wins
    assert cut_off([], within=0.1) == []


def test_relative_cut_off_adapts_to_the_query_scale():
    # The same shape of scores at two scales: a flat threshold keeps all of one and none of the other.
    low = [hit(0, 0.12), hit(10, 0.11), hit(20, 0.05)]
    high = [hit(0, 0.32), hit(10, 0.31), hit(20, 0.25)]
    assert len(cut_off(low, min_score=0.2)) == 0 and len(cut_off(high, min_score=0.2)) == 3
    assert [h.t for h in cut_off(low, within=0.02)] == [h.t for h in cut_off(high, within=0.02)] == [0, 10]


def test_gap_rule_in_seconds_overrides_intervals():
    hits = [hit(0, 0.5), hit(2, 0.5), hit(6, 0.5)]
    assert [(c.start, c.end) for c in merge_hits(hits, every=2)] == [(0, 4), (6, 8)]
    assert [(c.start, c.end) for c in merge_hits(hits, every=2, gap=4)] == [(0, 8)]


def test_padding_never_crosses_the_video_start_or_end():
    clips = merge_hits([hit(0, 0.9), hit(20, 0.5)], every=2)
    padded = pad_and_clamp(clips, pad=1.5, durations={"/v/ep1.mp4": 21.0})
    assert [(c.start, c.end) for c in padded] == [(0.0, 3.5), (18.5, 21.0)]


def test_the_last_sample_ends_at_the_video_end_even_without_padding():
    (clip,) = pad_and_clamp(merge_hits([hit(24.0, 0.9)], every=2), durations={"/v/ep1.mp4": 25.025})
    assert (clip.start, clip.end) == (24.0, 25.025)


def test_padded_clips_that_overlap_merge():
    clips = merge_hits([hit(0, 0.4), hit(6, 0.8)], every=2)
    assert len(clips) == 2
    assert len(pad_and_clamp(clips, pad=1.0)) == 2  # (0, 3) and (5, 9): apart
    assert len(pad_and_clamp(clips, pad=2.0)) == 2  # (0, 4) and (4, 10): touching, still two clips
    (merged,) = pad_and_clamp(clips, pad=2.5)  # (0, 4.5) and (3.5, 10.5): overlapping
    assert (merged.start, merged.end, merged.score) == (0.0, 10.5, 0.8)
    assert [h.t for h in merged.hits] == [0, 6]


def test_clips_stay_inside_the_searched_window():
    clips = merge_hits([hit(10, 0.5), hit(12, 0.6)], every=2)
    (clip,) = pad_and_clamp(clips, pad=3, window=(9.0, 13.0))
    assert (clip.start, clip.end) == (9.0, 13.0)


def test_near_duplicate_shots_fold_into_the_best_clip():
    shot_a, shot_b = unit(1, 0, 0), unit(0, 1, 0)
    almost_a = unit(1, 0.1, 0)  # cosine 0.995 with shot_a
    hits = [hit(0, 0.9, "ep1", shot_a), hit(30, 0.85, "ep1", almost_a), hit(10, 0.8, "ep2", shot_b),
            hit(50, 0.7, "ep3", almost_a)]
    clips = collapse_duplicates(merge_hits(hits, every=2), similarity=0.97)
    assert [(c.episode, c.start) for c in clips] == [("ep1", 0), ("ep2", 10)]
    assert [(d.episode, d.start) for d in clips[0].duplicates] == [("ep1", 30), ("ep3", 50)]
    assert clips[1].duplicates == ()


def test_without_vectors_nothing_is_folded():
    clips = merge_hits([hit(0, 0.9), hit(30, 0.9)], every=2)
    assert len(collapse_duplicates(clips, 0.5)) == 2


def test_shape_clips_caps_clips_per_episode_after_folding_duplicates():
    vectors = [unit(1, 0, 0, 0), unit(0, 1, 0, 0), unit(0, 0, 1, 0), unit(0, 0, 0, 1)]
    hits = [hit(0, 0.9, "a", vectors[0]), hit(10, 0.8, "a", vectors[1]), hit(20, 0.7, "a", vectors[2]),
            hit(0, 0.6, "b", vectors[3])]
    clips = shape_clips(hits, every=2, rules=ClipRules(per_episode=2))
    assert [(c.episode, c.start) for c in clips] == [("a", 0), ("a", 10), ("b", 0)]
    assert [c.score for c in clips] == sorted((c.score for c in clips), reverse=True)


@pytest.mark.parametrize("pad", [0.0, 1.0])
def test_shape_clips_keeps_the_v1_clips_by_default(pad):
    hits = [hit(4.0, 0.5), hit(6.0, 0.9), hit(8.0, 0.7)]
    (clip,) = shape_clips(hits, every=2, rules=ClipRules(pad=pad))
    assert (clip.start, clip.end, clip.score) == (4.0 - pad, 10.0 + pad, 0.9)


def test_a_score_jump_splits_adjacent_hits_at_the_cut():
    # One video, every frame a candidate (a small index): the matching shot
    # (4-8 s, scores ~0.7) must not be merged with its unrelated neighbours.
    scores = {0.0: 0.1, 2.0: 0.12, 4.0: 0.70, 6.0: 0.72, 8.0: 0.15, 10.0: 0.1,
              12.0: 0.11, 14.0: 0.13, 16.0: 0.1, 18.0: 0.12, 20.0: 0.14, 22.0: 0.1}
    hits = [Hit("ep", "/v/ep.mp4", t, s) for t, s in scores.items()]
    clips = shape_clips(hits, every=2.0, rules=ClipRules(duplicate_similarity=None))
    assert (clips[0].start, clips[0].end, clips[0].score) == (4.0, 8.0, 0.72)
    # Without the split rule the same hits make one clip over the whole video.
    whole = shape_clips(hits, every=2.0, rules=ClipRules(duplicate_similarity=None, score_jump=float("inf")))
    assert [(c.start, c.end) for c in whole] == [(0.0, 24.0)]


def test_default_score_jump_scales_with_the_query_spread():
    narrow = [Hit("ep", "/v/ep.mp4", float(t), 0.20 + 0.01 * t) for t in range(12)]
    wide = [Hit("ep", "/v/ep.mp4", float(t), 0.20 + 0.10 * t) for t in range(12)]
    assert default_score_jump(wide) == pytest.approx(10 * default_score_jump(narrow))
    assert default_score_jump(narrow[:9]) == float("inf")  # too few to know the scale


def test_irregular_samples_set_the_gap_and_the_clip_end():
    # Keyframe samples of ep1 (index interval 2 s); ep2 is on the grid.
    samples = {"/v/ep1.mp4": np.array([0.0, 0.4, 0.8, 1.2, 3.0])}
    hits = [hit(0.0, 0.9), hit(0.4, 0.9), hit(1.2, 0.9), hit(3.0, 0.9), hit(0.0, 0.5, "ep2"), hit(2.0, 0.5, "ep2")]
    clips = merge_hits(hits, every=2.0, samples=samples)
    spans = sorted((c.episode, c.start, c.end) for c in clips)
    # 0 and 0.4 are neighbours; the sample at 0.8 (no hit) splits 0.4 from 1.2;
    # 1.2 and 3.0 are neighbours although 1.8 s apart; the last sample ends one interval on.
    assert spans == [("ep1", 0.0, 0.8), ("ep1", 1.2, 5.0), ("ep2", 0.0, 4.0)]
    # An explicit gap is seconds for every video; clip ends still follow the samples.
    spans = sorted((c.episode, c.start, c.end) for c in merge_hits(hits, every=2.0, gap=0.5, samples=samples))
    assert spans == [("ep1", 0.0, 0.8), ("ep1", 1.2, 3.0), ("ep1", 3.0, 5.0), ("ep2", 0.0, 2.0), ("ep2", 2.0, 4.0)]
