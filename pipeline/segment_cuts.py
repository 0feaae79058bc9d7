"""Shot changes a decoding task records inside its own segment, so that only its edges travel.

A video's `cuts.CutRecorder` needs every frame's signature (about 7 KB) in
order; sent whole, a `--ray` run moves them all from the decoding nodes to the
driver, which then runs every interval's detector alone. But which intervals a
segment holds is known where it is decoded: after its first candidate, the
grid rule keeps the same candidates whatever came before (its target is then
the grid time after that candidate, whether it was kept or not). So the task
runs a recorder of its own from its first such sample on, and sends

- the *head*: its frames up to LOOK_AHEAD_FRAMES after that sample, which the
  video's recorder needs to decide the interval from the previous segment;
- a `HandOff`: the changes of the intervals it decided, and the samples and
  frames of the last ones, which the next segment's frames decide.

The driver feeds the head, checks that its own grid rule kept the samples the
task assumed, and takes over (`CutRecorder.take_over`). A segment with fewer
than two such samples, or frames out of time order, sends every signature.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .cuts import LOOK_AHEAD_FRAMES, CutRecorder, HandOff
from .sample import next_target
from .segments import GridRule


def record_within(candidates: Sequence[float], before: Sequence[int], frame_times: Sequence[float],
                  signatures: np.ndarray, every: float) -> tuple[int, HandOff] | None:
    """(head, hand_off) for one segment's candidate times, `before[i]` (frames decoded up to
    candidate i, itself included), and every frame's time and signature: the video's recorder
    needs frames [:head] and candidates [:hand_off.first + 1] besides the hand-off.
    None when the segment decides no interval of its own: then it sends every signature."""
    if len(candidates) < 3 or any(b <= a for a, b in zip(frame_times, frame_times[1:])):
        return None
    rule = GridRule(every)
    rule.target = next_target(candidates[0], every)  # where the rule stands after candidate 0, kept or not
    kept = [i for i in range(1, len(candidates)) if rule.keeps(candidates[i])]
    if len(kept) < 2:
        return None
    first = kept[0]
    fed = before[first] - 1  # the frame that is candidate `first`
    if fed < 0 or frame_times[fed] != candidates[first]:
        return None
    recorder = CutRecorder(every)
    samples = set(kept)
    for i in range(first, len(candidates)):
        for j in range(fed, before[i]):
            recorder.add_frame(frame_times[j], signatures[j])
        fed = before[i]
        if i in samples:
            recorder.add_sample(candidates[i])
    for j in range(fed, len(frame_times)):
        recorder.add_frame(frame_times[j], signatures[j])
    hand_off = recorder.hand_off(first, tuple(candidates[i] for i in kept))
    if hand_off is None:
        return None
    return min(before[first] + LOOK_AHEAD_FRAMES, len(frame_times)), hand_off
