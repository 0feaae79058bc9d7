"""Formatting results for people (tables); JSON records come from the present stage."""

from __future__ import annotations

from scenegrep.pipeline.records import Clip
from scenegrep.pipeline.timecode import Timecode

from .common import shown


def clips_table(clips: list[Clip]) -> str:
    """Rank, episode, start, end, score; a `same shot` column when near-duplicates were folded in."""
    folded = any(clip.duplicates for clip in clips)
    rows = [("#", "episode", "start", "end", "score") + (("same shot",) if folded else ())]
    for rank, clip in enumerate(clips, 1):
        row = (str(rank), clip.episode, Timecode(clip.start).to_hms(), Timecode(clip.end).to_hms(), f"{clip.score:.3f}")
        if folded:
            row += (f"+{len(clip.duplicates)}" if clip.duplicates else "",)
        rows.append(row)
    return table(rows, right_align={0, 4})


def table(rows: list[tuple[str, ...]], right_align: set[int] = frozenset()) -> str:
    """Aligned columns; cells are shown as `shown` prints names (one line each, no escape sequences)."""
    rows = [tuple(shown(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in right_align else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
