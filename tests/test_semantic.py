"""Search finds the right moments: the trained miniature CLIP on the annotated sample videos.

Unlike the random tiny model, sample_videos/mini_clip tells shapes and colours
apart, so these tests fail when retrieval is wrong.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import REPO, SAMPLE_VIDEOS, index_once
from PIL import Image

MINI_CLIP = SAMPLE_VIDEOS / "mini_clip"


@pytest.fixture(scope="module")
def mini_index(tmp_path_factory):
    db = tmp_path_factory.mktemp("mini") / "db"
    index_once(SAMPLE_VIDEOS, "--model", MINI_CLIP, "--db", db)
    return db


def search(run_cli, db, *args):
    result = run_cli("search", *args, "--db", db, "--json", "--keep-duplicates")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_every_annotated_caption_finds_its_scene(run_cli, mini_index):
    result = run_cli("eval", "videos", SAMPLE_VIDEOS / "annotations.json", "--model", MINI_CLIP, "--db", mini_index, "--json",
                     "--snap")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["queries"] == 15
    assert report["recall_at_1"] >= 0.9
    assert report["mean_iou"] >= 0.95  # clips start and end with their scenes
    assert report["boundary_error_median"] <= 1 and report["clips_into_neighbouring_shots"] == 0


def test_quick_start_query_finds_the_red_ball_clip(run_cli, mini_index):
    # "a red ball bouncing": the only red circle is episode_01, 0-5 s; samples
    # at 0, 2, 4 s make the grid clip 00:00:00 to 00:00:06; --snap ends it at the cut.
    top = search(run_cli, mini_index, "a red ball bouncing", "-k", "3")[0]
    assert (top["episode"], top["start_tc"], top["end_tc"]) == ("episode_01", "00:00:00.000", "00:00:06.000")
    assert (top["grid_start"], top["grid_end"]) == (None, None)
    snapped = search(run_cli, mini_index, "a red ball bouncing", "-k", "3", "--snap")[0]
    assert (snapped["episode"], snapped["start_tc"], snapped["end_tc"]) == ("episode_01", "00:00:00.000", "00:00:05.000")
    assert (snapped["grid_start"], snapped["grid_end"]) == (0.0, 6.0)


def test_an_image_query_finds_its_own_scene(run_cli, mini_index, tmp_path, annotations):
    import av

    # A frame between two samples (17 s) of episode_01's 15-20 s scene.
    with av.open(str(SAMPLE_VIDEOS / "episode_01.mp4")) as container:
        stream = container.streams.video[0]
        frame = next(f for f in container.decode(stream) if f.pts * stream.time_base >= 17)
    still = tmp_path / "still.jpg"
    frame.to_image().save(still, quality=85)
    top = search(run_cli, mini_index, "--image", still, "-k", "3")[0]
    assert top["episode"] == "episode_01"
    assert top["start"] < 20 and top["end"] > 15


def test_a_negative_term_pushes_a_scene_down(run_cli, mini_index):
    def rank_of_red_ball(*query):
        clips = search(run_cli, mini_index, *query, "-k", "10")
        return next(c["rank"] for c in clips if c["episode"] == "episode_01" and c["start"] < 5)

    assert rank_of_red_ball("a red ball bouncing") == 1
    # The red ball bounces on a blue background: avoiding blue backgrounds demotes it.
    assert rank_of_red_ball("a red ball bouncing", "--not", "a blue background") > 1


def test_an_added_term_pulls_its_scene_up(run_cli, mini_index):
    plain = search(run_cli, mini_index, "a red ball bouncing", "-k", "1")[0]
    both = search(run_cli, mini_index, "a red ball bouncing", "a yellow background", "-k", "1")[0]
    assert (plain["episode"], plain["start"]) == ("episode_01", 0.0)
    # The red thing on a yellow background: episode_03's red square, 14-20 s.
    assert both["episode"] == "episode_03" and 14 <= both["start"] < 20


def test_eval_images_on_rendered_shapes(run_cli, tmp_path):
    sys.path.insert(0, str(REPO / "tools"))
    from scenes import Scene, render

    rng = np.random.default_rng(7)
    classes = {"red-circle": ("circle", "red"), "blue-square": ("square", "blue"),
               "yellow-star": ("star", "yellow"), "green-triangle": ("triangle", "green")}
    for name, (shape, colour) in classes.items():
        (tmp_path / "shapes" / name).mkdir(parents=True)
        for i in range(8):
            background = rng.choice([c for c in ("white", "black") if c != colour])
            scene = Scene(shape, colour, str(background), x=float(rng.uniform(0.35, 0.65)),
                          y=float(rng.uniform(0.35, 0.65)), size=float(rng.uniform(0.3, 0.5)))
            Image.fromarray(render(scene, 0.0)).save(tmp_path / "shapes" / name / f"{i}.png")
    result = run_cli("eval", "images", tmp_path / "shapes", "--model", MINI_CLIP, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["images"], report["classes"]) == (32, 4)
    assert report["top1"] >= 0.9 and report["top5"] >= report["top1"]
    assert report["mean_average_precision"] >= 0.7
