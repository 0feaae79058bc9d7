"""Formatting results for people (tables) and programs (JSON)."""

from __future__ import annotations

from scenegrep.pipeline.records import Clip
from scenegrep.pipeline.timecode import Timecode


def clip_to_dict(rank: int, clip: Clip) -> dict:
    return {
        "rank": rank,
        "episode": clip.episode,
        "path": clip.path,
        "start": round(clip.start, 6),
        "end": round(clip.end, 6),
        "start_tc": Timecode(clip.start).to_hms(),
        "end_tc": Timecode(clip.end).to_hms(),
        "score": round(clip.score, 6),
        "best_t": round(clip.best.t, 6),
        "hits": [{"t": round(hit.t, 6), "score": round(hit.score, 6)} for hit in clip.hits],
    }


def clips_table(clips: list[Clip]) -> str:
    rows = [("#", "episode", "start", "end", "score")]
    for rank, clip in enumerate(clips, 1):
        rows.append((str(rank), clip.episode, Timecode(clip.start).to_hms(), Timecode(clip.end).to_hms(), f"{clip.score:.3f}"))
    return table(rows, right_align={0, 4})


def table(rows: list[tuple[str, ...]], right_align: set[int] = frozenset()) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in right_align else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
