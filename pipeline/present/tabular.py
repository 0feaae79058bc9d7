"""CSV and JSON exports: one row (object) per clip with both timecode forms."""

from __future__ import annotations

import csv
import json

CSV_COLUMNS = (
    "rank", "episode", "path", "start", "end", "start_tc", "end_tc", "start_smpte", "end_smpte",
    "fps", "score", "best_t", "thumbnail", "duplicates",
)
"""Columns of the CSV export; `duplicates` is how many near-identical clips were folded into the row."""


def write_csv(records: list[dict], path: str) -> None:
    """One header row, then one row per clip record (see `fields.clip_record`)."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            row = {key: ("" if record.get(key) is None else record.get(key)) for key in CSV_COLUMNS}
            row["duplicates"] = len(record.get("duplicates", ()))
            writer.writerow(row)


def write_json(records: list[dict], path: str, query: str = "") -> None:
    """`{"query": ..., "clips": [record, ...]}`, records as `search --json` prints them."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"query": query, "clips": records}, out, indent=2, ensure_ascii=False)
        out.write("\n")
