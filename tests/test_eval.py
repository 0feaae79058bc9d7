"""`scenegrep eval`: the CLIP-DB protocol on labelled images, and annotated videos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS
from PIL import Image

from scenegrep.pipeline.errors import ScenegrepError
from scenegrep.pipeline.evaluate import _iou, _mean_average_precision, labelled_images


def make_labelled_folder(root, per_class=6, seed=0):
    """Three classes of noisy flat-colour pictures: nearest neighbours should share a class."""
    rng = np.random.default_rng(seed)
    colours = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220)}
    for name, colour in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 12, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def test_eval_images_reports_the_paper_metrics(tmp_path, tiny_model, run_cli):
    folder = make_labelled_folder(tmp_path / "colours")
    result = run_cli("eval", "images", folder, "--model", tiny_model, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["images"], report["classes"]) == (18, 3)
    # Flat colours are easy even for a random network: same-class pictures are nearest.
    assert report["top1"] >= 0.9
    assert report["top1"] <= report["top5"] <= 1.0
    assert 0.5 < report["mean_average_precision"] <= 1.0


def test_mean_average_precision_is_exact():
    # Five unit vectors at these angles; a query ranks the others by angle (no ties).
    angles = np.radians([0, 10, 40, 55, 90])
    vectors = np.stack([np.cos(angles), np.sin(angles)], axis=1).astype(np.float32)
    labels = np.array(["a", "a", "b", "b", "a"])
    # Each query's ranking (same class marked *) and its average precision, by hand:
    #   0°:  10°*, 40°,  55°,  90°*  → (1/1 + 2/4) / 2 = 3/4
    #   10°: 0°*,  40°,  55°,  90°*  → (1/1 + 2/4) / 2 = 3/4
    #   40°: 55°*, 10°,  0°,   90°   → 1/1             = 1
    #   55°: 40°*, 90°,  10°,  0°    → 1/1             = 1
    #   90°: 55°,  40°,  10°*, 0°*   → (1/3 + 2/4) / 2 = 5/12
    assert _mean_average_precision(vectors, labels) == pytest.approx((3 / 4 + 3 / 4 + 1 + 1 + 5 / 12) / 5)


def test_temporal_iou():
    assert _iou(0, 10, 5, 15) == pytest.approx(5 / 15)
    assert _iou(0, 4, 4, 8) == 0.0
    assert _iou(2, 6, 2, 6) == 1.0


def test_eval_videos_reports_per_query_results(backend, tiny_model, run_cli, annotations):
    result = run_cli("eval", "videos", SAMPLE_VIDEOS / "annotations.json", "--model", tiny_model,
                     *backend.args, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    scenes = sum(len(v["scenes"]) for v in annotations["videos"])
    assert report["queries"] == len(report["per_query"]) == scenes
    assert 0 <= report["recall_at_1"] <= report["recall_at_5"] <= 1
    for query in report["per_query"]:
        assert (query["rank"] is None) == (query["iou"] == 0.0)
    assert len(backend.store().indexed_videos()) == len(annotations["videos"])  # indexed where it was told to


def test_bad_eval_inputs_are_one_line_errors(tmp_path, tiny_model, run_cli):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a").mkdir()
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    for args, message in [
        (("eval", "images", tmp_path / "missing"), "no such folder"),
        (("eval", "images", tmp_path / "only"), "at least two class"),
        (("eval", "videos", tmp_path / "none.json", "--model", tiny_model), "no such annotations file"),
        (("eval", "videos", bad, "--model", tiny_model), "not an annotations file"),
    ]:
        result = run_cli(*args)
        assert result.exit_code == 1 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_labelled_images_lists_classes_by_folder(tmp_path):
    folder = make_labelled_folder(tmp_path / "c", per_class=2)
    (folder / "red" / "notes.txt").write_text("not an image")
    items = labelled_images(str(folder))
    assert len(items) == 6 and {label for _, label in items} == {"red", "green", "blue"}
    with pytest.raises(ScenegrepError):
        labelled_images(str(tmp_path / "nope"))
