"""The fields every output shows for a clip, formatted through the one timecode type."""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

from ..errors import ScenegrepError
from ..records import Clip
from ..timecode import Timecode, rate_text, readable_rate


def clip_rate(clip: Clip) -> Fraction | None:
    """The clip's video frame rate: as the index recorded it, else read from the file's header;
    readable (`timecode.readable_rate`) even when an older index recorded a raw average."""
    rate = clip.fps or probe_rate(clip.path)
    return readable_rate(rate) if rate else None


@lru_cache(maxsize=256)
def probe_rate(path: str) -> Fraction | None:
    """The average frame rate in a video's header (no decoding), None when unreadable."""
    from ..decoders import open_decoder

    try:
        decoder = open_decoder(path)
    except (ScenegrepError, OSError):
        return None
    try:
        return decoder.info().rate
    finally:
        decoder.close()


def smpte(seconds: float, rate: Fraction | None) -> str | None:
    """SMPTE `HH:MM:SS:FF` (`;` drop-frame at 29.97/59.94) at `rate`, None when the rate is unknown."""
    return Timecode(max(0.0, seconds)).to_smpte(rate) if rate else None


def clip_record(rank: int, clip: Clip, thumbnail: str | None = None) -> dict:
    """A clip as a flat-ish dict: what `--json`, JSON and CSV exports and the results file hold.

    `start`/`end` are seconds (end exclusive), snapped to the shot changes
    (`grid_start`/`grid_end`: the sampling-grid edges they came from, before
    padding; None when the clip did not snap), `*_tc` are `HH:MM:SS.mmm`,
    `*_smpte` are SMPTE at the video's frame rate `fps` ("25", "30000/1001"; for a
    variable-frame-rate video its average rate to a thousandth, "15.512": see
    `timecode.rate_text`)."""
    rate = clip_rate(clip)
    return {
        "rank": rank,
        "episode": clip.episode,
        "path": clip.path,
        "start": round(clip.start, 6),
        "end": round(clip.end, 6),
        "grid_start": None if clip.grid_start is None else round(clip.grid_start, 6),
        "grid_end": None if clip.grid_end is None else round(clip.grid_end, 6),
        "start_tc": Timecode(clip.start).to_hms(),
        "end_tc": Timecode(clip.end).to_hms(),
        "start_smpte": smpte(clip.start, rate),
        "end_smpte": smpte(clip.end, rate),
        "fps": rate_text(rate) if rate else None,
        "score": round(clip.score, 6),
        "best_t": round(clip.best.t, 6),
        "thumbnail": thumbnail,
        "hits": [{"t": round(hit.t, 6), "score": round(hit.score, 6)} for hit in clip.hits],
        "duplicates": [
            {"episode": dup.episode, "path": dup.path, "start": round(dup.start, 6), "end": round(dup.end, 6),
             "start_tc": Timecode(dup.start).to_hms(), "score": round(dup.score, 6)}
            for dup in clip.duplicates
        ],
    }


def start_ms(t: float) -> str:
    """A clip's start for a player, to the millisecond rounded up: a player started there
    shows no frame before the clip's first (a snapped start is a shot's first frame)."""
    return f"{math.ceil(max(0.0, t) * 1000 - 1e-6) / 1000:.3f}"


def end_ms(t: float) -> str:
    """A clip's end for a player, to the millisecond rounded down: a player stopped there
    shows no frame of the next shot (a snapped end is that shot's first frame)."""
    return f"{math.floor(max(0.0, t) * 1000 + 1e-6) / 1000:.3f}"
