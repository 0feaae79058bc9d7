"""`scenegrep prune`: remove videos whose files are gone, and orphan frames."""

from __future__ import annotations

import contextlib
import json

import click

from .common import chroma_url_option, db_option, json_option, model_option


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--orphans/--no-orphans", default=None,
              help="Also delete frames of unregistered videos (left by a killed run). "
              "Default: yes for a --db folder; no on a server, where another machine may be indexing right now.")
@click.option("--wait", is_flag=True, help="If an `index` is writing to this --db, wait for it instead of stopping.")
@db_option
@chroma_url_option
@model_option
@json_option
def prune(paths, dry_run, orphans, wait, db, chroma_url, model, as_json):
    """Remove indexed videos whose files no longer exist.

    With PATHS, only videos under those files or folders are considered (so
    an unplugged drive does not empty the index). Applies to every model's
    index in the store unless --model picks one.

    \b
    Examples:
      scenegrep prune --dry-run
      scenegrep prune ~/archive/season1
      scenegrep prune --chroma-url http://archive-host:8000 --orphans
    """
    from scenegrep.pipeline.encode import model_fingerprint, resolve_model_name
    from scenegrep.pipeline.errors import ScenegrepError
    from scenegrep.pipeline.lock import IndexLock
    from scenegrep.pipeline.prune import orphan_frames, prune_missing, prune_orphans
    from scenegrep.pipeline.store import FrameStore, default_db_path, list_indexes, location, open_client

    db = None if chroma_url else (db or default_db_path())
    where = location(db, chroma_url)
    if orphans is None:
        orphans = db is not None
    report = {"db": where, "dry_run": dry_run, "indexes": []}
    with IndexLock(db, wait=wait) if db and not dry_run else contextlib.nullcontext():
        client = open_client(db, url=chroma_url, create=False)
        indexes = list_indexes(client)
        if model:
            wanted = model_fingerprint(resolve_model_name(model))
            indexes = [index for index in indexes if index.fingerprint == wanted]
            if not indexes:
                raise ScenegrepError(f"nothing at {where} was indexed with {model}; see `scenegrep info`")
        for index in indexes:
            store = FrameStore(client, index)
            gone = prune_missing(store, within=paths or None, dry_run=dry_run)
            removed = prune_orphans(store, dry_run=dry_run) if orphans else {}
            left = {} if orphans else orphan_frames(store)
            report["indexes"].append({
                "model": index.model,
                "videos": [{"path": entry["path"], "frames": int(entry.get("frames", 0))} for entry in gone],
                "orphan_frames": sum(removed.values()),
                "orphan_frames_kept": sum(left.values()),
            })
    verb = "would remove" if dry_run else "removed"
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for entry in report["indexes"]:
        for video in entry["videos"]:
            click.echo(f"{verb} {video['path']} ({video['frames']} frames): the file no longer exists")
        click.echo(f"{entry['model']}: {verb} {len(entry['videos'])} missing video(s) "
                   f"and {entry['orphan_frames']} orphan frame(s)")
        if entry["orphan_frames_kept"]:
            click.echo(f"scenegrep: kept {entry['orphan_frames_kept']} orphan frame(s): an index may be running "
                       "on the server; remove them with --orphans when none is", err=True)
