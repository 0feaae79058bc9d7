"""`scenegrep search`: find clips by text and/or image."""

from __future__ import annotations

import json

import click

from .common import db_option, device_option, json_option, model_option, precision_option
from .output import clip_to_dict, clips_table


@click.command()
@click.argument("text", nargs=-1)
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=False),
              help="Search with a picture (repeatable; combines with TEXT).")
@click.option("-k", "--top", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Clips to return.")
@click.option("--episode", default=None, help="Only search this episode (file name without extension).")
@db_option
@model_option
@device_option
@precision_option
@json_option
def search(text, images, k, episode, db, model, device, precision, as_json):
    """Find the clips that best match TEXT and/or --image.

    Several TEXT arguments are combined into one query. Prints a table of
    clips (episode, start and end timecodes, score), best first.

    \b
    Examples:
      scenegrep search "a red ball bouncing"
      scenegrep search --image still.jpg -k 5
      scenegrep search "chase" --episode episode_01 --json
    """
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.search import load_image, query_embedding, search as find_clips
    from scenegrep.pipeline.store import FrameStore, default_db_path, model_for_search, open_client
    from scenegrep.pipeline.errors import ScenegrepError

    if not any(t.strip() for t in text) and not images:
        raise ScenegrepError('empty query: give search text (scenegrep search "a red ball") or --image FILE')
    pictures = [load_image(path) for path in images]
    db = db or default_db_path()
    client = open_client(db, create=False)
    encoder = ClipEncoder(model_for_search(client, model, db), device=device, precision=precision)
    store = FrameStore.for_search(client, encoder.info, db)
    clips = find_clips(store, query_embedding(encoder, text, pictures), k=k, episode=episode)
    if as_json:
        click.echo(json.dumps([clip_to_dict(rank, clip) for rank, clip in enumerate(clips, 1)], indent=2))
    elif clips:
        click.echo(clips_table(clips))
    else:
        click.echo("no matching clips" + (f" in episode {episode!r}" if episode else ""), err=True)
