"""Options shared by every command, and turning user errors into one line."""

from __future__ import annotations

import os
import sys

import click

from scenegrep.pipeline.errors import ScenegrepError

EXIT_OK = 0
EXIT_FAILED = 1  # the command could not do its job
EXIT_USAGE = 2  # bad options or arguments (click's own code)
EXIT_PARTIAL = 3  # index finished, but some inputs failed
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


def quiet_libraries() -> None:
    """No telemetry, no third-party progress bars or warnings on our stderr."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # the fallback decoder's FFmpeg: we report errors ourselves


def shown(text: str) -> str:
    """A name, path or message as it can be printed for people: undecodable bytes of odd file
    names become �, line breaks, terminal escape sequences and other control characters visible
    escapes (`\\n`, `\\x1b`), so a file name cannot add lines or drive the terminal."""
    from scenegrep.pipeline.present.names import visible

    return visible(str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def fail(message: str, code: int = EXIT_FAILED) -> "click.exceptions.Exit":
    click.echo(f"scenegrep: error: {shown(message)}", err=True)
    raise click.exceptions.Exit(code)


class Group(click.Group):
    """Prints ScenegrepError as one line and exits non-zero; tracebacks are for bugs."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ScenegrepError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            click.echo("\nscenegrep: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)


def db_option(f):
    return click.option(
        "--db",
        envvar="SCENEGREP_DB",
        type=click.Path(file_okay=False),
        default=None,
        help="Index folder (embedded Chroma). Default: $SCENEGREP_DB, else $XDG_DATA_HOME/scenegrep, "
        "else ~/.local/share/scenegrep.",
    )(f)


def index_location(db: str | None, chroma_url: str | None, default_db: str | None = None):
    """The index a command works on (`index_access.Location`): a folder or a server, exactly one.

    An option given on the command line beats the other one's environment
    variable ($SCENEGREP_DB, $SCENEGREP_CHROMA_URL); giving both options is a
    usage error; with neither, the server from the environment wins, else
    `default_db`, else the default folder.
    """
    from click.core import ParameterSource

    from scenegrep.pipeline.index_access import Location

    if db and chroma_url:
        ctx = click.get_current_context()
        db_given = ctx.get_parameter_source("db") == ParameterSource.COMMANDLINE
        url_given = ctx.get_parameter_source("chroma_url") == ParameterSource.COMMANDLINE
        if db_given and url_given:
            raise click.UsageError("give either --db or --chroma-url, not both")
        if db_given:
            chroma_url = None
    return Location.of(None if chroma_url else (db or default_db), chroma_url)


def say_waiting(holder: str) -> None:
    """For IndexLock(on_wait=…): a wait for the lock must not look like a hang."""
    click.echo(f"scenegrep: waiting for {holder} to finish writing to the index…", err=True)


def chroma_url_option(f):
    return click.option(
        "--chroma-url",
        envvar="SCENEGREP_CHROMA_URL",
        default=None,
        metavar="URL",
        help="Use a Chroma server (`chroma run`) instead of the --db folder: http://HOST:PORT, "
        "optionally /DATABASE. Default: $SCENEGREP_CHROMA_URL.",
    )(f)


def model_option(f):
    return click.option(
        "--model",
        envvar="SCENEGREP_MODEL",
        default=None,
        help="CLIP model: Hugging Face hub id or local folder. "
        "Default: the model the index was built with, else openai/clip-vit-base-patch32.",
    )(f)


def device_option(f):
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        help="Where the model runs: auto (CUDA, then Apple MPS, then CPU), cuda, cuda:1, mps or cpu.",
    )(f)


def wait_option(f):
    return click.option(
        "--wait", is_flag=True,
        help="If another scenegrep run is writing to this --db, wait for it instead of stopping.",
    )(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout.")(f)


def precision_option(f):
    return click.option(
        "--precision",
        type=click.Choice(["auto", "fp32", "bf16", "fp16", "int8"]),
        default="auto",
        show_default=True,
        help="Model arithmetic: auto is fp16 on CUDA, bf16 on CPUs where it is faster, else fp32. "
        "int8 (CPU only): the image tower quantised, ~1.5x fp32 on CPUs without bf16.",
    )(f)
