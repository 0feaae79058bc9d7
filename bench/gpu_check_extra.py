"""The worker-process checks for a GPU machine (issue 11), beside ../shared/gpu/check.py.

Run there from the project root, after the shared check's set-up
(`bash .gpucarry/run.sh python3 bench/gpu_check_extra.py [STEP...]`); about
8 minutes on a 16-core H200 box. Steps:

  encode_resized  frames as the workers hand them over (224 × 398 uint8, host
                  memory) → embeddings: pinned batch, non-blocking copy, crop
                  and normalise on the GPU, fp16 ViT-B/32 (target ≥ 5,000 img/s)
  archive         bench/index_speed.py --workers 1,4,8,16 on eight 2-minute 720p
                  videos, whole processes, with the typical script beside it
                  (targets: ≥ 600 video-s/s, ≥ 4× the typical script)
  long            one 22-minute 720p episode, --workers 16 (target < 5 s after start-up)
  decoder_options bench/decoder_options.py with nvdec

Prints each step's output; writes them to $OUT/gpu_check_extra.txt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.environ.get("OUT", "/tmp/sg-out")


def encode_resized() -> str:
    import numpy as np
    import torch

    sys.path.insert(0, HERE)
    from index_speed import vit_b32

    from scenegrep.pipeline.encode import ClipEncoder

    model = vit_b32(os.path.join(os.environ.get("SG_WORK", "/tmp/sg"), "vit-b32-random"))
    encoder = ClipEncoder(model, device="cuda").load()
    frames = [np.random.default_rng(i).integers(0, 255, (224, 398, 3), dtype=np.uint8) for i in range(256)]
    for _ in range(3):  # warm-up: kernels picked, memory pools filled
        encoder.embed_pixels(encoder.preprocess(frames))
    torch.cuda.synchronize()
    rounds = 20
    start = time.perf_counter()
    for _ in range(rounds):
        encoder.embed_pixels(encoder.preprocess(frames))  # ends with the copy back: synchronised
    wall = time.perf_counter() - start
    return f"encode from resized host frames, {encoder.precision}, batch 256: {rounds * 256 / wall:,.0f} img/s"


def bench(*args: str) -> str:
    run = subprocess.run([sys.executable, os.path.join(HERE, "index_speed.py"), *args], capture_output=True, text=True)
    return run.stdout + run.stderr[-2000:]


STEPS = {
    "encode_resized": encode_resized,
    "archive": lambda: bench("--skip-main", "--workers", "1,4,8,16", "--archive", "8", "--minutes", "2",
                             "--device", "cuda"),
    "long": lambda: bench("--skip-main", "--workers", "1,16", "--long", "22", "--device", "cuda"),
    "decoder_options": lambda: subprocess.run([sys.executable, os.path.join(HERE, "decoder_options.py")],
                                              capture_output=True, text=True).stdout,
}


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "gpu_check_extra.txt"), "a") as log:
        for name in sys.argv[1:] or list(STEPS):
            start = time.perf_counter()
            try:
                text = STEPS[name]()
            except Exception as exc:  # one broken step must not hide the others
                text = f"failed: {type(exc).__name__}: {exc}"
            text = f"== {name} ({time.perf_counter() - start:.0f} s)\n{text}\n"
            print(text, flush=True)
            log.write(text)


if __name__ == "__main__":
    main()
