"""Cold `scenegrep search`: wall time of a fresh process, the numpy text path against the torch one.

Indexes one sample video with the ViT-B/32-sized random CLIP that
bench/index_speed.py makes (kept in $TMPDIR/scenegrep-bench), then times
fresh `scenegrep search "TEXT"` processes, alternating:

  numpy text   the shipped path: the model folder has tokenizer.json and
               model.safetensors, so the text tower runs in numpy and neither
               torch nor transformers is imported
  torch text   the baseline, the same search before this path existed: a copy
               of the folder without tokenizer.json, which sends the text
               through transformers' CLIPModel on torch (same weights, same
               fingerprint, so the same index answers)
  --help       the floor: Python, click and scenegrep's command table

    python bench/cold_search.py              # ~1 min on 2 cores, plus ~1 min the first time (model, index)
    python bench/cold_search.py --tries 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from index_speed import vit_b32  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=5, help="fresh processes per row (default 5)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"))
    args = parser.parse_args()

    os.makedirs(args.work, exist_ok=True)
    model = vit_b32(os.path.join(args.work, "vit-b32-random"))
    torch_model = os.path.join(args.work, "vit-b32-random-torch-text")
    if not os.path.isdir(torch_model):
        shutil.copytree(model, torch_model, ignore=shutil.ignore_patterns("tokenizer.json"))
    db = os.path.join(args.work, "cold-search-db")
    scenegrep = os.path.join(os.path.dirname(sys.executable), "scenegrep")
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    subprocess.run([scenegrep, "index", os.path.join(REPO, "sample_videos", "episode_01.mp4"), "--db", db,
                    "--model", model], check=True, capture_output=True, env=env)

    commands = {
        "numpy text (shipped)": [scenegrep, "search", "a red square", "--db", db, "--model", model, "-k", "5"],
        "torch text (baseline)": [scenegrep, "search", "a red square", "--db", db, "--model", torch_model, "-k", "5"],
        "scenegrep --help (floor)": [scenegrep, "--help"],
    }
    walls: dict[str, list[float]] = {label: [] for label in commands}
    outputs: dict[str, str] = {}
    for _ in range(args.tries):  # round robin: a burst of load hits every row alike
        for label, command in commands.items():
            start = time.perf_counter()
            done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            walls[label].append(time.perf_counter() - start)
            outputs[label] = done.stdout
    same = outputs["numpy text (shipped)"] == outputs["torch text (baseline)"]

    baseline = float(np.median(walls["torch text (baseline)"]))
    print(f"cold `scenegrep search`, ViT-B/32-sized local model, {args.tries} fresh processes each, "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    print(f"{'run':28} {'median s':>9} {'min s':>7} {'max s':>7} {'vs baseline':>12}")
    for label, times in walls.items():
        median = float(np.median(times))
        print(f"{label:28} {median:9.2f} {min(times):7.2f} {max(times):7.2f} {baseline / median:11.2f}x")
    print(f"same results from both text paths: {same}")


if __name__ == "__main__":
    main()
