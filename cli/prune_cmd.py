"""`scenegrep prune`: remove videos whose files are gone; repair orphan and incomplete frames."""

from __future__ import annotations

import json
import os

import click

from .common import (chroma_url_option, db_option, index_location, json_option, model_option, say_waiting, shown,
                     wait_option)


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--repair/--no-repair", default=None,
              help="Also delete orphan frames (left by a killed run) and videos with missing frames, so the next "
              "`index` redoes them. Default: yes for a --db folder; no on a server, where another machine may be "
              "indexing right now.")
@wait_option
@db_option
@chroma_url_option
@model_option
@json_option
def prune(paths, dry_run, repair, wait, db, chroma_url, model, as_json):
    """Remove indexed videos whose files no longer exist (and repair the index).

    With PATHS, only videos under those files or folders are considered (so
    an unplugged drive does not empty the index). Applies to every model's
    index in the store unless --model picks one.

    \b
    Examples:
      scenegrep prune --dry-run
      scenegrep prune ~/archive/season1
      scenegrep prune --chroma-url http://archive-host:8000 --repair
    """
    from scenegrep.pipeline.index_access import open_index
    from scenegrep.pipeline.prune import prune_missing, repair as repair_index

    place = index_location(db, chroma_url)
    if repair is None:
        repair = place.db is not None
    report = {"db": place.where, "dry_run": dry_run, "indexes": []}
    for path in paths:
        if not os.path.exists(path):
            click.echo(f"scenegrep: skipping {shown(path)}: no such file or folder (nothing under it is pruned; "
                       "is the drive mounted?)", err=True)
    with open_index(place, write=not dry_run, create=False, wait=wait, on_wait=say_waiting) as opened:
        for index in opened.selected(model):
            store = opened.store(index)
            gone = prune_missing(store, within=paths or None, dry_run=dry_run)
            orphans, incomplete = repair_index(store, dry_run=dry_run or not repair)
            report["indexes"].append({
                "model": index.model,
                "videos": [{"path": entry.path, "frames": entry.frames} for entry in gone],
                "incomplete": [entry.path for entry in incomplete],
                "orphan_frames": sum(orphans.values()),
                "repaired": bool(repair and not dry_run),
            })
    verb = "would remove" if dry_run else "removed"
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for entry in report["indexes"]:
        for video in entry["videos"]:
            click.echo(f"{verb} {shown(video['path'])} ({video['frames']} frames): the file no longer exists")
        if repair:
            for path in entry["incomplete"]:
                click.echo(f"{verb} {shown(path)}: some of its frames are missing; `scenegrep index` will redo it")
        click.echo(f"{shown(entry['model'])}: {verb} {len(entry['videos'])} missing video(s)"
                   + (f", {len(entry['incomplete'])} incomplete video(s) and {entry['orphan_frames']} orphan "
                      "frame(s)" if repair else ""))
        if not repair and (entry["orphan_frames"] or entry["incomplete"]):
            click.echo(f"scenegrep: kept {entry['orphan_frames']} orphan frame(s) and {len(entry['incomplete'])} "
                       "incomplete video(s): an index may be running on the server; repair them with --repair "
                       "when none is", err=True)
