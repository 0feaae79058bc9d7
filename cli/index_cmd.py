"""`scenegrep index`: sample, encode and store videos."""

from __future__ import annotations

import contextlib
import json
import time

import click

from .common import (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, chroma_url_option, db_option,
                     device_option, fail, json_option, model_option, precision_option, say_waiting, shown,
                     index_location, wait_option)
from .params import LOCAL_RAY, FiniteFloatRange, RayAddress
from .progress import ClusterProgress, TqdmProgress

STATUSES = ("indexed", "unchanged", "moved", "copied", "failed")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--every", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="Seconds between sampled frames. Default: the index's interval, else 2.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Frames per model call. Default: 256 on CUDA, 32 on CPU.")
@click.option("--sampling", type=click.Choice(["grid", "keyframes"]), default="grid", show_default=True,
              help="grid: one frame every --every seconds. keyframes: every keyframe with its own time, "
              "plus samples where keyframes are more than --every apart (faster; irregular times).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Decoding processes: each decodes a segment of a video, so one long video spreads over all "
              "of them. Default: one per core on 4 or more cores, else 1 (decode in this process).")
@click.option("--ray", "ray_address", type=RayAddress(), is_flag=False, flag_value=LOCAL_RAY, default=None,
              help="Decode and encode on a Ray cluster: auto, a head node (host:6379) or a client address "
              "(ray://host:10001); without an address (put it after the paths), a local Ray instance. The index is "
              "written from here (--db or --chroma-url); every node must read the videos at the same paths. "
              "Needs: pip install 'scenegrep[ray]'.")
@click.option("--prune", is_flag=True,
              help="Afterwards, remove indexed videos under PATHS whose files no longer exist.")
@wait_option
@db_option
@chroma_url_option
@model_option
@device_option
@precision_option
@json_option
def index(paths, every, batch_size, sampling, workers, ray_address, prune, wait, db, chroma_url, model, device, precision,
          as_json):
    """Index videos (files or folders, searched recursively) for search.

    Samples one frame every --every seconds, embeds it with CLIP and stores it
    with its episode name and timestamp; from the frames it decodes it also
    records where shots change, so `search` puts clip edges on them without
    decoding. Unchanged videos are skipped, changed
    ones re-indexed, moved or renamed ones (same content) re-pointed without
    decoding them again. A video counts as indexed only once all its frames are
    stored: after Ctrl-C, `kill` or a crash, run the same command again to resume.

    Files that cannot be read or decoded are named on stderr with the reason and
    the rest are indexed. Exit code 0: all done; 3: some inputs failed; 1: none
    could be indexed; 130: interrupted.

    \b
    Examples:
      scenegrep index sample_videos/
      scenegrep index ~/archive/season1 ~/archive/pilot.mkv --every 1
      scenegrep index ~/archive --sampling keyframes --precision bf16
      scenegrep index ~/archive --prune --workers 8
      scenegrep index ~/archive --chroma-url http://archive-host:8000
      scenegrep index /mnt/archive --ray auto --chroma-url http://archive-host:8000
    """
    from scenegrep.pipeline.encode import DEFAULT_MODEL, ClipEncoder
    from scenegrep.pipeline.files import find_videos
    from scenegrep.pipeline.index_access import open_index
    from scenegrep.pipeline.indexer import index_videos
    from scenegrep.pipeline.prune import prune_missing

    if ray_address and workers:
        fail("--workers is for one machine; with --ray the cluster's CPUs decode (one segment per CPU)", EXIT_USAGE)
    if ray_address:
        from scenegrep.pipeline.ray_index import require_ray

        require_ray()
    started = time.perf_counter()
    videos, problems = find_videos(paths)
    for path, reason in problems:
        click.echo(f"scenegrep: skipping {shown(path)}: {reason}", err=True)
    if not videos and not prune:
        fail("no video files found in " + ", ".join(paths) + f" (looked for {_extensions_hint()})")

    place = index_location(db, chroma_url)
    where = place.where
    results = []
    pruned = []
    cluster = None
    with open_index(place, write=True, wait=wait, on_wait=say_waiting) as opened:
        model_name = opened.model_to_load(model, DEFAULT_MODEL)
        encoder = ClipEncoder(model_name, device=device, batch_size=batch_size, precision=precision)
        store = opened.for_writing(encoder.info, every)
        try:
            with (ClusterProgress if ray_address else TqdmProgress)(len(videos)) as progress:
                if ray_address:
                    from scenegrep.pipeline.ray_index import ClusterStats, EncoderSpec, index_on_ray

                    cluster = ClusterStats()
                    running = index_on_ray(videos, EncoderSpec(encoder.name, device, precision, batch_size),
                                           encoder.input_size, store, progress, sampling=sampling, stats=cluster,
                                           address=None if ray_address == LOCAL_RAY else ray_address)
                else:
                    running = index_videos(videos, encoder, store, progress, sampling=sampling, workers=workers)
                with contextlib.closing(running):  # Ctrl-C in the loop below stops it too
                    for result in running:
                        results.append(result)
                        for warning in result.warnings:
                            progress.write(f"scenegrep: warning: {shown(result.video.path)}: {shown(warning)}")
                        if result.status == "failed":
                            progress.write(f"scenegrep: skipping {shown(result.video.path)}: {shown(result.reason)}")
                        elif result.source:
                            progress.write(f"scenegrep: {shown(result.video.path)}: {result.status} from "
                                           f"{shown(result.source)} ({result.frames} frames reused, nothing re-encoded)")
            if prune:
                pruned = prune_missing(store, within=paths)
                for entry in pruned:
                    click.echo(f"scenegrep: pruned {shown(entry.path)}: the file no longer exists", err=True)
        except KeyboardInterrupt:
            done = sum(r.status != "failed" for r in results)
            click.echo(
                f"\nscenegrep: interrupted: {done} of {len(videos)} video(s) are indexed and kept, the one in "
                "progress is not; run the same `scenegrep index` command again to resume (indexed videos are skipped)",
                err=True,
            )
            raise click.exceptions.Exit(EXIT_INTERRUPTED)

    elapsed = time.perf_counter() - started
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    failed = counts["failed"] + len(problems)
    new_frames = sum(r.frames for r in results if r.status == "indexed")
    reused = [f"{counts[s]} {s}" for s in ("moved", "copied") if counts[s]]
    click.echo(
        f"indexed {counts['indexed']} video(s), {new_frames} new frame(s); {counts['unchanged']} unchanged; "
        + "".join(f"{text}; " for text in reused)
        + (f"{len(pruned)} pruned; " if prune else "")
        + f"{failed} failed; {elapsed:.1f} s (index: {shown(where)}, model: {shown(encoder.info.name)}, "
        f"{_ran_on_cluster(cluster) if cluster else _ran_on(encoder)})",
        err=True,
    )
    if cluster and cluster.workers:
        for line in _per_worker(cluster):
            click.echo(line, err=True)
    if as_json:
        click.echo(json.dumps({
            "db": where,
            "model": encoder.info.name,
            "every": store.info.every,
            "sampling": sampling,
            "device": cluster.device if cluster else (encoder.device if encoder.loaded else None),
            "precision": cluster.precision if cluster else (encoder.precision if encoder.loaded else None),
            **({"ray": _cluster_json(cluster)} if cluster else {}),
            "seconds": round(elapsed, 3),
            "counts": {**counts, "failed": failed, "pruned": len(pruned)},
            "videos": [
                {"path": r.video.path, "episode": r.video.episode, "status": r.status, "frames": r.frames,
                 **({"strategy": r.strategy} if r.strategy else {}),
                 **({"reason": r.reason} if r.reason else {}), **({"warnings": r.warnings} if r.warnings else {}),
                 **({"from": r.source} if r.source else {})}
                for r in results
            ] + [{"path": path, "status": "failed", "frames": 0, "reason": reason} for path, reason in problems],
            "pruned": [entry.path for entry in pruned],
        }, indent=2))
    if failed:
        succeeded = len(results) - counts["failed"]
        raise click.exceptions.Exit(EXIT_PARTIAL if succeeded else EXIT_FAILED)
    raise click.exceptions.Exit(EXIT_OK)


def _ran_on(encoder) -> str:
    if not encoder.loaded:
        return "model not loaded: nothing to encode"
    return f"device: {encoder.device}, precision: {encoder.precision}"


def _ran_on_cluster(cluster) -> str:
    if not cluster.address:
        return "Ray not contacted: nothing to encode"
    if not cluster.encoders:
        return f"Ray {cluster.address}: no encoder started, nothing left to encode"
    return (f"Ray {cluster.address}: {cluster.nodes} node(s), {cluster.cpus:g} CPU(s), {cluster.gpus:g} GPU(s), "
            f"{cluster.encoders} encoder(s) on {cluster.device}, precision: {cluster.precision}; "
            f"{cluster.retried} segment(s) resubmitted")


def _per_worker(cluster) -> list[str]:
    """One line per worker process: what it did and its throughput while busy."""
    lines = []
    for totals in sorted(cluster.workers.values(), key=lambda t: (t.worker.kind, t.worker.node, t.worker.pid)):
        busy = max(totals.busy_seconds, 1e-9)
        lines.append(f"  {totals.worker.kind} {shown(totals.worker.node)} pid {totals.worker.pid}: "
                     f"{totals.segments} segment(s), {totals.frames} frame(s), {totals.video_seconds:.0f} video-s "
                     f"in {totals.busy_seconds:.1f} s busy ({totals.video_seconds / busy:.0f} video-s/s, "
                     f"{totals.frames / busy:.0f} frames/s)")
    return lines


def _cluster_json(cluster) -> dict:
    return {
        "address": cluster.address, "nodes": cluster.nodes, "cpus": cluster.cpus, "gpus": cluster.gpus,
        "encoders": cluster.encoders, "resubmitted": cluster.retried, "segments": cluster.segments,
        "in_flight_limit": cluster.in_flight_limit, "peak_in_flight": cluster.peak_in_flight,
        "workers": [{"kind": t.worker.kind, "node": t.worker.node, "pid": t.worker.pid, "nice": t.worker.nice,
                     "threads": t.worker.threads, "segments": t.segments,
                     "frames": t.frames, "video_seconds": round(t.video_seconds, 3),
                     "busy_seconds": round(t.busy_seconds, 3)} for t in cluster.workers.values()],
    }


def _extensions_hint() -> str:
    from scenegrep.pipeline.files import VIDEO_EXTENSIONS

    return " ".join(sorted(VIDEO_EXTENSIONS))
