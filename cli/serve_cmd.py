"""`scenegrep serve`: search, watch and export from a local web page."""

from __future__ import annotations

import click

from .common import chroma_url_option, db_option, device_option, fail, index_location, model_option, precision_option

DEFAULT_PORT = 8765


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs the access token.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True, help="Port to listen on.")
@click.option("--token", default=None, metavar="TOKEN",
              help="Access token required on every request (at least 16 letters, digits, - or _). "
                   "Default: none on loopback, a new random one on any other address.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@db_option
@chroma_url_option
@model_option
@device_option
@precision_option
def serve(host, port, token, open_browser, db, chroma_url, model, device, precision):
    """Serve a web page to search, watch and export clips.

    The page takes the same query language as `search` (terms split by ;
    with 2: weights, terms to avoid, a picture by drop or paste), plays each
    clip from its start, and exports as the CLI does. The model loads once.
    JSON API: /api/search, /api/info, /api/export, described at
    /api/openapi.json.

    \b
    Examples:
      scenegrep serve --open
      scenegrep serve --db ./my-index --port 9000
      scenegrep serve --host 0.0.0.0            # prints a URL with a new token
    """
    import logging
    import secrets
    import threading
    import webbrowser

    import uvicorn

    from scenegrep.serve.app import create_app
    from scenegrep.serve.engine import Engine
    from scenegrep.serve.net import check_port, is_loopback, page_url, valid_token

    loopback = is_loopback(host)
    if token is not None and not valid_token(token):
        raise click.BadParameter("use at least 16 letters, digits, - or _", param_hint="--token")
    if not loopback and token is None:
        token = secrets.token_urlsafe(24)
    problem = check_port(host, port)
    if problem:
        fail(problem)
    place = index_location(db, chroma_url)
    click.echo(f"scenegrep: loading the model and opening {place.where}…", err=True)
    engine = Engine(place, model, device=device, precision=precision)
    engine.warm_up()
    url = page_url(host, port, token)
    logging.basicConfig(level=logging.WARNING, format="scenegrep: %(levelname)s: %(message)s")
    app = create_app(engine, token=token, allow_open=loopback)
    click.echo(url)
    click.echo(f"scenegrep: serving {engine.store.info.model} at {url} (Ctrl-C stops)", err=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, [url]).start()
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
    finally:
        engine.close()
