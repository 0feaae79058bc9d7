"""Weighted and negative query terms, episode globs and time windows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS
from test_cli import frame_at

from scenegrep.pipeline.errors import ScenegrepError
from scenegrep.pipeline.query import Query, Term, combine


def test_terms_parse_weights_and_negatives(tmp_path):
    image = tmp_path / "still.png"
    image.write_bytes(b"")
    query = Query.parse(["chase", "2:kitchen", "0.5:sky"], [f"3:{image}"], ["title card"], [str(image)])
    assert query.terms == (
        Term("text", "chase", 1.0), Term("text", "kitchen", 2.0), Term("text", "sky", 0.5),
        Term("image", str(image), 3.0), Term("text", "title card", -1.0), Term("image", str(image), -1.0),
    )
    assert query.describe().startswith("chase + 2×kitchen + 0.5×sky + 3×image:still.png − title card")


def test_an_image_path_that_looks_weighted_is_taken_as_a_path(tmp_path):
    odd = tmp_path / "2:frame.png"
    odd.write_bytes(b"")
    assert Query.parse(images=[str(odd)]).terms == (Term("image", str(odd), 1.0),)


@pytest.mark.parametrize("args, message", [
    ({}, "empty query"),
    ({"texts": ["  "]}, "empty query"),
    ({"not_texts": ["title card"]}, "only --not terms"),
    ({"texts": ["0:chase"]}, "weight 0"),
    ({"texts": ["2:"]}, "no text"),
    ({"texts": ["9" * 400 + ":ball"]}, "too large"),
])
def test_bad_queries_are_refused_with_a_reason(args, message):
    with pytest.raises(ScenegrepError, match=message):
        Query.parse(**args)


def test_the_vector_formula_is_the_normalised_weighted_sum():
    a, b, c = np.eye(3, dtype=np.float32)
    q = combine(np.stack([a, b, c]), [2.0, 1.0, -1.0])
    assert q == pytest.approx(np.array([2, 1, -1]) / np.sqrt(6), abs=1e-6)
    assert float(np.linalg.norm(q)) == pytest.approx(1.0)
    with pytest.raises(ScenegrepError, match="cancel"):
        combine(np.stack([a, a]), [1.0, -1.0])
    with pytest.raises(ScenegrepError, match="too large"):  # finite weights whose sum overflows
        combine(np.stack([a, a]), [1e308, 1e308])


def hit_scores(run_cli, db, *args) -> dict[tuple[str, float], float]:
    """Every frame's score for a query: (episode, t) → score."""
    result = run_cli("search", *args, "--db", db, "--json", "-k", "100", "--keep-duplicates")
    assert result.exit_code == 0, result.stderr
    return {(c["episode"], round(h["t"], 3)): h["score"] for c in json.loads(result.stdout) for h in c["hits"]}


@pytest.fixture(scope="module")
def stills(tmp_path_factory):
    """Two frames of different scenes saved as query images: A (episode_02 at 12.012 s), B (episode_01 at 6 s)."""
    folder = tmp_path_factory.mktemp("stills")
    frame_at(SAMPLE_VIDEOS / "episode_02.mp4", 12.0).save(folder / "a.png")
    frame_at(SAMPLE_VIDEOS / "episode_01.mp4", 6.0).save(folder / "b.png")
    return folder / "a.png", folder / "b.png", ("episode_02", 12.012), ("episode_01", 6.0)


def test_weights_decide_which_of_two_pictures_ranks_first(shared_index, run_cli, stills):
    a, b, at_a, at_b = stills
    favour_a = hit_scores(run_cli, shared_index, "--image", f"2:{a}", "--image", str(b))
    favour_b = hit_scores(run_cli, shared_index, "--image", str(a), "--image", f"2:{b}")
    assert favour_a[at_a] > favour_a[at_b]
    assert favour_b[at_b] > favour_b[at_a]


def test_a_negative_term_pushes_its_scene_down(shared_index, run_cli, stills):
    a, b, at_a, at_b = stills
    plain = hit_scores(run_cli, shared_index, "--image", a)
    minus_b = hit_scores(run_cli, shared_index, "--image", a, "--not-image", b)
    assert minus_b[at_b] < 0 < minus_b[at_a]  # B's frame now scores against the query
    rank = lambda scores, key: sorted(scores, key=scores.get, reverse=True).index(key)  # noqa: E731
    assert rank(minus_b, at_b) > rank(plain, at_b)


def test_text_with_a_negative_text_changes_the_ranking(shared_index, run_cli):
    plain = hit_scores(run_cli, shared_index, "a red circle")
    negative = hit_scores(run_cli, shared_index, "a red circle", "--not", "2:a red circle bouncing on a blue background")
    assert plain.keys() == negative.keys()
    assert sorted(plain, key=plain.get) != sorted(negative, key=negative.get)


def test_terms_that_cancel_out_are_one_line_error(shared_index, run_cli):
    result = run_cli("search", "a red circle", "--not", "a red circle", "--db", shared_index)
    assert result.exit_code == 1 and "cancel each other out" in result.stderr and "Traceback" not in result.stderr


def test_time_window_keeps_frames_and_clips_inside_it(shared_on, run_cli):
    result = run_cli("search", "a shape", *shared_on.args, "--json", "-k", "100", "--keep-duplicates",
                     "--from", "0:05", "--to", "00:00:13.5", "--pad", "2")
    clips = json.loads(result.stdout)
    times = [h["t"] for c in clips for h in c["hits"]]
    assert times and all(5.0 <= t <= 13.5 for t in times)
    assert {round(t, 3) for t in times} >= {6.0, 8.0, 10.0, 12.0, 6.006, 8.008, 10.01, 12.012}
    assert all(5.0 <= c["start"] and c["end"] <= 13.5 for c in clips)


def test_episode_globs_choose_episodes(shared_on, run_cli):
    def episodes(*globs):
        args = [a for g in globs for a in ("--episode", g)]
        result = run_cli("search", "a shape", *shared_on.args, "--json", "-k", "100", "--keep-duplicates", *args)
        assert result.exit_code == 0, result.stderr
        return {c["episode"] for c in json.loads(result.stdout)}

    assert episodes("episode_0[12]") == {"episode_01", "episode_02"}
    assert episodes("*_03") == {"episode_03"}
    assert episodes("episode_01", "episode_03") == {"episode_01", "episode_03"}
    assert episodes() == {"episode_01", "episode_02", "episode_03"}


@pytest.mark.parametrize("args, message, code", [
    (("--episode", "season9*"), "no indexed episode matches 'season9*'; indexed: episode_01, episode_02, episode_03", 1),
    (("--from", "2:00", "--to", "1:00"), "--from (120 s) is after --to (60 s); swap them", 2),  # options contradict: usage
])
def test_filter_mistakes_are_one_line_errors(shared_index, run_cli, args, message, code):
    result = run_cli("search", "x", "--db", shared_index, *args)
    assert result.exit_code == code, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_time_is_a_usage_error(shared_index, run_cli):
    result = run_cli("search", "x", "--db", shared_index, "--from", "1:75")
    assert result.exit_code == 2 and "invalid time '1:75'" in result.stderr


def test_cut_offs_and_per_episode_cap_through_the_cli(shared_index, run_cli):
    base = ("search", "a shape", "--db", shared_index, "--json", "-k", "100", "--keep-duplicates")
    every = json.loads(run_cli(*base).stdout)
    best = max(h["score"] for c in every for h in c["hits"])
    within = json.loads(run_cli(*base, "--within", "0.02").stdout)
    assert all(h["score"] >= best - 0.02 - 1e-6 for c in within for h in c["hits"])
    assert sum(len(c["hits"]) for c in within) < sum(len(c["hits"]) for c in every)
    floor = sorted(h["score"] for c in every for h in c["hits"])[20]
    above = json.loads(run_cli(*base, "--min-score", floor).stdout)
    assert all(h["score"] >= floor - 1e-6 for c in above for h in c["hits"])
    capped = json.loads(run_cli(*base, "--gap", "0", "--per-episode", "1").stdout)
    assert sorted(c["episode"] for c in capped) == ["episode_01", "episode_02", "episode_03"]


def test_query_text_that_is_not_utf8_is_one_line(shared_index, run_subprocess):
    # A Latin-1 "café" from a script in another locale: Python hands it over as surrogate escapes.
    for args in (["caf\udce9"], ["x", "--not", "caf\udce9"]):
        process = run_subprocess("search", *args, "--db", shared_index)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 1, err
        assert "scenegrep: error: query text 'caf\ufffd' is not valid UTF-8" in err and "Traceback" not in err


def test_an_image_query_named_in_another_encoding_is_searched(shared_index, run_cli, tmp_path):
    from PIL import Image

    still = tmp_path / "caf\udce9.png"  # a file name made of Latin-1 bytes
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(still)
    result = run_cli("search", "--image", still, "--db", shared_index, "-k", "1")
    assert result.exit_code == 0, result.stderr
    saved = json.loads((shared_index / "last-search.json").read_text(encoding="utf-8"))
    assert saved["query"] == "image:caf\ufffd.png"
