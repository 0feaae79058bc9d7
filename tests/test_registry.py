"""Registry entries are read into one typed record with one default per field, whatever a stored entry holds."""

from __future__ import annotations

from fractions import Fraction

import pytest

from scenegrep.pipeline.registry import VideoEntry


def test_a_complete_entry_reads_back_as_written():
    entry = VideoEntry.from_metadata("abc", {"episode": "e1", "path": "/v/e1.mp4", "frames": 12, "size": 10,
                                             "mtime_ns": 5, "hash": "h", "duration": 24.0, "fps": "30000/1001",
                                             "sampling": "keyframes"})
    assert entry == VideoEntry("abc", "e1", "/v/e1.mp4", 12, 10, 5, "h", 24.0, "30000/1001", "keyframes")
    assert entry.rate == Fraction(30000, 1001) and entry.video.video_id == "abc"


@pytest.mark.parametrize("meta", [{}, None, {"frames": "12", "duration": -1, "size": True, "fps": ""}])
def test_missing_or_mistyped_fields_get_their_one_default(meta):
    entry = VideoEntry.from_metadata("abc", meta)
    assert (entry.frames, entry.size, entry.duration, entry.fps, entry.rate, entry.sampling) == (0, None, None, None,
                                                                                                  None, "grid")


@pytest.mark.parametrize("fps", ["-25", "0", "1/0", "inf", "nan", "fast"])
def test_a_frame_rate_that_is_no_rate_is_none(fps):
    assert VideoEntry.from_metadata("abc", {"fps": fps}).rate is None
