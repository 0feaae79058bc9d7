"""`scenegrep doctor`: is the device, the model and the index what they should be?"""

from __future__ import annotations

import json

import click

from .common import (EXIT_FAILED, chroma_url_option, db_option, device_option, json_option, model_option,
                     precision_option, store_location)

MARKS = {"ok": "ok", "warning": "WARNING", "problem": "PROBLEM"}


@click.command()
@db_option
@chroma_url_option
@model_option
@device_option
@precision_option
@json_option
def doctor(db, chroma_url, model, device, precision, as_json):
    """Check the device, the model and the index; exit 1 if anything is wrong.

    Reports the device and precision the model really runs with, that it maps
    distinct texts and pictures to distinct vectors (a model that maps
    everything to one vector makes every search meaningless), and that the
    index is consistent: every indexed video has all its frames, no frames
    are left over from an interrupted run.

    \b
    Examples:
      scenegrep doctor
      scenegrep doctor --db ./my-index --json
      scenegrep doctor --device cpu --precision bf16
    """
    from scenegrep.pipeline.doctor import Check, check_device, check_embeddings, check_index
    from scenegrep.pipeline.encode import DEFAULT_MODEL, ClipEncoder, model_fingerprint, resolve_model_name
    from scenegrep.pipeline.errors import IndexNotFoundError, ScenegrepError
    from scenegrep.pipeline.lock import index_is_busy
    from scenegrep.pipeline.store import FrameStore, list_indexes, location, open_client

    db, chroma_url = store_location(db, chroma_url)
    where = location(db, chroma_url)
    checks: list[Check] = []
    try:
        client = open_client(db, url=chroma_url, create=False)
        indexes = list_indexes(client)
    except IndexNotFoundError as exc:
        client, indexes = None, []
        checks.append(Check("index", "warning", str(exc)))
    if model:
        wanted = model_fingerprint(resolve_model_name(model))
        indexes = [index for index in indexes if index.fingerprint == wanted]
    name = model or (indexes[0].model if len(indexes) == 1 else DEFAULT_MODEL)
    encoder = None
    try:
        # .load(): lazy otherwise, and the check is that it loads
        encoder = ClipEncoder(name, device=device, precision=precision).load()
        checks.append(Check("model", "ok", f"{encoder.info.name} loads ({encoder.info.dim}-d embeddings)"))
    except ScenegrepError as exc:
        checks.append(Check("model", "problem", str(exc)))
    if encoder is not None:
        checks.append(check_device(encoder))
        checks.extend(check_embeddings(encoder))
    indexing_now = bool(db and indexes) and index_is_busy(db)
    for index in indexes:
        dim = encoder.info.dim if encoder is not None and encoder.info.fingerprint == index.fingerprint else None
        checks.extend(check_index(FrameStore(client, index), dim, indexing_now))
    if client is not None and not indexes:
        checks.append(Check("index", "warning", f"no videos indexed at {where}" + (f" with {model}" if model else "")))

    problems = sum(check.status == "problem" for check in checks)
    if as_json:
        click.echo(json.dumps({"db": where, "ok": not problems, "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        for check in checks:
            click.echo(f"{MARKS[check.status]:8} {check.name}: {check.detail}")
        click.echo(f"{problems} problem(s) found" if problems else "no problems found")
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)
