"""Exports as downloads: written by the CLI's own `export`, into a private
temporary folder, sent as one file, or as a zip when the CLI writes several
(a sheet or table with its thumbnail folder, EDLs split by frame rate)."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass

from scenegrep.pipeline.present import FORMATS, export
from scenegrep.pipeline.records import Clip

EXPORT_STEM = "scenegrep-results"
"""The downloaded file's name without extension (never taken from the request)."""


@dataclass(frozen=True)
class Download:
    path: str  # the file to send
    filename: str  # the name the browser saves it as
    folder: str  # the temporary folder to delete once sent
    warnings: tuple[str, ...] = ()


def export_download(clips: list[Clip], fmt: str, title: str) -> Download:
    """Write `clips` as `fmt` (one of `present.FORMATS`). The caller deletes `folder`.

    Raises ScenegrepError as `export` does."""
    folder = tempfile.mkdtemp(prefix="scenegrep-export-")
    try:
        written = os.path.join(folder, "files")
        os.mkdir(written)
        name = f"{EXPORT_STEM}{FORMATS[fmt][0]}"
        result = export(clips, os.path.join(written, name), fmt, title=title)
        files = sorted(os.path.relpath(os.path.join(root, file), written)
                       for root, _, names in os.walk(written) for file in names)
        if files == [name]:
            return Download(os.path.join(written, name), name, folder, tuple(result.warnings))
        archive = os.path.join(folder, f"{EXPORT_STEM}-{fmt}.zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for file in files:
                out.write(os.path.join(written, file), file)
        return Download(archive, os.path.basename(archive), folder, tuple(result.warnings))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
