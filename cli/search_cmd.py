"""`scenegrep search`: find clips by weighted text and image terms, filter, export."""

from __future__ import annotations

import json

import click

from scenegrep.pipeline.errors import ScenegrepError

from .common import (EXIT_FAILED, chroma_url_option, db_option, device_option, index_location, json_option, model_option,
                     precision_option, shown)
from .output import clips_table
from .params import FiniteFloatRange, TimeParam


@click.command()
@click.argument("text", nargs=-1)
@click.option("--image", "images", multiple=True, metavar="[W:]FILE",
              help="Search with a picture (repeatable; combines with TEXT). A W: prefix weights it.")
@click.option("--not", "not_texts", multiple=True, metavar="[W:]TEXT",
              help="Push clips matching this text down (repeatable).")
@click.option("--not-image", "not_images", multiple=True, metavar="[W:]FILE",
              help="Push clips looking like this picture down (repeatable).")
@click.option("-k", "--top", "k", type=click.IntRange(min=1), default=10, show_default=True, help="Clips to return.")
@click.option("--episode", "episodes", multiple=True, metavar="GLOB",
              help="Only these episodes (file name without extension; shell globs like 's01e*'; repeatable).")
@click.option("--from", "start", type=TimeParam(), default=None, metavar="TIME",
              help="Only frames at or after this time in each video (90, 1:30, 00:01:30.5).")
@click.option("--to", "end", type=TimeParam(), default=None, metavar="TIME",
              help="Only frames at or before this time in each video.")
@click.option("--min-score", type=FiniteFloatRange(), default=None, help="Drop frames scoring below this (cosine similarity).")
@click.option("--within", type=FiniteFloatRange(min=0), default=None, metavar="DELTA",
              help="Keep only frames scoring within DELTA of the best one (a cut-off that adapts to the query).")
@click.option("--per-episode", type=click.IntRange(min=1), default=None, metavar="N", help="At most N clips per episode.")
@click.option("--pad", type=FiniteFloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
              help="Seconds added before and after each clip (after snapping; never past the video's start or end).")
@click.option("--snap/--no-snap", default=True, show_default=True,
              help="Move clip edges from the sampling grid to the shot changes around them, to the frame, as "
                   "recorded while indexing (free); videos indexed without them are decoded around each clip's "
                   "edges (slower, a note says so). --no-snap: edges on the sampling grid.")
@click.option("--gap", type=FiniteFloatRange(min=0), default=None, metavar="SECONDS",
              help="Matching frames at most this far apart join one clip. Default: 1.5 sampling intervals.")
@click.option("--keep-duplicates", is_flag=True,
              help="List near-identical shots separately instead of folding them into the best one.")
@click.option("--export", "exports", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the clips to FILE: .csv .json .edl .m3u .xspf .html (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "edl", "m3u", "xspf", "html"], case_sensitive=False),
              default=None, help="Export format when FILE's extension does not say.")
@db_option
@chroma_url_option
@model_option
@device_option
@precision_option
@json_option
def search(text, images, not_texts, not_images, k, episodes, start, end, min_score, within, per_episode, pad, snap,
           gap, keep_duplicates, exports, fmt, db, chroma_url, model, device, precision, as_json):
    """Find the clips that best match TEXT and/or --image.

    Each TEXT is a term; "2:kitchen" gives it weight 2, --not terms push
    matches away. Prints clips (episode, start and end timecodes, score),
    best first; `scenegrep open N` then plays result N. A clip starts and
    ends where its shot does (the cuts between its matching frames and the
    samples around them), else on the sampling grid.

    \b
    Examples:
      scenegrep search "a red ball bouncing"
      scenegrep search "chase" "2:kitchen" --not "title card"
      scenegrep search --image still.jpg -k 5 --episode 'episode_0[12]'
      scenegrep search "chase" --from 1:00 --to 5:00 --within 0.05 --pad 1
      scenegrep search "chase" --export chases.edl --export chases.html
      scenegrep search "chase" --per-episode 1 --json
      scenegrep search "chase" --chroma-url http://archive-host:8000
    """
    from scenegrep.pipeline.blas_threads import search_on_one_blas_thread
    from scenegrep.pipeline.clips import ClipRules
    from scenegrep.pipeline.encode import DEFAULT_MODEL, ClipEncoder
    from scenegrep.pipeline.index_access import open_index
    from scenegrep.pipeline.present import Protected, clip_record, export, format_for
    from scenegrep.pipeline.present.results_file import save_results
    from scenegrep.pipeline.query import Query, query_vector
    from scenegrep.pipeline.search import Filters, search as find_clips

    query = Query.parse(text, images, not_texts, not_images)
    filters = Filters(tuple(episodes), start, end)
    try:
        filters.check()
    except ScenegrepError as exc:  # options that contradict each other: a usage error (exit 2)
        raise click.UsageError(str(exc)) from None
    for path in exports:
        format_for(path, fmt)  # a bad name fails before the model loads
    rules = ClipRules(gap=gap, pad=pad, min_score=min_score, within=within, per_episode=per_episode, snap=snap,
                      **({"duplicate_similarity": None} if keep_duplicates else {}))
    place = index_location(db, chroma_url)
    search_on_one_blas_thread()
    with open_index(place) as opened:
        encoder = ClipEncoder(opened.model_to_load(model, DEFAULT_MODEL), device=device, precision=precision)
        store = opened.for_reading(encoder.info)
        clips = find_clips(store, query_vector(encoder, query), k=k, filters=filters, rules=rules,
                           on_note=lambda line: click.echo(f"scenegrep: note: {line}", err=True))

    records = [clip_record(rank, clip) for rank, clip in enumerate(clips, 1)]
    try:
        save_results(place.results_path, query.describe(), records)
    except OSError as exc:
        click.echo(f"scenegrep: warning: cannot keep the results for `scenegrep open` ({exc.strerror or exc})", err=True)
    thumbnails: dict = {}  # exports named alike share one thumbnail folder: extract once
    protected = Protected.of({place.db: "the index folder"} if place.db else {},
                             {place.results_path: "the results file of `scenegrep open`",
                              **{video.path: "an indexed video" for video in store.indexed_videos()}}) if exports else None
    failed = 0  # each export on its own: one that fails leaves the others
    for path in exports:
        try:
            result = export(clips, path, fmt, title=query.describe(), thumbnail_cache=thumbnails, protected=protected)
        except ScenegrepError as exc:
            click.echo(f"scenegrep: error: {shown(str(exc))}", err=True)
            failed += 1
            continue
        for warning in result.warnings:
            click.echo(f"scenegrep: warning: {shown(warning)}", err=True)
        extra = f" (thumbnails in {shown(result.thumbnails)})" if result.thumbnails else ""
        click.echo(f"wrote {len(clips)} clip(s) to {shown(path)} as {result.format}{extra}", err=True)

    if as_json:
        click.echo(json.dumps(records, indent=2))
    elif clips:
        click.echo(clips_table(clips))
    else:
        click.echo("no matching clips" + _filters_note(filters, rules), err=True)
    if failed:
        raise click.exceptions.Exit(EXIT_FAILED)


def _filters_note(filters, rules) -> str:
    notes = []
    if filters.episodes:
        notes.append("episodes " + ", ".join(filters.episodes))
    if filters.start is not None or filters.end is not None:
        notes.append("the --from/--to window")
    if rules.min_score is not None:
        notes.append(f"--min-score {rules.min_score:g}")
    return f" (with {'; '.join(notes)})" if notes else ""
