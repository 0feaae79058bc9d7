"""Click parameter types for scenegrep's own kinds of values."""

from __future__ import annotations

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
