"""The last search's results, kept so `scenegrep open N` can play result N.

For an embedded index the file sits in the index folder, so each index
remembers its own last search; for a Chroma server it goes to a per-user
state folder ($XDG_STATE_HOME/scenegrep, else ~/.local/state/scenegrep),
one file per server and database (named by the URL as `connect.location`
spells it, so `host:8000` and `http://host:8000` share it, as they share the
vector cache).

The file is untrusted on reading (it can be edited or damaged): a result is
checked field by field before `open` uses it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass

from ..connect import location
from ..errors import ScenegrepError

RESULTS_NAME = "last-search.json"


@dataclass(frozen=True)
class SavedClip:
    """What `open` needs of one saved result."""

    episode: str
    path: str
    start: float  # seconds
    end: float  # seconds
    start_tc: str  # HH:MM:SS.mmm, for messages


def results_path(db: str | None = None, url: str | None = None) -> str:
    """Where the last search of this index is kept."""
    if url:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        digest = hashlib.sha1(location(None, url).encode("utf-8")).hexdigest()[:12]
        return os.path.join(base, "scenegrep", f"last-search-{digest}.json")
    if not db:
        raise ValueError("results_path needs the index folder or the server url")
    return os.path.join(db, RESULTS_NAME)


def save_results(path: str, query: str, records: list[dict]) -> None:
    """Write the results atomically (a reader never sees half a file). Raises OSError."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump({"query": query, "clips": records}, out, indent=2, ensure_ascii=False)
    os.replace(temporary, path)


def load_result(path: str, number: int) -> tuple[SavedClip, str]:
    """Result `number` (1-based) of the last search, and that search's query.

    Raises ScenegrepError when there was no search yet, no such result, or
    the file is unreadable or damaged (wrong types, missing fields)."""
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except FileNotFoundError:
        raise ScenegrepError(f"no search to open results from (looked for {path}); run `scenegrep search ...` first") from None
    except (OSError, ValueError) as exc:
        raise ScenegrepError(f"cannot read the last results at {path} ({exc.__class__.__name__}); search again") from exc

    def damaged(what: str) -> ScenegrepError:
        return ScenegrepError(f"the last results at {path} are damaged ({what}); search again")

    if not isinstance(saved, dict):
        raise damaged("not a JSON object")
    query = saved.get("query", "")
    clips = saved.get("clips", [])
    if not isinstance(query, str):
        raise damaged("'query' is not text")
    if not isinstance(clips, list):
        raise damaged("'clips' is not a list")
    if not clips:
        raise ScenegrepError(f"the last search ({query!r}) found no clips; search again")
    if not 1 <= number <= len(clips):
        raise ScenegrepError(f"there is no result {number}: the last search ({query!r}) "
                             f"returned {len(clips)} clip(s); use 1 to {len(clips)}")
    return _saved_clip(clips[number - 1], f"result {number}", damaged), query


def _saved_clip(record, name: str, damaged) -> SavedClip:
    if not isinstance(record, dict):
        raise damaged(f"{name} is not a JSON object")
    for field in ("episode", "path", "start_tc"):
        if not isinstance(record.get(field), str) or not record[field]:
            raise damaged(f"{name} has no text {field!r}")
    for field in ("start", "end"):
        value = record.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise damaged(f"{name} has no time {field!r} (seconds, a number from 0)")
    return SavedClip(record["episode"], record["path"], float(record["start"]), float(record["end"]), record["start_tc"])
