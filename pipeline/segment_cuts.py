"""Shot changes a decoding task records inside its own segment, so that only its edges travel.

A video's `cuts.CutRecorder` needs every frame's signature (about 7 KB) in
order; sent whole, a `--ray` run moves them all from the decoding nodes to the
driver, which then runs every interval's detector alone. But which intervals a
segment holds is known where it is decoded: after its first candidate, the
grid rule's target is the grid time after that candidate whether it was kept
or not (exactly so for N ≤ 1 s; for larger N a candidate within N µs of a
grid time can break the tie the other way, and the driver's check below
catches it). So the task runs a recorder of its own from its first such
sample on, and sends

- the *head*: its frames up to LOOK_AHEAD_FRAMES after that sample, which the
  video's recorder needs to decide the interval from the previous segment;
- a `HandOff`: the changes of the intervals it decided, and the samples and
  frames of the last ones, which the next segment's frames decide.

The driver feeds the head, checks that its own grid rule kept the samples the
task assumed, and takes over (`CutRecorder.take_over`); where they differ it
records nothing for the video, whose edges are then found at search time.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .cuts import LOOK_AHEAD_FRAMES, TIME_SLACK, CutRecorder, HandOff
from .sample import next_target
from .segments import GridRule


def record_within(candidates: Sequence[float], before: Sequence[int], frame_times: Sequence[float],
                  signatures: np.ndarray, every: float) -> tuple[int, HandOff] | None:
    """(head, hand_off) for one segment's candidate times, `before[i]` (frames decoded up to
    candidate i, itself included), and every frame's time and signature: the video's recorder
    needs frames [:head] and candidates [:hand_off.start_candidate + 1] besides the hand-off.

    None, and the segment sends every signature, when it cannot decide an interval of its
    own: fewer than two samples after its first candidate, not enough frames after them,
    frame times out of order, or a frame within TIME_SLACK before its first own sample
    (the video's recorder would keep that frame in the next window; this one would not)."""
    if len(candidates) < 3 or any(b <= a for a, b in zip(frame_times, frame_times[1:])):
        return None
    samples = _own_samples(candidates, every)
    if len(samples) < 2:
        return None
    start = before[samples[0]] - 1  # the frame that is the first sample (after candidate 0's: start >= 1)
    if frame_times[start] != candidates[samples[0]] or frame_times[start - 1] >= frame_times[start] - TIME_SLACK:
        return None
    recorder = CutRecorder(every)
    _feed(recorder, candidates, before, samples, frame_times, signatures, start)
    cuts, pending_samples, pending = recorder.state()
    if pending_samples[:1] == (candidates[samples[0]],):
        return None  # it decided no interval
    hand_off = HandOff(start_candidate=samples[0], start=candidates[samples[0]],
                       samples=tuple(candidates[i] for i in samples), cuts=cuts, pending_samples=pending_samples,
                       pending_times=tuple(frame.t for frame in pending),
                       pending_signatures=np.stack([frame.signature for frame in pending]))
    return _head(frame_times, start), hand_off


def _head(frame_times: Sequence[float], start: int) -> int:
    """Frames up to the LOOK_AHEAD_FRAMES-th after the sample at frame `start` (those within
    TIME_SLACK of it count as at it): what closes the interval that ends there."""
    after = 0
    for j in range(start + 1, len(frame_times)):
        after += frame_times[j] > frame_times[start] + TIME_SLACK
        if after == LOOK_AHEAD_FRAMES:
            return j + 1
    return len(frame_times)


def _own_samples(candidates: Sequence[float], every: float) -> list[int]:
    """The candidates after the first that the grid rule keeps, wherever it stood before the segment."""
    rule = GridRule(every)
    rule.target = next_target(candidates[0], every)
    return [i for i in range(1, len(candidates)) if rule.keeps(candidates[i])]


def _feed(recorder: CutRecorder, candidates: Sequence[float], before: Sequence[int], samples: list[int],
          frame_times: Sequence[float], signatures: np.ndarray, start: int) -> None:
    """Every frame from `start` on, each sample after its frame, as the video's recorder is fed."""
    fed, kept = start, set(samples)
    for i in range(samples[0], len(candidates)):
        for j in range(fed, before[i]):
            recorder.add_frame(frame_times[j], signatures[j])
        fed = before[i]
        if i in kept:
            recorder.add_sample(candidates[i])
    for j in range(fed, len(frame_times)):
        recorder.add_frame(frame_times[j], signatures[j])
