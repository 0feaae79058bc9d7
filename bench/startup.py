"""Start-up of an index run: the time from the command to the first decoded frame and to the model ready.

    python bench/startup.py [--workers 2] [--device cpu] [--video PATH]

One fresh process, timestamps from its start: importing the CLI, starting
the decoding workers, the first sampled frame (workers decode while the
model loads, as `scenegrep index` does), the model loaded in the background,
and — for comparison — importing torch and transformers in a second fresh
process, which is most of the model's load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

STEPS = r"""
import time, sys
t0 = time.perf_counter()
marks = []
def mark(name): marks.append((name, time.perf_counter() - t0))
import scenegrep.cli.main
mark("import scenegrep.cli.main")
from scenegrep.pipeline.encode import ClipEncoder
from scenegrep.pipeline.files import video_for
from scenegrep.pipeline.segments import SegmentedSampler
from scenegrep.pipeline.workers import DecodePool
encoder = ClipEncoder(MODEL, device=DEVICE)
mark("model config read")
with DecodePool(WORKERS) as pool:
    mark("workers started (spawned, not yet ready)")
    encoder.load_in_background()
    sampler = SegmentedSampler(video_for(VIDEO), 2.0, pool, encoder.input_size)
    mark("video planned (keyframes demuxed)")
    frames = iter(sampler)
    next(frames)
    mark("first sampled frame")
    encoder.load()
    mark("model loaded (in the background since the pool started)")
    encoder.embed_pixels(encoder.preprocess([f.pixels for f in [next(frames)]]))
    mark("first frame embedded")
for name, t in marks:
    print(f"{t:7.2f} s  {name}")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--video", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench", "bench_720p_0.5min_0.mp4"))
    parser.add_argument("--model", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench", "vit-b32-random"))
    args = parser.parse_args()
    code = (STEPS.replace("MODEL", repr(args.model)).replace("DEVICE", repr(args.device))
            .replace("WORKERS", str(args.workers)).replace("VIDEO", repr(args.video)))
    print(f"start-up, --workers {args.workers}, device {args.device}, {os.cpu_count()} core(s), "
          f"load average {os.getloadavg()[0]:.1f}; seconds since the interpreter started running the script:")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    print(f"{time.perf_counter() - start:7.2f} s  (a bare `python -c pass`, for scale)")
    subprocess.run([sys.executable, "-c", code], check=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, transformers; from transformers import CLIPModel"], check=True)
    print(f"{time.perf_counter() - start:7.2f} s  importing torch and CLIPModel alone, in a fresh process")


if __name__ == "__main__":
    main()
