"""The process table as tests read it (Linux /proc): children, session members, command lines, liveness."""

from __future__ import annotations

import os


def _stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, session, …); None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _processes():
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields is not None:
                yield int(entry), fields


def children_of(pid: int) -> set[int]:
    """Pids whose parent is `pid` (zombies included)."""
    return {child for child, fields in _processes() if int(fields[1]) == pid}


def session_members(sid: int) -> list[int]:
    """Pids of the live processes whose session id is `sid`."""
    return [member for member, fields in _processes() if int(fields[3]) == sid and fields[0] != "Z"]


def alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def command_of(pid: int) -> str:
    """The command line of `pid`, "" when it is gone (or exiting: its memory is released first)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def status_of(pid: int) -> str:
    """The State and PPid lines of /proc/PID/status, for messages; "?" when gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            return " ".join(line.strip() for line in fh if line.startswith(("State", "PPid")))
    except OSError:
        return "?"
