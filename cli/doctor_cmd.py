"""`scenegrep doctor`: is the device, the model and the index what they should be?"""

from __future__ import annotations

import contextlib
import json

import click

from .common import (EXIT_FAILED, chroma_url_option, db_option, device_option, index_location, json_option, model_option,
                     precision_option, shown)

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
    index is consistent: every indexed video has all its frames and Chroma
    can read them back, no frames are left over from an interrupted run, the
    vector index answers for the stored frames, and the local vector copies
    equal the index. It changes nothing of the index (Chroma's own client
    still updates its database files when it opens them).

    \b
    Examples:
      scenegrep doctor
      scenegrep doctor --db ./my-index --json
      scenegrep doctor --device cpu --precision bf16
    """
    from scenegrep.pipeline.doctor import Check, check_device, check_embeddings, check_frames_readable, check_index
    from scenegrep.pipeline.encode import DEFAULT_MODEL, ClipEncoder
    from scenegrep.pipeline.errors import IndexNotFoundError, ModelMismatchError, ScenegrepError
    from scenegrep.pipeline.index_access import open_index

    place = index_location(db, chroma_url)
    where = place.where
    checks: list[Check] = []
    with contextlib.ExitStack() as stack:
        opened, indexes = None, []
        try:
            opened = stack.enter_context(open_index(place))
            indexes = opened.selected(model)
        except (IndexNotFoundError, ModelMismatchError) as exc:
            checks.append(Check("index", "warning", str(exc)))
        except ScenegrepError as exc:  # damaged, unreachable, being created
            checks.append(Check("index", "problem", str(exc)))
        name = model or DEFAULT_MODEL
        if opened is not None and not model and opened.indexes:
            try:
                name = opened.model_to_load(None, DEFAULT_MODEL)
            except ModelMismatchError as exc:  # several models: checking one at random would prove nothing
                name = None
                checks.append(Check("model", "problem", str(exc)))
        encoder = None
        if name:
            try:
                encoder = ClipEncoder(name, device=device, precision=precision).load()  # the check is that it loads
                checks.append(Check("model", "ok", f"{encoder.info.name} loads ({encoder.info.dim}-d embeddings)"))
            except ScenegrepError as exc:
                checks.append(Check("model", "problem", str(exc)))
        if encoder is not None:
            checks.append(check_device(encoder))
            checks.extend(check_embeddings(encoder))
        indexing_now = bool(indexes) and place.writer_running()
        for index in indexes:
            dim = encoder.info.dim if encoder is not None and encoder.info.fingerprint == index.fingerprint else None
            store = opened.store(index)
            try:
                checks.extend(check_index(store, dim, indexing_now))
                checks.extend(check_frames_readable(store, indexing_now))
            except ScenegrepError as exc:
                checks.append(Check(f"index {index.model}", "warning" if indexing_now else "problem", str(exc)))
        if opened is not None and not opened.indexes:
            checks.append(Check("index", "warning", f"no videos indexed at {where}"))

    problems = sum(check.status == "problem" for check in checks)
    if as_json:
        click.echo(json.dumps({"db": where, "ok": not problems, "checks": [c.as_dict() for c in checks]}, indent=2))
    else:
        for check in checks:
            click.echo(f"{MARKS[check.status]:8} {shown(check.name)}: {shown(check.detail)}")
        click.echo(f"{problems} problem(s) found" if problems else "no problems found")
    if problems:
        raise click.exceptions.Exit(EXIT_FAILED)
