"""CMX 3600 EDL export, written by OpenTimelineIO's CMX 3600 adapter.

One event per clip: the clip's video as source, source in/out at the
video's own frame rate (drop-frame `;` at 29.97/59.94), events laid end to
end on the record side, and the clip name and file in comments
(`* FROM CLIP NAME:`, `* FROM CLIP:`), which is what DaVinci Resolve and
Premiere match media by.

An EDL has a single frame rate. Clips of videos at different rates are
therefore written one EDL per rate: the rate of the best clip goes to the
file asked for, the others to `NAME_<rate>fps.edl` beside it.
"""

from __future__ import annotations

import os
import re
from fractions import Fraction
from itertools import groupby

from ..records import Clip
from ..timecode import Timecode
from .fields import clip_rate

FALLBACK_RATE = Fraction(25)
"""Used, with a warning, for a video whose frame rate neither the index nor the file tells."""

REEL = "AX"
"""The CMX reel name for file-based media: episode names cut to 8 characters
would collide (episode_01, episode_02 → "episode0"); editors match the
events to files by the `FROM CLIP NAME` comment instead."""

TITLE_LENGTH = 60
"""CMX 3600 titles are short ASCII; longer queries are cut."""


def rate_label(rate: Fraction) -> str:
    """24 → "24", 30000/1001 → "29.97"."""
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def edl_paths(path: str, rates: list[Fraction]) -> dict[Fraction, str]:
    """Which file each rate's clips go to: the first rate to `path`, the others beside it."""
    stem, extension = os.path.splitext(path)
    return {rate: path if index == 0 else f"{stem}_{rate_label(rate)}fps{extension or '.edl'}" for index, rate in enumerate(rates)}


def edl_text(clips: list[Clip], rate: Fraction, title: str) -> str:
    """A CMX 3600 EDL of `clips` (all at `rate`)."""
    import opentimelineio as otio

    fps = float(rate)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for clip in clips:
        first = Timecode(clip.start).frames(rate)
        last = max(Timecode(clip.end).frames(rate), first + 1)  # exclusive; at least one frame
        track.append(otio.schema.Clip(
            name=os.path.basename(clip.path),
            metadata={"cmx_3600": {"reel": REEL}},
            media_reference=otio.schema.ExternalReference(target_url=_file_url(clip.path)),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(first, fps), otio.opentime.RationalTime(last - first, fps)
            ),
        ))
    timeline = otio.schema.Timeline(name=_ascii_title(title))
    timeline.tracks.append(track)
    return otio.adapters.write_to_string(timeline, "cmx_3600", rate=fps)


def write_edl(clips: list[Clip], path: str, title: str = "scenegrep") -> list[str]:
    """Write `clips` (best first) as CMX 3600, one file per frame rate (see the module docstring).

    Returns warnings (videos of unknown rate, extra files written). Raises OSError if a file cannot be written."""
    warnings = []
    rated = []
    for clip in clips:
        rate = clip_rate(clip)
        if rate is None:
            warnings.append(f"frame rate of {clip.path} unknown (file not readable?); its EDL events assume {FALLBACK_RATE} fps")
            rate = FALLBACK_RATE
        rated.append((rate, clip))
    order = list(dict.fromkeys(rate for rate, _ in rated))  # the best clip's rate first
    targets = edl_paths(path, order)
    groups = {rate: [clip for _, clip in group] for rate, group in groupby(sorted(rated, key=lambda rc: order.index(rc[0])), key=lambda rc: rc[0])}
    if not clips:
        with open(path, "w", encoding="ascii") as out:
            out.write(f"TITLE: {_ascii_title(title)}\n")
        return warnings
    for rate in order:
        with open(targets[rate], "w", encoding="ascii", errors="replace", newline="\n") as out:
            out.write(edl_text(groups[rate], rate, title))
    if len(order) > 1:
        parts = ", ".join(f"{targets[rate]} ({rate_label(rate)} fps, {len(groups[rate])} clip(s))" for rate in order)
        warnings.append(f"the clips come from videos at {len(order)} frame rates and an EDL has one: wrote {parts}")
    return warnings


def _file_url(path: str) -> str:
    from pathlib import Path

    return Path(path).as_uri()


def _ascii_title(title: str) -> str:
    text = re.sub(r"[^\x20-\x7e]+", " ", title.replace("−", "-").replace("×", "x")).strip()
    return text[:TITLE_LENGTH] or "scenegrep"
