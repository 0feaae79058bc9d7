"""`scenegrep open N`: play result N of the last search in a video player."""

from __future__ import annotations

import shlex

import click

from .common import chroma_url_option, db_option, fail, index_location, shown


@click.command("open")
@click.argument("number", type=click.IntRange(min=1), metavar="N")
@click.option("--player", type=click.Choice(["auto", "mpv", "vlc", "ffplay", "system"]), default="auto", show_default=True,
              help="Player to use; auto takes the first installed of mpv, vlc, ffplay, then the system default.")
@click.option("--clip", "clip_only", is_flag=True, help="Stop at the clip's end instead of playing on.")
@click.option("--print", "print_only", is_flag=True, help="Print the command instead of running it.")
@db_option
@chroma_url_option
def open_result(number, player, clip_only, print_only, db, chroma_url):
    """Open result N of the last search at its start time.

    The last search of each index is remembered: in the --db folder, or for
    --chroma-url in a per-user state folder (~/.local/state/scenegrep).

    mpv starts with --start, VLC with --start-time, ffplay with -ss; the
    system default player (xdg-open, open) starts at the beginning. The
    command runs directly, never through a shell.

    \b
    Examples:
      scenegrep search "a red ball bouncing"
      scenegrep open 1
      scenegrep open 2 --player vlc --clip
      scenegrep open 1 --print
      scenegrep open 1 --chroma-url http://archive-host:8000
    """
    from scenegrep.pipeline.present.player import choose_command, launch
    from scenegrep.pipeline.present.results_file import load_result

    clip, _ = load_result(index_location(db, chroma_url).results_path, number)
    end = clip.end if clip_only else None
    command = choose_command(player, clip.path, clip.start, end, need_installed=not print_only)
    if print_only:
        click.echo(shown(shlex.join(command)))  # a control character in a name must not reach the terminal
        return
    click.echo(f"opening #{number}: {shown(clip.episode)} at {clip.start_tc} with {command[0]}", err=True)
    if command[0] in ("xdg-open", "open", "explorer"):
        click.echo(f"scenegrep: the system player starts at the beginning; seek to {clip.start_tc} "
                   "(install mpv or vlc to jump there)", err=True)
    status = launch(command)
    if status != 0:
        fail(f"{command[0]} exited with status {status}; try another player with --player, "
             f"or run it yourself: {shown(shlex.join(command))}")
