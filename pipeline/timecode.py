"""Timecode: the one time type every scenegrep output uses.

In the spirit of PySceneDetect's ``FrameTimecode``, but stored as plain
seconds (a float) so it can be used without knowing the frame rate. The
frame rate only matters when converting to/from frame numbers or SMPTE
timecode.

Conventions
-----------
* Frame number of a time ``t`` at rate ``r`` is ``round(t * r)``, the
  nearest frame, exact halves rounding up. It is computed exactly with
  ``fractions.Fraction``, so ``Timecode.from_frames(n, r).frames(r) == n``
  for every ``n``.
* SMPTE labels at 29.97 (30000/1001) and 59.94 (60000/1001) fps default to
  drop-frame (``HH:MM:SS;FF``): frame numbers 0-1 (0-3 at 59.94) are
  skipped at the start of every minute except every tenth minute. Every
  other rate is non-drop, counting at the nominal integer rate (23.976 is
  labelled like 24 fps, standard practice). Hours are never wrapped at 24.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["Timecode", "parse_rate", "readable_rate", "rate_text"]

_NTSC = {n: Fraction(n * 1000, 1001) for n in (24, 30, 60)}
_DROP_FRAME_RATES = (_NTSC[30], _NTSC[60])
_SNAP_TOLERANCE = Fraction(1, 200)  # 23.98 and 23.976 both snap to 24000/1001

_EXPECTED = "expected seconds (90), MM:SS (1:30), HH:MM:SS.mmm (00:01:30.5) or 1h2m3s"
_NUM = r"\d+(?:\.\d*)?|\.\d+"
_SECONDS_RE = re.compile(rf"(?:{_NUM})", re.ASCII)
_COLON_RE = re.compile(r"(\d+):(\d{1,2})(?::(\d{1,2}))?(?:[.,](\d+))?", re.ASCII)
_UNITS_RE = re.compile(
    rf"(?:({_NUM})\s*h)?\s*(?:({_NUM})\s*m)?\s*(?:({_NUM})\s*s)?", re.IGNORECASE | re.ASCII
)
_SMPTE_RE = re.compile(r"(\d+)([:;])(\d{2})([:;])(\d{2})([:;])(\d+)", re.ASCII)


def parse_rate(rate: Fraction | int | float | str) -> Fraction:
    """Return a frame rate as an exact positive ``Fraction``.

    Accepts a Fraction, int, float, or string such as ``"25"``,
    ``"30000/1001"`` or ``"29.97"``. Inexact inputs (floats and decimal
    strings) within 0.005 of 23.976, 29.97 or 59.94 snap to 24000/1001,
    30000/1001 or 60000/1001; Fractions, ints and ``"a/b"`` strings are
    taken as exact.

    Raises TypeError for other types (including bool) and ValueError for
    unparsable, zero, negative or non-finite rates.
    """
    inexact = False
    if isinstance(rate, bool) or not isinstance(rate, (Fraction, int, float, str)):
        raise TypeError(f"frame rate must be a Fraction, int, float or str, not {type(rate).__name__}")
    if isinstance(rate, float):
        if not math.isfinite(rate):
            raise ValueError(f"invalid frame rate {rate!r}: must be finite")
        value, inexact = Fraction(repr(rate)), True
    elif isinstance(rate, str):
        text = rate.strip()
        try:
            value = Fraction(text)
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f"invalid frame rate {rate!r}: expected a number (25, 29.97) or a ratio (30000/1001)"
            ) from None
        inexact = "/" not in text
    else:
        value = Fraction(rate)
    if value <= 0:
        raise ValueError(f"invalid frame rate {rate!r}: must be positive")
    if inexact and value.denominator != 1:
        for exact in _NTSC.values():
            if abs(value - exact) < _SNAP_TOLERANCE:
                return exact
    return value


RATE_DECIMALS = 3
"""A frame rate that is neither an integer, nor NTSC's n/1001, nor an exact
decimal of at most this many places is an average, not a rate anyone set: the
average of a variable-frame-rate video (frames ÷ duration, e.g. 400/407, or
3102357836338419/200000000000000 after a float). It is kept to a thousandth of
a frame per second, which changes a frame number by under one per 16 minutes
at 1 fps and is how players and ffprobe print such rates."""


def readable_rate(rate: Fraction | int | float | str) -> Fraction:
    """A frame rate as people write it: integers, n/1001 rates and short
    decimals exact (25, 30000/1001, 12.5); rates within 0.005 fps of NTSC
    snapped to it (14985/500 → 30000/1001); anything else rounded to
    RATE_DECIMALS places (400/407 → 983/1000). Raises what `parse_rate` raises."""
    exact = parse_rate(rate)
    if exact.denominator == 1 or exact.denominator == 1001:
        return exact
    snapped = parse_rate(float(exact))  # an inexact value: snaps to NTSC when close
    if snapped.denominator == 1001:
        return snapped
    rounded = Fraction(f"{float(exact):.{RATE_DECIMALS}f}")
    return rounded if rounded > 0 else exact  # under 0.0005 fps: no rate anyone meant; keep it


def rate_text(rate: Fraction | int | float | str) -> str:
    """A frame rate for people and JSON: "25", "30000/1001", "12.5", "0.983"
    (see `readable_rate`); `Fraction(text)` reads it back."""
    value = readable_rate(rate)
    if value.denominator == 1 or value.denominator == 1001:
        return str(value)
    decimal = f"{float(value):.{RATE_DECIMALS}f}".rstrip("0").rstrip(".")
    return decimal if Fraction(decimal) == value else str(value)


def _nominal_fps(rate: Fraction) -> int:
    """Integer frame count per labelled second (30 for 29.97, 24 for 23.976)."""
    return max(1, math.floor(rate + Fraction(1, 2)))


def _drop_per_minute(nominal: int, drop_frame: bool) -> int:
    if not drop_frame:
        return 0
    if nominal % 30:
        raise ValueError(f"drop-frame timecode needs a 29.97/59.94-style rate, not {nominal} fps nominal")
    return nominal // 15  # 2 at 30 fps nominal, 4 at 60


@dataclass(frozen=True, order=True)
class Timecode:
    """A non-negative point in (or span of) time, in seconds.

    Raises ValueError if ``seconds`` is negative, NaN or infinite, and
    TypeError if it is not a number (use ``Timecode.parse`` for text).
    """

    seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.seconds, (str, bytes)):
            raise TypeError("Timecode() takes a number of seconds; use Timecode.parse() for text")
        value = float(self.seconds)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"invalid time {self.seconds!r}: seconds must be finite and non-negative")
        object.__setattr__(self, "seconds", value)

    # ----------------------------------------------------------- parsing
    @classmethod
    def parse(cls, text: str) -> Timecode:
        """Parse user input: ``90``, ``90.5``, ``1:30``, ``1:02:03``,
        ``00:01:30.500`` (``,`` also accepted before the fraction), ``1m30s``,
        ``2h``, ``45s``.

        In colon forms every field after the first must be below 60, and so
        must the leading minutes of ``MM:SS`` (write ``1:30:00``, not
        ``90:00``). Raises ValueError (one-line message) for anything else.
        """
        if not isinstance(text, str):
            raise TypeError(f"Timecode.parse() takes a str, not {type(text).__name__}")
        s = text.strip()
        error = ValueError(f"invalid time {text!r}: {_EXPECTED}")
        if _SECONDS_RE.fullmatch(s):
            return cls(float(s))
        if m := _COLON_RE.fullmatch(s):
            first, second, third, frac = m.groups()
            hours, minutes, secs = (0, first, second) if third is None else (first, second, third)
            hours, minutes, secs = int(hours), int(minutes), int(secs)
            if minutes >= 60 or secs >= 60:
                raise error
            return cls(hours * 3600 + minutes * 60 + secs + (float("0." + frac) if frac else 0.0))
        if s and (m := _UNITS_RE.fullmatch(s)) and any(m.groups()):
            h, mi, se = (float(g) if g else 0.0 for g in m.groups())
            return cls(h * 3600 + mi * 60 + se)
        raise error

    # ------------------------------------------------------------ output
    def to_hms(self) -> str:
        """``HH:MM:SS.mmm``, rounded to the nearest millisecond (59.9996 s ->
        ``00:01:00.000``). Hours are not wrapped and may exceed 99."""
        total_ms = round(self.seconds * 1000)
        total_s, ms = divmod(total_ms, 1000)
        minutes, s = divmod(total_s, 60)
        h, m = divmod(minutes, 60)
        return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"

    __str__ = to_hms

    def __float__(self) -> float:
        return self.seconds

    # ------------------------------------------------------------ frames
    def frames(self, rate: Fraction | int | float | str) -> int:
        """Nearest frame number, ``round(seconds * rate)`` (halves round up).

        Raises ValueError/TypeError for a bad rate (see ``parse_rate``)."""
        return math.floor(Fraction(self.seconds) * parse_rate(rate) + Fraction(1, 2))

    @classmethod
    def from_frames(cls, n: int, rate: Fraction | int | float | str) -> Timecode:
        """Start time of frame ``n`` at ``rate``; ``from_frames(n, r).frames(r) == n``.

        Raises ValueError for a negative ``n`` or bad rate, TypeError for a
        non-integer ``n``."""
        n = operator.index(n)
        if n < 0:
            raise ValueError(f"frame number must be non-negative, got {n}")
        return cls(float(n / parse_rate(rate)))

    # ------------------------------------------------------------- SMPTE
    def to_smpte(self, rate: Fraction | int | float | str, drop_frame: bool | None = None) -> str:
        """SMPTE label ``HH:MM:SS:FF`` (or ``HH:MM:SS;FF`` when drop-frame).

        ``drop_frame=None`` means drop-frame exactly at 30000/1001 and
        60000/1001 fps. Raises ValueError for a bad rate, or for
        ``drop_frame=True`` at a rate whose nominal fps isn't 30 or 60.
        """
        r = parse_rate(rate)
        if drop_frame is None:
            drop_frame = r in _DROP_FRAME_RATES
        nominal = _nominal_fps(r)
        drop = _drop_per_minute(nominal, drop_frame)
        n = self.frames(r)
        if drop:
            per_10min = nominal * 600 - 9 * drop
            per_min = nominal * 60 - drop
            tens, rem = divmod(n, per_10min)
            n += 9 * drop * tens + (drop * ((rem - drop) // per_min) if rem > drop else 0)
        total_s, ff = divmod(n, nominal)
        total_m, ss = divmod(total_s, 60)
        hh, mm = divmod(total_m, 60)
        return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"

    @classmethod
    def from_smpte(cls, text: str, rate: Fraction | int | float | str) -> Timecode:
        """Inverse of ``to_smpte``: parse ``HH:MM:SS:FF`` (non-drop) or
        ``HH:MM:SS;FF`` (drop-frame whenever any ``;`` is present).

        Raises ValueError for malformed text, out-of-range fields, frame
        labels that drop-frame skips (e.g. ``00:01:00;00``), or a bad rate.
        """
        r = parse_rate(rate)
        m = _SMPTE_RE.fullmatch(text.strip()) if isinstance(text, str) else None
        if not m:
            raise ValueError(f"invalid SMPTE timecode {text!r}: expected HH:MM:SS:FF or HH:MM:SS;FF")
        hh, mm, ss, ff = (int(m.group(i)) for i in (1, 3, 5, 7))
        nominal = _nominal_fps(r)
        drop = _drop_per_minute(nominal, ";" in m.group(0))
        if mm >= 60 or ss >= 60 or ff >= nominal:
            raise ValueError(f"invalid SMPTE timecode {text!r}: field out of range at {nominal} fps nominal")
        if drop and ss == 0 and ff < drop and mm % 10:
            raise ValueError(f"invalid SMPTE timecode {text!r}: drop-frame skips frames 0-{drop - 1} of this minute")
        total_m = hh * 60 + mm
        n = ((hh * 3600 + mm * 60 + ss) * nominal + ff) - drop * (total_m - total_m // 10)
        return cls.from_frames(n, r)

    # -------------------------------------------------------- arithmetic
    def __add__(self, other: Timecode | float) -> Timecode:
        """Sum with a Timecode or seconds; a negative result clamps to 0."""
        if isinstance(other, (Timecode, int, float)):
            return Timecode(max(0.0, self.seconds + float(other)))
        return NotImplemented

    __radd__ = __add__  # makes 5 + tc and sum(timecodes) work

    def __sub__(self, other: Timecode | float) -> Timecode:
        """Difference with a Timecode or seconds, clamped at 0."""
        if isinstance(other, (Timecode, int, float)):
            return Timecode(max(0.0, self.seconds - float(other)))
        return NotImplemented
