"""`scenegrep index`: sample, encode and store videos."""

from __future__ import annotations

import json
import time

import click

from scenegrep.pipeline.sample import DEFAULT_EVERY

from .common import (EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, db_option, device_option, fail, json_option, model_option,
                     precision_option)
from .progress import TqdmProgress


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--every", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_EVERY, show_default=True,
              help="Seconds between sampled frames.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Frames per model call. Default: 256 on CUDA, 32 on CPU.")
@click.option("--sampling", type=click.Choice(["grid", "keyframes"]), default="grid", show_default=True,
              help="grid: one frame every --every seconds. keyframes: every keyframe with its own time, "
              "plus samples where keyframes are more than --every apart (faster; irregular times).")
@db_option
@model_option
@device_option
@precision_option
@json_option
def index(paths, every, batch_size, sampling, db, model, device, precision, as_json):
    """Index videos (files or folders, searched recursively) for search.

    Samples one frame every --every seconds, embeds it with CLIP and stores it
    with its episode name and timestamp. Videos already indexed and unchanged
    are skipped, so running it again after an interruption resumes.

    \b
    Examples:
      scenegrep index sample_videos/
      scenegrep index ~/archive/season1 ~/archive/pilot.mkv --every 1
      scenegrep index ~/archive --sampling keyframes --precision bf16
    """
    from scenegrep.pipeline.encode import DEFAULT_MODEL, ClipEncoder
    from scenegrep.pipeline.files import find_videos
    from scenegrep.pipeline.indexer import index_videos
    from scenegrep.pipeline.store import FrameStore, default_db_path, model_to_use, open_client

    started = time.perf_counter()
    videos, problems = find_videos(paths)
    for path, reason in problems:
        click.echo(f"scenegrep: skipping {path}: {reason}", err=True)
    if not videos:
        fail("no video files found in " + ", ".join(paths) + f" (looked for {_extensions_hint()})")

    db = db or default_db_path()
    client = open_client(db)
    encoder = ClipEncoder(model_to_use(client, model, DEFAULT_MODEL), device=device, batch_size=batch_size,
                          precision=precision)
    store = FrameStore.for_indexing(client, encoder.info, every)

    results = []
    with TqdmProgress(len(videos)) as progress:
        for result in index_videos(videos, encoder, store, progress, sampling=sampling):
            results.append(result)
            for warning in result.warnings:
                progress.write(f"scenegrep: warning: {result.video.path}: {warning}")
            if result.status == "failed":
                progress.write(f"scenegrep: skipping {result.video.path}: {result.reason}")

    elapsed = time.perf_counter() - started
    counts = {status: sum(r.status == status for r in results) for status in ("indexed", "unchanged", "failed")}
    failed = counts["failed"] + len(problems)
    new_frames = sum(r.frames for r in results if r.status == "indexed")
    click.echo(
        f"indexed {counts['indexed']} video(s), {new_frames} new frame(s); {counts['unchanged']} unchanged; "
        f"{failed} failed; {elapsed:.1f} s (index: {db}, model: {encoder.info.name}, {_ran_on(encoder)})",
        err=True,
    )
    if as_json:
        click.echo(json.dumps({
            "db": db,
            "model": encoder.info.name,
            "every": store.info.every,
            "sampling": sampling,
            "device": encoder.device if encoder.loaded else None,
            "precision": encoder.precision if encoder.loaded else None,
            "seconds": round(elapsed, 3),
            "videos": [
                {"path": r.video.path, "episode": r.video.episode, "status": r.status, "frames": r.frames,
                 **({"strategy": r.strategy} if r.strategy else {}),
                 **({"reason": r.reason} if r.reason else {}), **({"warnings": r.warnings} if r.warnings else {})}
                for r in results
            ] + [{"path": path, "status": "failed", "frames": 0, "reason": reason} for path, reason in problems],
        }, indent=2))
    if failed:
        raise click.exceptions.Exit(EXIT_PARTIAL if counts["indexed"] + counts["unchanged"] else EXIT_FAILED)
    raise click.exceptions.Exit(EXIT_OK)


def _ran_on(encoder) -> str:
    if not encoder.loaded:
        return "model not loaded: nothing to encode"
    return f"device: {encoder.device}, precision: {encoder.precision}"


def _extensions_hint() -> str:
    from scenegrep.pipeline.files import VIDEO_EXTENSIONS

    return " ".join(sorted(VIDEO_EXTENSIONS))
