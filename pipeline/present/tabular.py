"""CSV and JSON exports: one row (object) per clip with both timecode forms."""

from __future__ import annotations

import csv
import io
import json

CSV_COLUMNS = (
    "rank", "episode", "path", "start", "end", "start_tc", "end_tc", "start_smpte", "end_smpte",
    "fps", "score", "best_t", "thumbnail", "duplicates",
)
"""Columns of the CSV export; `duplicates` is how many near-identical clips were folded into the row."""

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV injection"):
a video named `=HYPERLINK(…)` would run when the CSV is opened. Such text cells get a leading `'`,
which spreadsheets hide and read as "this is text"; numbers (a negative score) stay numbers."""


def spreadsheet_safe(value):
    """A CSV cell: text that a spreadsheet would run as a formula gets a leading `'`; other values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(records: list[dict]) -> str:
    """One header row, then one row per clip record (see `fields.clip_record`). Names stay exact
    (quoting keeps newlines inside a cell) except for the formula guard of `spreadsheet_safe`."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for record in records:
        row = {key: spreadsheet_safe("" if record.get(key) is None else record.get(key)) for key in CSV_COLUMNS}
        row["duplicates"] = len(record.get("duplicates", ()))
        writer.writerow(row)
    return out.getvalue()


def json_text(records: list[dict], query: str = "") -> str:
    """`{"query": ..., "clips": [record, ...]}`, records as `search --json` prints them (names exact: JSON escapes them)."""
    return json.dumps({"query": query, "clips": records}, indent=2, ensure_ascii=False) + "\n"
