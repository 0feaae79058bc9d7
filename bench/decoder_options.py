"""Decoder options that decode less: speed, and what they change in the sampled frames.

    python bench/decoder_options.py                    # the 0.5-minute 720p bench video (made by index_speed.py)
    python bench/decoder_options.py --video PATH --every 2

For each option, one process decodes every frame of the video with PyAV
(thread_count=1, as one worker process does) and keeps the grid samples
(N=--every), resized to 224 px as the workers hand them over. Rows:

  default            what scenegrep decodes
  skip_loop_filter   FFmpeg skips the deblocking filter (`skip_loop_filter=all`)
  nonref             FFmpeg decodes reference frames only (`skip_frame=NONREF`): a sample
                     moves to the next decoded frame, with its own time
  nvdec              PyAV's hwaccel (CUDA), where PyAV and the GPU allow it

Columns: video-s per wall s, the speed-up, the largest shift of a sample in
time against default, and the mean absolute pixel difference of the 224-px
samples (0-255) against default.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def decode(path: str, every: float, option: str):
    import av

    from scenegrep.pipeline.decoders import resize_rgb
    from scenegrep.pipeline.segments import GridRule

    kwargs = {}
    if option == "nvdec":
        from av.codec.hwaccel import HWAccel

        kwargs["hwaccel"] = HWAccel(device_type="cuda", allow_software_fallback=False)
    container = av.open(path, **kwargs)
    stream = container.streams.video[0]
    stream.thread_count = 1
    if option == "skip_loop_filter":
        stream.codec_context.options = {"skip_loop_filter": "all"}
    elif option == "nonref":
        stream.codec_context.skip_frame = "NONREF"
    rule = GridRule(every)
    start = stream.start_time or 0
    samples = []
    t0 = time.perf_counter()
    for frame in container.decode(stream):
        t = max(float((frame.pts - start) * stream.time_base), 0.0)
        if rule.keeps(t):
            pixels = frame.to_ndarray(format="rgb24")
            samples.append((t, resize_rgb(pixels, (224, 224 * pixels.shape[1] // pixels.shape[0]))))
    wall = time.perf_counter() - t0
    duration = float(stream.duration * stream.time_base) if stream.duration else samples[-1][0]
    container.close()
    return wall, duration, samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default="")
    parser.add_argument("--every", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each option; the fastest is kept")
    parser.add_argument("--options", default="default,skip_loop_filter,nonref,nvdec")
    args = parser.parse_args()
    path = args.video
    if not path:
        from index_speed import make_video

        work = os.path.join(tempfile.gettempdir(), "scenegrep-bench")
        os.makedirs(work, exist_ok=True)
        path = make_video(os.path.join(work, "bench_720p_0.5min_0.mp4"), 30, 1280, 720)
    print(f"{os.path.basename(path)}, N={args.every:g}, thread_count=1, load average {os.getloadavg()[0]:.1f}")
    print(f"{'option':18} {'video-s/s':>9} {'speed-up':>8} {'samples':>7} {'max shift s':>11} {'mean |diff|':>11}")
    base = None
    for option in args.options.split(","):
        try:
            runs = [decode(path, args.every, option) for _ in range(args.repeat)]
        except Exception as exc:  # nvdec without a GPU, an FFmpeg build without the option
            print(f"{option:18} unavailable here: {type(exc).__name__}: {str(exc)[:80]}")
            continue
        wall, duration, samples = min(runs, key=lambda r: r[0])
        base = base or (wall, samples)
        shift = max(abs(a[0] - b[0]) for a, b in zip(samples, base[1]))
        diff = np.mean([np.abs(a[1].astype(int) - b[1].astype(int)).mean() for a, b in zip(samples, base[1])])
        print(f"{option:18} {duration / wall:9.1f} {base[0] / wall:7.2f}x {len(samples):7d} {shift:11.3f} {diff:11.2f}")


if __name__ == "__main__":
    main()
