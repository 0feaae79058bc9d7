"""Open a clip in a video player at the right moment.

Commands are argument lists run without a shell, so file names with spaces,
quotes or `$` need no escaping. A stored path is untrusted (a results file
can be edited, a shared server written by anyone): it must be absolute, and
mpv, VLC and ffplay get `--` before it, so a name like `--script=x.lua` is
a file to them, never an option. The system openers (xdg-open, open,
explorer) do not take `--`; an absolute path starts with `/` (or a drive)
there, which no option does. Players, in the order `auto` tries them:
mpv (`--start`), VLC (`--start-time`), ffplay (`-ss`), then the system's
default application (which starts at the beginning: it takes no time).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

from ..errors import ScenegrepError
from .fields import end_ms, start_ms

PLAYERS = ("mpv", "vlc", "ffplay", "system")
"""Players `--player` accepts; `auto` tries them in this order."""

MAC_VLC = "/Applications/VLC.app/Contents/MacOS/VLC"


def system_opener() -> list[str]:
    """The command that opens a file with the default application on this system."""
    if sys.platform == "darwin":
        return ["open"]
    if sys.platform.startswith("win"):
        return ["explorer"]
    return ["xdg-open"]


def player_command(player: str, path: str, start: float, end: float | None = None, executable: str | None = None) -> list[str]:
    """The argument list that plays `path` from `start` seconds (and stops at
    `end`, when given) in `player`. Raises ScenegrepError for a path that is
    not absolute (see the module docstring), ValueError for an unknown player."""
    if not os.path.isabs(path):
        raise ScenegrepError(f"refusing to play {path!r}: a stored video path must be absolute (the results file "
                             "may be damaged or edited); search again")
    if player == "system":
        return system_opener() + [path]
    exe = executable or player
    at, until = start_ms(start), (end_ms(end) if end is not None else None)
    if player == "mpv":
        return [exe, f"--start={at}"] + ([f"--end={until}"] if until else []) + ["--", path]
    if player == "vlc":
        return [exe, f"--start-time={at}"] + ([f"--stop-time={until}"] if until else []) + ["--", path]
    if player == "ffplay":
        return [exe, "-ss", at] + (["-t", f"{max(0.0, float(until) - float(at)):.3f}"] if until else []) + ["--", path]
    raise ValueError(f"unknown player {player!r}; use one of {', '.join(PLAYERS)}")


def find_player(player: str) -> str | None:
    """How to call `player` here (a name on PATH or an app path), None when it is not installed."""
    if player == "system":
        return system_opener()[0] if shutil.which(system_opener()[0]) else None
    if shutil.which(player):
        return player
    if player == "vlc" and sys.platform == "darwin" and os.path.exists(MAC_VLC):
        return MAC_VLC
    return None


def choose_command(player: str, path: str, start: float, end: float | None = None, need_installed: bool = True) -> list[str]:
    """The command for `player` (`auto`: the first installed of PLAYERS).

    With `need_installed` False a player's command is returned even when it
    is missing (for `--print`; `auto` then gives mpv's). Raises
    ScenegrepError when no player is found, naming the command to run once
    one is installed, and for a path that is not absolute."""
    if player == "auto":
        for candidate in PLAYERS:
            executable = find_player(candidate)
            if executable:
                return player_command(candidate, path, start, end, executable)
        if not need_installed:
            return player_command("mpv", path, start, end)
        suggestion = shlex.join(player_command("mpv", path, start, end))
        raise ScenegrepError(
            f"no video player found (looked for mpv, vlc, ffplay and {system_opener()[0]}); "
            f"install one (e.g. `sudo apt install mpv`), then run: {suggestion}"
        )
    executable = find_player(player)
    if executable is None and need_installed:
        raise ScenegrepError(
            f"{system_opener()[0] if player == 'system' else player} is not installed (not on PATH); install it, "
            f"or choose another with --player ({', '.join(PLAYERS)}); the command would be: "
            + shlex.join(player_command(player, path, start, end))
        )
    return player_command(player, path, start, end, executable)


def launch(command: list[str]) -> int:
    """Run `command` (no shell) and wait for the player to close; returns its exit status.

    Raises ScenegrepError when it cannot be started."""
    try:
        return subprocess.run(command, check=False).returncode
    except OSError as exc:
        raise ScenegrepError(f"cannot start {command[0]}: {exc.strerror or exc}") from exc
