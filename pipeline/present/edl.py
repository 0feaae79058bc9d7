"""CMX 3600 EDL export, written by OpenTimelineIO's CMX 3600 adapter.

One event per clip: the clip's video as source, source in/out as timecode,
events laid end to end on the record side, and the clip name and file in
comments (`* FROM CLIP NAME:`, `* FROM CLIP:`), which is what DaVinci
Resolve and Premiere match media by.

Timecode has a frame rate, and editors take only a few (`TIMECODE_RATES`).
A video at one of them is timed at its own rate (drop-frame `;` at
29.97/59.94). Any other video (10, 12, 15 or 120 fps, a variable frame rate,
an unknown one) is timed at the rate `timecode_rate` chooses: its times go
to the nearest frame of that rate (exactly onto its frames when the rate is a
whole multiple, as 30 is of 10), and a comment under the event says so
(`* SOURCE FRAME RATE 10 FPS, TIMECODE AT 30 FPS ...`).

An EDL has a single frame rate. Clips timed at different rates are
therefore written one EDL per rate: the rate of the best clip goes to the
file asked for, the others to `NAME_<rate>fps.edl` beside it.

The file is UTF-8: names keep their accents (CMX 3600 predates Unicode;
Resolve, Premiere and OpenTimelineIO read UTF-8 comments) and show control
characters as visible escapes (`names.visible`), so a name cannot add a line.
"""

from __future__ import annotations

import math
import os
import re
from fractions import Fraction

from ..records import Clip
from ..timecode import Timecode
from .fields import clip_rate
from .names import visible

TIMECODE_RATES = tuple(Fraction(rate) for rate in ("24000/1001", "24", "25", "30000/1001", "30", "50", "60000/1001", "60"))
"""The timecode rates an EDL may be written at: the ones Resolve, Premiere and Avid take in a
CMX 3600 EDL (23.976, 24, 25, 29.97, 30, 50, 59.94, 60)."""

NEAREST_RATES = tuple(rate for rate in TIMECODE_RATES if rate.denominator == 1)
"""For a rate that no timecode rate divides or is a multiple of (a variable frame rate's
average): the nearest of these. NTSC rates are kept for NTSC-based video, which
`timecode_rate` finds exactly."""

FALLBACK_RATE = Fraction(25)
"""Used, with a warning, for a video whose frame rate neither the index nor the file tells."""

REEL = "AX"
"""The CMX reel name for file-based media: episode names cut to 8 characters
would collide (episode_01, episode_02 → "episode0"); editors match the
events to files by the `FROM CLIP NAME` comment instead."""

TITLE_LENGTH = 60
"""CMX 3600 titles are short ASCII; longer queries are cut."""


def timecode_rate(rate: Fraction) -> Fraction:
    """The rate to write timecode at for a video at `rate`: its own when editors take it; else
    the smallest timecode rate that is a whole multiple of it, so every frame starts on a
    timecode frame (10 → 30, 12 → 24, 15 → 30, 14.985 → 29.97); else the largest one it is a
    whole multiple of (120 → 60, 48 → 24); else the nearest whole one (27.3 → 25)."""
    if rate in TIMECODE_RATES:
        return rate
    multiples = [tc for tc in TIMECODE_RATES if (tc / rate).denominator == 1]
    if multiples:
        return min(multiples)
    divisors = [tc for tc in TIMECODE_RATES if (rate / tc).denominator == 1]
    if divisors:
        return max(divisors)
    return min(NEAREST_RATES, key=lambda tc: abs(math.log(tc / rate)))


def rate_label(rate: Fraction) -> str:
    """24 → "24", 30000/1001 → "29.97"."""
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def edl_paths(path: str, rates: list[Fraction]) -> dict[Fraction, str]:
    """Which file each rate's clips go to: the first rate to `path`, the others beside it."""
    stem, extension = os.path.splitext(path)
    return {rate: path if index == 0 else f"{stem}_{rate_label(rate)}fps{extension or '.edl'}" for index, rate in enumerate(rates)}


def conversion_note(source: Fraction | None, rate: Fraction) -> str | None:
    """The comment for an event timed at `rate` though its video runs at `source` (None: unknown)."""
    if source == rate:
        return None
    said = f"{rate_label(source)} FPS" if source else "UNKNOWN"
    return f"SOURCE FRAME RATE {said}, TIMECODE AT {rate_label(rate)} FPS (TIMES TO ITS NEAREST FRAME)"


def edl_text(clips: list[tuple[Clip, Fraction | None]], rate: Fraction, title: str) -> str:
    """A CMX 3600 EDL of `clips` (each with its video's own rate) with timecode at `rate`."""
    import opentimelineio as otio

    fps = float(rate)
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    for clip, source_rate in clips:
        first = Timecode(clip.start).frames(rate)
        last = max(Timecode(clip.end).frames(rate), first + 1)  # exclusive; at least one frame
        note = conversion_note(source_rate, rate)
        track.append(otio.schema.Clip(
            name=visible(os.path.basename(clip.path)),
            metadata={"cmx_3600": {"reel": REEL, **({"comments": [note]} if note else {})}},
            media_reference=otio.schema.ExternalReference(target_url=_file_url(clip.path)),
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(first, fps), otio.opentime.RationalTime(last - first, fps)
            ),
        ))
    timeline = otio.schema.Timeline(name=_ascii_title(title))
    timeline.tracks.append(track)
    return otio.adapters.write_to_string(timeline, "cmx_3600", rate=fps)


def edl_files(clips: list[Clip], path: str, title: str = "scenegrep") -> tuple[dict[str, str], list[str]]:
    """`clips` (best first) as CMX 3600: the text of each file to write (one per timecode
    rate, see the module docstring), and warnings (videos of unknown rate, rates converted,
    extra files)."""
    warnings = []
    timed: list[tuple[Fraction, Clip, Fraction | None]] = []
    converted: dict[tuple[Fraction | None, Fraction], int] = {}
    for clip in clips:
        source = clip_rate(clip)
        if source is None:
            warnings.append(f"frame rate of {clip.path} unknown (file not readable?); its EDL events assume {FALLBACK_RATE} fps")
        rate = timecode_rate(source or FALLBACK_RATE)
        if source and source != rate:
            converted[(source, rate)] = converted.get((source, rate), 0) + 1
        timed.append((rate, clip, source))
    if not clips:
        return {path: f"TITLE: {_ascii_title(title)}\n"}, warnings
    order = list(dict.fromkeys(rate for rate, _, _ in timed))  # the best clip's rate first
    targets = edl_paths(path, order)
    groups = {rate: [(clip, source) for r, clip, source in timed if r == rate] for rate in order}
    if converted:
        pairs = sorted(converted, key=lambda pair: pair[0])
        rates = ", ".join(f"{rate_label(source)} → {rate_label(rate)} fps" for source, rate in pairs)
        warnings.append(f"{sum(converted.values())} clip(s) come from videos at frame rates EDL timecode does not have; "
                        f"their times go to the nearest frame of a timecode rate ({rates}), and a comment "
                        f"under each event says so")
    if len(order) > 1:
        parts = ", ".join(f"{targets[rate]} ({rate_label(rate)} fps, {len(groups[rate])} clip(s))" for rate in order)
        warnings.append(f"the clips are timed at {len(order)} timecode rates and an EDL has one: wrote {parts}")
    return {targets[rate]: edl_text(groups[rate], rate, title) for rate in order}, warnings


def _file_url(path: str) -> str:
    from .names import file_uri

    return file_uri(path)


def _ascii_title(title: str) -> str:
    text = re.sub(r"[^\x20-\x7e]+", " ", title.replace("−", "-").replace("×", "x")).strip()
    return text[:TITLE_LENGTH] or "scenegrep"
