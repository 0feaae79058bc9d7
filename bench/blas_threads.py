"""Warm searches with numpy's BLAS on 2 threads against 1, on an idle machine and on a busy one.

A search's numpy work is many small products (the text tower over a dozen
tokens, a few thousand frame-matrix rows, the candidates' pairwise
similarities). This bench times whole `Engine.search` calls, as `scenegrep
serve` makes them, at 200k frames (the index `bench/serve_latency.py` builds
and keeps), with numpy's OpenBLAS set to 2 and to 1 thread, alternating query
by query so load hits both alike: first as the machine is, then with
`--busy` processes spinning on the CPU (another program at work, an `index`
run next to the server). Rows: a new text every time (text tower, nearest
frames, clips) and a refined search (same terms, another filter).

    python bench/serve_latency.py --queries 1    # builds the 200k index once (kept)
    python bench/blas_threads.py                 # 30 searches per row, then again with 2 busy processes
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from text_tower import openblas_threads  # noqa: E402

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
WORDS = ("a red ball", "a chase", "the kitchen", "a title card", "two people talking")


def spin(stop) -> None:
    while not stop.is_set():
        sum(range(10_000))


def measure(engine, searches: int, set_blas, tag: str) -> dict:
    from scenegrep.pipeline.clips import ClipRules
    from scenegrep.pipeline.query import Query
    from scenegrep.pipeline.search import Filters

    times = {(kind, threads): [] for kind in ("new text", "refined") for threads in (2, 1)}
    for i in range(searches):
        for threads in ((2, 1) if i % 2 else (1, 2)):
            set_blas(threads)
            began = time.perf_counter()
            engine.search(Query.parse([f"{WORDS[i % len(WORDS)]} {i} {threads} {tag}"]), {}, 10, Filters(), ClipRules())
            times[("new text", threads)].append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            engine.search(Query.parse([f"warm {WORDS[0]}"]), {}, 10, Filters(), ClipRules(per_episode=1 + i % 3))
            times[("refined", threads)].append((time.perf_counter() - began) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--searches", type=int, default=30, help="timed searches per row (default 30)")
    parser.add_argument("--busy", type=int, default=2, help="CPU-spinning processes for the busy rows (default 2)")
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"))
    args = parser.parse_args()

    from scenegrep.pipeline.clips import ClipRules
    from scenegrep.pipeline.index_access import Location
    from scenegrep.pipeline.query import Query
    from scenegrep.pipeline.search import Filters
    from scenegrep.serve.engine import Engine

    blas = openblas_threads()
    if blas is None:
        sys.exit("numpy's BLAS is not its bundled OpenBLAS: nothing to compare")
    db = os.path.join(args.work, f"serve-latency-{args.frames}")
    if not os.path.isdir(db):
        sys.exit(f"no index at {db}: run `python bench/serve_latency.py --frames {args.frames} --queries 1` first")
    engine = Engine(Location(db=db), os.path.join(args.work, "vit-b32-clip-tokenizer"))
    engine.warm_up()
    for words in WORDS:  # load the HNSW index, keep the refined row's text
        engine.search(Query.parse([f"warm {words}"]), {}, 10, Filters(), ClipRules())

    results = {"as the machine is": (measure(engine, args.searches, blas[1], "idle"), os.getloadavg()[0])}
    stop = multiprocessing.Event()
    spinners = [multiprocessing.Process(target=spin, args=(stop,), daemon=True) for _ in range(args.busy)]
    for process in spinners:
        process.start()
    try:
        time.sleep(2)
        results[f"{args.busy} busy processes"] = (measure(engine, args.searches, blas[1], "busy"), os.getloadavg()[0])
    finally:
        stop.set()
        for process in spinners:
            process.join()

    print(f"warm Engine.search, 10 clips, {args.frames} frames, ViT-B/32-sized text tower, {args.searches} searches "
          f"per row, {os.cpu_count()} CPU(s)")
    print(f"{'machine':22} {'load':>5} {'search':9} {'BLAS':>5} {'p50 ms':>8} {'p95 ms':>8} {'p95 vs 2 threads':>17}")
    for machine, (times, load) in results.items():
        for (kind, threads), values in times.items():
            ratio = np.percentile(values, 95) / np.percentile(times[(kind, 2)], 95)
            print(f"{machine:22} {load:5.1f} {kind:9} {threads:5d} {np.percentile(values, 50):8.1f} "
                  f"{np.percentile(values, 95):8.1f} {ratio:17.2f}")


if __name__ == "__main__":
    main()
