"""Present stage: clips → files people and editors use.

One module per kind of output, each fed the same clips: `tabular` (CSV,
JSON), `edl` (CMX 3600), `playlist` (M3U, XSPF), `sheet` (HTML contact sheet),
with `thumbs` extracting the frame at each clip's best hit from the video and
`fields` formatting the values every output shares through `Timecode`.

Every file is written whole or not at all (`atomic`), never over the index
or an indexed video (`targets`), with untrusted names made safe for its
format (`names`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ScenegrepError
from ..records import Clip
from .fields import clip_record
from .names import visible
from .targets import Protected, check_folder, checked_target

FORMATS = {
    "csv": (".csv",),
    "json": (".json",),
    "edl": (".edl",),
    "m3u": (".m3u", ".m3u8"),
    "xspf": (".xspf",),
    "html": (".html", ".htm"),
}
"""Export formats and the file extensions that select them."""

WITH_THUMBNAILS = frozenset({"csv", "json", "html"})
"""Formats that list a thumbnail per clip; their pictures go to `NAME_thumbs/` next to the file,
which names each one relative to itself (`NAME_thumbs/001_….jpg`, see `beside`)."""


@dataclass
class ExportResult:
    path: str
    format: str
    thumbnails: str | None = None  # the folder, when the format has thumbnails
    warnings: list[str] = field(default_factory=list)


def format_for(path: str, fmt: str | None = None) -> str:
    """The export format: from the file extension, else `fmt`.

    Several exports share one --format, so a name that says its format keeps
    it (`a.csv` stays CSV); `fmt` is for names that do not say (`results.txt`).
    Raises ScenegrepError for an unknown format, or an unknown extension
    without `fmt`."""
    names = ", ".join(FORMATS)
    if fmt and fmt.lower() not in FORMATS:
        raise ScenegrepError(f"unknown export format {fmt!r}; use one of {names}")
    extension = os.path.splitext(path)[1].lower()
    for name, extensions in FORMATS.items():
        if extension in extensions:
            return name
    if fmt:
        return fmt.lower()
    raise ScenegrepError(f"cannot tell the export format of {path!r} from its extension; "
                         f"name it .csv, .json, .edl, .m3u, .xspf or .html, or pass --format ({names})")


def thumbnail_folder(path: str) -> str:
    """`results.html` → `results_thumbs/` beside it."""
    stem = os.path.splitext(os.path.abspath(path))[0]
    return f"{stem}_thumbs"


def beside(file: str, export_path: str) -> str:
    """`file` as the export at `export_path` lists it: relative to the export's folder, with `/`.

    The thumbnail folder is made for the export and named after it, so the two are
    moved, zipped and sent together; a path relative to the export still finds the
    pictures there (a downloaded zip unpacked anywhere, a folder mailed on), where an
    absolute one would name the machine and folder it was written in."""
    return Path(os.path.relpath(file, os.path.dirname(os.path.abspath(export_path)))).as_posix()


def export(clips: list[Clip], path: str, fmt: str | None = None, title: str = "", thumbnail_cache: dict | None = None,
           protected: Protected | None = None) -> ExportResult:
    """Write `clips` (best first) to `path` in `fmt` (default: from the extension).

    Pass the same dict as `thumbnail_cache` to several exports of the same
    clips so that exports sharing a thumbnail folder extract the frames once.
    Nothing is written over or into what `protected` names (the index, its
    videos). Each file is written whole (a temporary file, then a rename):
    a failure leaves no part of it. An existing export is rewritten.

    Raises ScenegrepError for an unknown format, a protected, non-UTF-8 or
    non-regular target, or a file that cannot be written."""
    from .atomic import write_all_atomically
    from .edl import edl_files
    from .playlist import m3u_text, xspf_text
    from .sheet import sheet_html
    from .tabular import csv_text, json_text
    from .thumbs import write_thumbnails

    fmt = format_for(path, fmt)
    target = checked_target(path, protected)
    result = ExportResult(path=path, format=fmt)
    thumbnails: list[str | None] = [None] * len(clips)
    if fmt in WITH_THUMBNAILS:
        result.thumbnails = thumbnail_folder(path)
        check_folder(result.thumbnails, protected)
        cache = {} if thumbnail_cache is None else thumbnail_cache
        if result.thumbnails not in cache:
            cache[result.thumbnails] = write_thumbnails(clips, result.thumbnails)
        written, warnings = cache[result.thumbnails]
        thumbnails = [None if file is None else beside(file, path) for file in written]
        result.warnings = list(warnings)
    records = [clip_record(rank, clip, thumb) for rank, (clip, thumb) in enumerate(zip(clips, thumbnails), 1)]
    if fmt == "edl":
        named, warnings = edl_files(clips, path, title or "scenegrep")
        files = {target if name == path else checked_target(name, protected): text for name, text in named.items()}
        result.warnings += warnings
    elif fmt == "csv":
        files = {target: csv_text(records)}
    elif fmt == "json":
        files = {target: json_text(records, title)}
    elif fmt == "m3u":
        files = {target: m3u_text(clips)}
    elif fmt == "xspf":
        files = {target: xspf_text(clips, title)}
    else:
        files = {target: sheet_html(records, f"scenegrep: {title}" if title else "scenegrep results")}
    try:
        write_all_atomically(files)
    except OSError as exc:
        raise ScenegrepError(f"cannot write {visible(path)}: {exc.strerror or exc}") from exc
    except UnicodeEncodeError as exc:
        raise ScenegrepError(f"cannot write {visible(path)}: it would hold text that is not valid Unicode "
                             f"({visible(exc.object[exc.start:exc.end])})") from exc
    return result


__all__ = ["FORMATS", "ExportResult", "Protected", "clip_record", "export", "format_for"]
