"""`scenegrep eval`: measure retrieval quality on labelled images or annotated videos."""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile

import click
from tqdm import tqdm

from .common import (chroma_url_option, db_option, device_option, json_option, model_option, say_waiting, shown,
                     index_location, wait_option)
from .output import table
from .params import FiniteFloatRange


@click.group(name="eval")
def eval_group():
    """Measure how well search finds the right images or moments.

    \b
    Examples:
      scenegrep eval images ~/datasets/mnist-test --model openai/clip-vit-base-patch32
      scenegrep eval videos sample_videos/annotations.json --model sample_videos/mini_clip
    """


@eval_group.command()
@click.argument("folder", type=click.Path())
@model_option
@device_option
@json_option
def images(folder, model, device, as_json):
    """Image-to-image retrieval on a labelled FOLDER (one sub-folder per class).

    Each image is a query against all the others (the CLIP-DB paper's
    protocol); prints top-1 and top-5 class accuracy and mean average precision.

    \b
    Example:
      scenegrep eval images ~/datasets/cifar10-test --json
    """
    from scenegrep.pipeline.encode import DEFAULT_MODEL, ClipEncoder
    from scenegrep.pipeline.evaluate import evaluate_images, labelled_images

    count = len(labelled_images(folder))
    encoder = ClipEncoder(model or DEFAULT_MODEL, device=device)
    with tqdm(total=count, unit="image", file=sys.stderr, disable=None, leave=False) as bar:
        report = evaluate_images(folder, encoder, progress=bar.update)
    if as_json:
        click.echo(json.dumps({"model": encoder.info.name, **report.as_dict()}, indent=2))
        return
    click.echo(table([
        ("images", "classes", "top-1", "top-5", "mAP"),
        (str(report.images), str(report.classes), f"{report.top1:.3f}", f"{report.top5:.3f}",
         f"{report.mean_average_precision:.3f}"),
    ], right_align={0, 1, 2, 3, 4}))


@eval_group.command()
@click.argument("annotations", type=click.Path())
@click.option("--every", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="Sampling interval when the videos must be indexed. Default: the index's, else 2.")
@click.option("--snap/--no-snap", default=False, show_default=True,
              help="Score clips whose edges moved to the shot changes, as `search --snap` returns them.")
@wait_option
@db_option
@chroma_url_option
@model_option
@device_option
@json_option
def videos(annotations, every, snap, wait, db, chroma_url, model, device, as_json):
    """Ask every annotated caption in ANNOTATIONS and check the clips returned.

    Indexes the annotated videos first (into --db or --chroma-url, else a
    temporary index), then reports recall@1 and recall@5 (a returned clip
    overlaps the annotated range), mean reciprocal rank (top 10) and the mean
    temporal IoU of the first overlapping clip, and how far its edges are from
    the annotated shot changes (median and 90th percentile at hard cuts, in
    frames; and how many clips hold a frame of a neighbouring shot).

    \b
    Examples:
      scenegrep eval videos sample_videos/annotations.json --model sample_videos/mini_clip
      scenegrep eval videos annotations.json --chroma-url http://archive-host:8000/eval
    """
    from scenegrep.pipeline.clips import ClipRules
    from scenegrep.pipeline.encode import DEFAULT_MODEL, ClipEncoder
    from scenegrep.pipeline.evaluate import evaluate_videos, read_annotations
    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.index_access import open_index
    from scenegrep.pipeline.indexer import index_videos

    annotated = read_annotations(annotations)
    with contextlib.ExitStack() as stack:
        if not (db or chroma_url):  # no index named: a scratch one, gone afterwards
            db = stack.enter_context(tempfile.TemporaryDirectory(prefix="scenegrep-eval-"))
        place = index_location(db, chroma_url)
        opened = stack.enter_context(open_index(place, write=True, wait=wait, on_wait=say_waiting))  # it indexes
        encoder = ClipEncoder(opened.model_to_load(model, DEFAULT_MODEL), device=device)
        store = opened.for_writing(encoder.info, every)
        for result in index_videos([video_for(v["path"]) for v in annotated], encoder, store):
            for warning in result.warnings:
                click.echo(f"scenegrep: warning: {shown(result.video.path)}: {warning}", err=True)
            if result.status == "failed":
                click.echo(f"scenegrep: skipping {shown(result.video.path)}: {result.reason}", err=True)
        queries = sum(len(v["scenes"]) for v in annotated)
        with tqdm(total=queries, unit="query", file=sys.stderr, disable=None, leave=False) as bar:
            report = evaluate_videos(annotated, encoder, store, ClipRules(snap=snap), progress=bar.update)
    if as_json:
        click.echo(json.dumps({"model": encoder.info.name, **report.as_dict()}, indent=2))
        return
    rows = [("caption", "episode", "scene", "rank", "IoU", "edge errors")]
    for q in report.queries:
        rows.append((q.caption, q.episode, f"{q.start:g}-{q.end:g} s", str(q.rank or "-"), f"{q.iou:.2f}",
                     f"{_frames(q.start_error)} / {_frames(q.end_error)}"))
    click.echo(table(rows, right_align={3, 4, 5}))
    click.echo(
        f"recall@1 {report.recall_at_1:.3f}  recall@5 {report.recall_at_5:.3f}  "
        f"MRR {report.mean_reciprocal_rank:.3f}  mean IoU {report.mean_iou:.3f}  ({len(report.queries)} queries)"
    )
    if report.boundary_errors():
        click.echo(
            f"edge error at cuts: median {report.boundary_error_median:g}  90th percentile "
            f"{report.boundary_error_p90:g} frames  clips into a neighbouring shot: {report.spills}"
        )


def _frames(error: float | None) -> str:
    return "-" if error is None else f"{error:g}"
