"""Neighbouring hits of one video become one clip."""

from scenegrep.pipeline.records import Hit
from scenegrep.pipeline.clips import merge_hits


def hit(t, score, episode="ep1"):
    return Hit(episode=episode, path=f"/v/{episode}.mp4", t=t, score=score)


def test_adjacent_samples_merge_into_one_clip_scored_by_the_best():
    clips = merge_hits([hit(4.0, 0.5), hit(6.0, 0.9), hit(8.0, 0.7)], every=2)
    assert len(clips) == 1
    clip = clips[0]
    assert (clip.start, clip.end, clip.score) == (4.0, 10.0, 0.9)
    assert [h.t for h in clip.hits] == [4.0, 6.0, 8.0]
    assert clip.best.t == 6.0


def test_a_missing_sample_splits_clips_and_clips_rank_by_score():
    clips = merge_hits([hit(0.0, 0.3), hit(2.0, 0.4), hit(6.0, 0.8)], every=2)
    assert [(c.start, c.end, c.score) for c in clips] == [(6.0, 8.0, 0.8), (0.0, 4.0, 0.4)]


def test_ntsc_sample_spacing_still_merges():
    # Samples of a 29.97 fps video are 2.002 s apart, not 2.
    clips = merge_hits([hit(2.002, 0.5), hit(4.004, 0.6)], every=2)
    assert len(clips) == 1 and clips[0].end == 6.004


def test_hits_of_different_videos_never_merge():
    clips = merge_hits([hit(2.0, 0.5, "a"), hit(2.0, 0.6, "b")], every=2)
    assert sorted(c.episode for c in clips) == ["a", "b"]
    assert clips[0].episode == "b"


def test_unsorted_input_is_fine_and_empty_gives_nothing():
    clips = merge_hits([hit(8.0, 0.1), hit(4.0, 0.2), hit(6.0, 0.3)], every=2)
    assert [(c.start, c.end) for c in clips] == [(4.0, 10.0)]
    assert merge_hits([], every=2) == []
