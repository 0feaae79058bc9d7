"""`scenegrep info`: what is in an index."""

from __future__ import annotations

import json

import click

from .common import chroma_url_option, db_option, json_option, model_option, index_location, shown
from .output import table


@click.command()
@db_option
@chroma_url_option
@model_option
@json_option
def info(db, chroma_url, model, as_json):
    """Show the index: location, model, sampling interval, videos and frames.

    \b
    Examples:
      scenegrep info
      scenegrep info --db ./my-index --json
      scenegrep info --chroma-url http://archive-host:8000
    """
    from scenegrep.pipeline.index_access import open_index

    place = index_location(db, chroma_url)
    report = {"db": place.where, "indexes": []}
    with open_index(place) as opened:
        for index in opened.selected(model):
            store = opened.store(index)
            videos = store.indexed_videos()
            report["indexes"].append({
                "model": index.model,
                "collection": index.collection,
                "dim": index.dim,
                "every": index.every,
                "videos": len(videos),
                "frames": store.frame_count(),
                "per_video": [{"episode": v.episode, "path": v.path, "frames": v.frames, "duration": v.duration}
                              for v in videos],
            })
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"index: {shown(report['db'])}")
    if not report["indexes"]:
        click.echo("no videos indexed")
    for entry in report["indexes"]:
        click.echo(
            f"model: {shown(entry['model'])} ({entry['dim']}-d)\nevery: {entry['every']:g} s\n"
            f"videos: {entry['videos']}\nframes: {entry['frames']}"
        )
        if entry["per_video"]:
            rows = [("episode", "frames", "path")] + [(v["episode"], str(v["frames"]), v["path"]) for v in entry["per_video"]]
            click.echo(table(rows, right_align={1}))
