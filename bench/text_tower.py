"""A warm text query through CLIP's text tower, by BLAS / torch thread count: what a new-text search
costs before the nearest frames.

`scenegrep serve` and `scenegrep search` run text through the numpy copy of
CLIP's text tower (`pipeline/numpy_text.py`) until an image query loads the
torch model; after that, text runs in torch. Rows, each a new text every time
(the server keeps recent terms' vectors, so a repeated text costs nothing):
the numpy tower with numpy's BLAS at the thread count it starts with (one per
CPU) and at 1 thread (numpy's bundled OpenBLAS is set through its own
`*_set_num_threads*` call; those rows are left out with another BLAS), and
`ClipEncoder.embed_texts` in torch at its thread count and at 1. Rows
alternate text by text, so load from other processes hits them alike;
compare within one run.

    python bench/text_tower.py                 # ViT-B/32-sized random CLIP with CLIP's own tokenizer (bench/clip_tokenizer.py), 30 texts
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from index_speed import vit_b32  # noqa: E402


def openblas_threads():
    """(get, set) of numpy's bundled OpenBLAS thread count, or None (another BLAS, or a build without them)."""
    for library in glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*openblas*")):
        lib = ctypes.CDLL(library)
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("openblas", "")):
            get, put = f"{prefix}_get_num_threads{suffix}", f"{prefix}_set_num_threads{suffix}"
            if hasattr(lib, get) and hasattr(lib, put):
                return getattr(lib, get), getattr(lib, put)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=30, help="timed texts per row (default 30)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"))
    args = parser.parse_args()

    import torch

    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.numpy_text import NumpyTextEncoder

    model = vit_b32(os.path.join(args.work, "vit-b32-clip-tokenizer"), clip_tokenizer=True)
    numpy_text = NumpyTextEncoder.open(model)
    loaded = ClipEncoder(model)
    loaded.load()
    assert np.abs(numpy_text.embed_texts(["a red ball"]) - loaded.embed_texts(["a red ball"])).max() < 1e-5

    blas = openblas_threads()
    get_blas, set_blas = blas or (None, None)
    blas_threads, torch_threads = get_blas() if blas else None, torch.get_num_threads()
    rows = {}  # label: (BLAS threads or None, torch threads or None, embed)
    for threads in dict.fromkeys([blas_threads, 1]) if blas else [None]:
        shown = f"BLAS {threads}" if threads else "BLAS as started"
        rows[f"numpy, {shown}"] = (threads, None, numpy_text.embed_texts)
    for threads in dict.fromkeys([torch_threads, 1]):
        rows[f"torch, {threads} thread(s)"] = (None, threads, loaded.embed_texts)

    times = {label: [] for label in rows}
    for i in range(-2, args.texts):  # two untimed rounds first
        for label, (blas_count, threads, embed) in rows.items():
            if blas_count:
                set_blas(blas_count)
            if threads:
                torch.set_num_threads(threads)
            began = time.perf_counter()
            embed([f"a red ball bouncing in the kitchen {i} {label}"])
            if i >= 0:
                times[label].append((time.perf_counter() - began) * 1000)
        if blas:
            set_blas(blas_threads)
        torch.set_num_threads(torch_threads)

    baseline = np.median(times[next(iter(rows))])
    print(f"warm text tower, ViT-B/32-sized, one new text per call, {os.cpu_count()} CPU(s), "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"{'row':42} {'p50 ms':>8} {'p95 ms':>8} {'n':>4} {'p50 vs first row':>17}")
    for label, values in times.items():
        print(f"{label:42} {np.percentile(values, 50):8.1f} {np.percentile(values, 95):8.1f} {len(values):4d} "
              f"{np.median(values) / baseline:17.2f}")


if __name__ == "__main__":
    main()
