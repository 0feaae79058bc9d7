"""The last search's results, kept so `scenegrep open N` can play result N.

For an embedded index the file sits in the index folder, so each index
remembers its own last search; for a Chroma server it goes to a per-user
state folder ($XDG_STATE_HOME/scenegrep, else ~/.local/state/scenegrep),
one file per server.
"""

from __future__ import annotations

import hashlib
import json
import os

from ..errors import ScenegrepError

RESULTS_NAME = "last-search.json"


def results_path(db: str | None = None, url: str | None = None) -> str:
    """Where the last search of this index is kept."""
    if url:
        base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
        digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:12]
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


def load_result(path: str, number: int) -> tuple[dict, str]:
    """Result `number` (1-based) of the last search, and that search's query.

    Raises ScenegrepError when there was no search yet or no such result."""
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except FileNotFoundError:
        raise ScenegrepError(f"no search to open results from (looked for {path}); run `scenegrep search ...` first") from None
    except (OSError, ValueError) as exc:
        raise ScenegrepError(f"cannot read the last results at {path} ({exc.__class__.__name__}); search again") from exc
    clips = saved.get("clips") or []
    if not clips:
        raise ScenegrepError(f"the last search ({saved.get('query', '')!r}) found no clips; search again")
    if not 1 <= number <= len(clips):
        raise ScenegrepError(f"there is no result {number}: the last search ({saved.get('query', '')!r}) "
                             f"returned {len(clips)} clip(s); use 1 to {len(clips)}")
    return clips[number - 1], saved.get("query", "")
