#!/usr/bin/env python
"""Render the synthetic sample videos in ``sample_videos/`` with ground truth.

Usage (from the repository root)::

    python tools/make_sample_videos.py            # writes into sample_videos/
    python tools/make_sample_videos.py --out DIR  # somewhere else

It also writes ``sample_shots/`` (``--shots-out``): ``episode_04.mp4`` at
24000/1001 fps, whose shot changes are the hard ones for clip edges (cuts
between sampling-grid points, a held drawing across a cut, a cross-fade, a
flash frame inside a shot), with its own ``annotations.json``. It lives
outside ``sample_videos/`` so that indexing that folder still gives the three
videos the tests and the quick start count on.

Writes three small H.264 (libx264, yuv420p, CRF 30) MP4 files at 320x180 with
different frame rates (24, 30000/1001 and 25 fps), each made of five scenes
of 4-6 s joined by hard cuts, plus ``annotations.json`` (the ground truth:
scene start/end times in seconds, end exclusive, equal to the pts of the
scene's first frame / the next scene's first frame) and a ``README.md``.

The scene list is fixed and the renderer (``tools/scenes.py``) is
deterministic, so re-running produces the same frames; the seed below only
drives small per-scene geometric jitter.  Every scene caption is distinct,
and every (shape, colour) pair is used once only, so a query such as
"a red ball bouncing" or "a blue star" has exactly one right answer.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import Scene, caption, render  # noqa: E402

SEED = 20240601
WIDTH, HEIGHT = 320, 180
CRF = 30

# (file name, frame rate, [(shape, colour, background, motion, seconds), ...])
VIDEOS: list[tuple[str, Fraction, list[tuple[str, str, str, str, float]]]] = [
    (
        "episode_01.mp4",
        Fraction(24, 1),
        [
            ("circle", "red", "blue", "bouncing", 5.0),
            ("square", "yellow", "black", "moving right", 4.0),
            ("triangle", "green", "white", "still", 6.0),
            ("star", "blue", "yellow", "moving left", 5.0),
            ("circle", "white", "green", "moving down", 4.0),
        ],
    ),
    (
        "episode_02.mp4",
        Fraction(30000, 1001),
        [
            ("star", "yellow", "blue", "still", 5.0),
            ("square", "black", "white", "moving up", 6.0),
            ("triangle", "red", "green", "moving right", 4.0),
            ("circle", "green", "black", "bouncing", 5.0),
            ("square", "blue", "red", "moving down", 5.0),
        ],
    ),
    (
        "episode_03.mp4",
        Fraction(25, 1),
        [
            ("star", "white", "red", "moving left", 5.0),
            ("circle", "blue", "white", "still", 5.0),
            ("triangle", "yellow", "black", "moving up", 4.0),
            ("square", "red", "yellow", "still", 6.0),
            ("star", "black", "green", "bouncing", 5.0),
        ],
    ),
]


# (file name, frame rate, [(shape, colour, background, motion, seconds, transition into the scene), ...]).
# Scene lengths put every shot change between the points of a 2-s grid.
SHOTS_VIDEO: tuple[str, Fraction, list[tuple[str, str, str, str, float, str]]] = (
    "episode_04.mp4",
    Fraction(24000, 1001),
    [
        ("circle", "yellow", "blue", "bouncing", 4.3, "cut"),
        ("square", "green", "black", "still", 4.6, "cut"),
        ("triangle", "white", "black", "still", 4.5, "cut"),  # held drawing → held drawing, same background
        ("star", "red", "blue", "moving right", 5.3, "cross-fade"),
        ("circle", "black", "yellow", "moving up", 4.4, "cut"),
    ],
)

CROSS_FADE_FRAMES = 12
"""Frames of the cross-fade into a "cross-fade" scene, half before and half
after its annotated start: the frames from the start on are more the new shot
than the old one, so the annotated boundary is the fade's midpoint."""

FLASH_AT = (3, 2.5)
"""(scene index, seconds into it) of the one white flash frame in episode_04:
a frame unlike both its neighbours inside a shot, which must not split it."""


def _fraction_str(f: Fraction) -> str:
    return f"{f.numerator}/{f.denominator}"


def scene_frames(fps: Fraction, scenes: list[tuple[Scene, int]]):
    """Every frame of ``scenes`` (scene, number of frames) in order, hard cuts between them."""
    for scene, nframes in scenes:
        for k in range(nframes):
            yield render(scene, float(k / fps), WIDTH, HEIGHT)


def write_video(path: Path, fps: Fraction, scenes: list[tuple[Scene, int]], frames=None) -> None:
    """Encode ``scenes`` (scene, number of frames) as one H.264 MP4 at ``fps``
    (or the given ``frames``, RGB arrays, when they are not plain hard cuts)."""
    time_base = 1 / fps  # one tick per frame: pts == frame index
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = WIDTH, HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = time_base
        # threads=1 keeps the encoded bytes reproducible across machines.
        stream.options = {"crf": str(CRF), "preset": "medium", "threads": "1"}
        for index, pixels in enumerate(scene_frames(fps, scenes) if frames is None else frames):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def check_video(path: Path, expected_frames: int) -> list[float]:
    """Decode ``path`` and return every frame's time in seconds (sanity check)."""
    times = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            times.append(float(frame.pts * frame.time_base))
    if len(times) != expected_frames:
        raise RuntimeError(f"{path}: decoded {len(times)} frames, expected {expected_frames}")
    return times


def shots_frames(fps: Fraction, scenes: list[tuple[Scene, int]], transitions: list[str]) -> list[np.ndarray]:
    """episode_04's frames: the scenes joined by their transitions, plus the flash frame."""
    frames = [pixels.astype(np.float32) for pixels in scene_frames(fps, scenes)]
    firsts = np.cumsum([0] + [n for _, n in scenes])
    half = CROSS_FADE_FRAMES // 2
    for number, transition in enumerate(transitions):
        if transition != "cross-fade":
            continue
        boundary = int(firsts[number])
        before, after = scenes[number - 1][0], scenes[number][0]
        for k in range(-half, half):  # the old shot runs on under the fade, the new one starts early
            alpha = (k + half + 0.5) / CROSS_FADE_FRAMES
            old = render(before, float((boundary + k - firsts[number - 1]) / fps), WIDTH, HEIGHT)
            new = render(after, float(k / fps), WIDTH, HEIGHT) if k < 0 else frames[boundary + k]
            frames[boundary + k] = (1 - alpha) * old + alpha * np.asarray(new, np.float32)
    scene, seconds = FLASH_AT
    frames[int(firsts[scene]) + round(seconds * fps)] = np.full((HEIGHT, WIDTH, 3), 255, np.float32)
    return [np.clip(frame + 0.5, 0, 255).astype(np.uint8) for frame in frames]


def make_shots_video(out: Path, rng: random.Random) -> None:
    """Write sample_shots/episode_04.mp4 and its annotations.json (see the module docstring)."""
    name, fps, spec = SHOTS_VIDEO
    scenes, entries, frame0 = [], [], 0
    for shape, colour, bg, motion, seconds, transition in spec:
        nframes = round(seconds * fps)
        sc = Scene(shape=shape, colour=colour, background=bg, motion=motion,
                   x=round(rng.uniform(0.3, 0.7), 3), y=round(rng.uniform(0.3, 0.7), 3),
                   size=round(rng.uniform(0.36, 0.5), 3), duration=seconds)
        entries.append({
            "start": round(float(Fraction(frame0) / fps), 6),
            "end": round(float(Fraction(frame0 + nframes) / fps), 6),
            "caption": caption(sc), "shape": shape, "colour": colour, "background": bg, "motion": motion,
            "transition_in": transition if frame0 else "start",
            "first_frame": frame0, "num_frames": nframes,
        })
        scenes.append((sc, nframes))
        frame0 += nframes
    flash_scene, flash_seconds = FLASH_AT
    entries[flash_scene]["flash_frame"] = entries[flash_scene]["first_frame"] + round(flash_seconds * fps)
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    write_video(path, fps, scenes, shots_frames(fps, scenes, [t for *_, t in spec]))
    check_video(path, frame0)
    ann = {"generator": "tools/make_sample_videos.py", "videos": [{
        "file": name, "fps": _fraction_str(fps), "duration": round(float(Fraction(frame0) / fps), 6),
        "num_frames": frame0, "width": WIDTH, "height": HEIGHT, "scenes": entries}]}
    (out / "annotations.json").write_text(json.dumps(ann, indent=2) + "\n")
    (out / "README.md").write_text(SHOTS_README)
    print(f"{path}: {frame0} frames @ {_fraction_str(fps)} fps, {path.stat().st_size / 1024:.0f} KiB")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "sample_videos"))
    ap.add_argument("--shots-out", default=str(Path(__file__).resolve().parent.parent / "sample_shots"))
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)

    ann = {"generator": "tools/make_sample_videos.py", "videos": []}
    seen_captions: set[str] = set()
    for name, fps, spec in VIDEOS:
        scenes: list[tuple[Scene, int]] = []
        entries = []
        frame0 = 0
        for shape, colour, bg, motion, seconds in spec:
            nframes = round(seconds * fps)
            sc = Scene(
                shape=shape,
                colour=colour,
                background=bg,
                motion=motion,
                x=round(rng.uniform(0.3, 0.7), 3),
                y=round(rng.uniform(0.3, 0.7), 3),
                size=round(rng.uniform(0.36, 0.5), 3),
                duration=seconds,
            )
            cap = caption(sc)
            if cap in seen_captions:
                raise RuntimeError(f"duplicate caption {cap!r}")
            seen_captions.add(cap)
            start = Fraction(frame0) / fps
            end = Fraction(frame0 + nframes) / fps
            entries.append(
                {
                    "start": round(float(start), 6),
                    "end": round(float(end), 6),
                    "caption": cap,
                    "shape": shape,
                    "colour": colour,
                    "background": bg,
                    "motion": motion,
                    "first_frame": frame0,
                    "num_frames": nframes,
                }
            )
            scenes.append((sc, nframes))
            frame0 += nframes
        path = out / name
        write_video(path, fps, scenes)
        times = check_video(path, frame0)
        for e in entries:  # annotation times == real pts of the scene's first frame
            assert abs(times[e["first_frame"]] - e["start"]) < 1e-4, (name, e)
        duration = Fraction(frame0) / fps
        ann["videos"].append(
            {
                "file": name,
                "fps": _fraction_str(fps),
                "duration": round(float(duration), 6),
                "num_frames": frame0,
                "width": WIDTH,
                "height": HEIGHT,
                "scenes": entries,
            }
        )
        print(f"{path}: {frame0} frames @ {_fraction_str(fps)} fps, "
              f"{float(duration):.3f} s, {path.stat().st_size / 1024:.0f} KiB")

    (out / "annotations.json").write_text(json.dumps(ann, indent=2) + "\n")
    (out / "README.md").write_text(README)
    print(f"wrote {out / 'annotations.json'} ({len(seen_captions)} scenes)")
    make_shots_video(Path(args.shots_out), rng)
    return 0


README = """\
# Sample videos

Synthetic test videos with ground truth, generated by

    python tools/make_sample_videos.py

(deterministic; renderer in `tools/scenes.py`). Each video is 320x180 H.264
(libx264, yuv420p, CRF 30), ~24-25 s long, made of 5 scenes of 4-6 s joined
by hard cuts. Each scene is one flat-coloured shape (circle, square, triangle,
star) on a flat background, still or moving (left/right/up/down/bouncing).

| file | frame rate |
|------|------------|
| `episode_01.mp4` | 24 fps |
| `episode_02.mp4` | 30000/1001 fps (NTSC 29.97) |
| `episode_03.mp4` | 25 fps |

`annotations.json` is the ground truth:

```json
{"generator": "tools/make_sample_videos.py",
 "videos": [{"file": "episode_01.mp4", "fps": "24/1", "duration": 24.0,
             "num_frames": 576, "width": 320, "height": 180,
             "scenes": [{"start": 0.0, "end": 5.0,
                         "caption": "a red circle bouncing on a blue background",
                         "shape": "circle", "colour": "red", "background": "blue",
                         "motion": "bouncing", "first_frame": 0, "num_frames": 120},
                        ...]}]}
```

Times are in seconds, `end` exclusive; `start` is the pts of the scene's first
frame and `end` that of the next scene's first frame (or the video duration).
Every caption is distinct and each (shape, colour) pair occurs in one scene
only; the only red circle is the bouncing one in `episode_01.mp4` (0-5 s),
which is what the quick-start query "a red ball bouncing" should find.

`mini_clip/` holds a tiny CLIP model trained on these synthetic shapes by
`tools/train_mini_clip.py`: a test fixture, not a real model (see
`mini_clip/TRAINING.md`).
"""

SHOTS_README = """\
# Sample shots

`episode_04.mp4` (320x180 H.264, 24000/1001 fps, 23.1 s) and its ground truth
`annotations.json`, generated by `python tools/make_sample_videos.py` with the
videos in `sample_videos/`. Its five shots change where clip edges are hard
to get right: every change falls between the points of a 2-s sampling grid;
a held drawing cuts to another held drawing on the same background (4.6 s to
9.1 s); a 12-frame cross-fade leads into the red star (annotated at its
midpoint, `"transition_in": "cross-fade"`); one white flash frame
(`flash_frame`) sits inside the red star's shot and must not split it.

It lives here, not in `sample_videos/`, so that indexing that folder still
gives the three videos the tests and the quick start count on. Measure clip
edges with

    scenegrep eval videos sample_shots/annotations.json --model sample_videos/mini_clip
"""

if __name__ == "__main__":
    sys.exit(main())
