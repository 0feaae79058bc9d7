"""Present stage: clips → files people and editors use.

One module per kind of output, each fed the same clips: `tabular` (CSV,
JSON), `edl` (CMX 3600), `playlist` (M3U, XSPF), `sheet` (HTML contact sheet),
with `thumbs` extracting the frame at each clip's best hit from the video and
`fields` formatting the values every output shares through `Timecode`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..errors import ScenegrepError
from ..records import Clip
from .fields import clip_record

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
"""Formats that list a thumbnail per clip; their pictures go to `NAME_thumbs/` next to the file."""


@dataclass
class ExportResult:
    path: str
    format: str
    thumbnails: str | None = None  # the folder, when the format has thumbnails
    warnings: list[str] = field(default_factory=list)


def format_for(path: str, fmt: str | None = None) -> str:
    """The export format: `fmt` if given, else from the file extension.

    Raises ScenegrepError for an unknown format or extension."""
    names = ", ".join(FORMATS)
    if fmt:
        if fmt.lower() not in FORMATS:
            raise ScenegrepError(f"unknown export format {fmt!r}; use one of {names}")
        return fmt.lower()
    extension = os.path.splitext(path)[1].lower()
    for name, extensions in FORMATS.items():
        if extension in extensions:
            return name
    raise ScenegrepError(f"cannot tell the export format of {path!r} from its extension; "
                         f"name it .csv, .json, .edl, .m3u, .xspf or .html, or pass --format ({names})")


def thumbnail_folder(path: str) -> str:
    """`results.html` → `results_thumbs/` beside it."""
    stem = os.path.splitext(os.path.abspath(path))[0]
    return f"{stem}_thumbs"


def export(clips: list[Clip], path: str, fmt: str | None = None, title: str = "", thumbnail_cache: dict | None = None) -> ExportResult:
    """Write `clips` (best first) to `path` in `fmt` (default: from the extension).

    Pass the same dict as `thumbnail_cache` to several exports of the same
    clips so that exports sharing a thumbnail folder extract the frames once.

    Raises ScenegrepError for an unknown format or a file that cannot be written."""
    from .edl import write_edl
    from .playlist import write_m3u, write_xspf
    from .sheet import write_sheet
    from .tabular import write_csv, write_json
    from .thumbs import write_thumbnails

    fmt = format_for(path, fmt)
    result = ExportResult(path=path, format=fmt)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ScenegrepError(f"cannot write {path}: folder {folder} does not exist")
    thumbnails: list[str | None] = [None] * len(clips)
    if fmt in WITH_THUMBNAILS:
        result.thumbnails = thumbnail_folder(path)
        cache = {} if thumbnail_cache is None else thumbnail_cache
        if result.thumbnails not in cache:
            cache[result.thumbnails] = write_thumbnails(clips, result.thumbnails)
        thumbnails, warnings = cache[result.thumbnails]
        result.warnings = list(warnings)
    records = [clip_record(rank, clip, thumb) for rank, (clip, thumb) in enumerate(zip(clips, thumbnails), 1)]
    try:
        if fmt == "csv":
            write_csv(records, path)
        elif fmt == "json":
            write_json(records, path, title)
        elif fmt == "edl":
            result.warnings += write_edl(clips, path, title or "scenegrep")
        elif fmt == "m3u":
            write_m3u(clips, path)
        elif fmt == "xspf":
            write_xspf(clips, path, title)
        else:
            write_sheet(records, path, f"scenegrep: {title}" if title else "scenegrep results")
    except OSError as exc:
        raise ScenegrepError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return result


__all__ = ["FORMATS", "ExportResult", "clip_record", "export", "format_for"]
