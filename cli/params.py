"""Click parameter types for scenegrep's own kinds of values."""

from __future__ import annotations

import math

import click

from scenegrep.pipeline.timecode import Timecode


class TimeParam(click.ParamType):
    """A time in a video: 90, 1:30, 00:01:30.5 or 1m30s → seconds (float)."""

    name = "time"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return Timecode.parse(value).seconds
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that also refuses nan and ±inf (which pass its bounds
    checks: nan compares false with everything). `--every nan` once created an
    index sampling every 0 s that refused every later command."""

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


LOCAL_RAY = "local"
"""`--ray` without an address (or `--ray=local`): a Ray instance started on this machine."""


class RayAddress(click.ParamType):
    """Where `--ray` finds its cluster: auto, local, host:port or ray://host:port.

    Anything else is refused rather than guessed: `--ray` takes an optional value,
    so `index --ray videos/` would otherwise read the folder as an address."""

    name = "address"

    def convert(self, value, param, ctx):
        import re

        text = str(value)
        if text in ("auto", LOCAL_RAY) or re.fullmatch(r"(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}", text):
            return text
        self.fail(f"{text!r} is not a Ray address (auto, local, host:6379 or ray://host:10001); "
                  "without an address put --ray after the paths", param, ctx)
