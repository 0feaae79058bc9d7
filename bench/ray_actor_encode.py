"""Why a Ray encoding actor encodes slower than the indexing process: the same batches both ways.

    python bench/ray_actor_encode.py [--model /tmp/scenegrep-bench/vit-b32-random] [--rounds 3]

The same 32-frame batches (360p frames resized as the decoding tasks resize
them) go through `ray_tasks.FrameEncoder.encode`, the actor's own code:

  process       a FrameEncoder in this process (what `scenegrep index` does,
                with torch's default thread count)
  actor nice 15 a FrameEncoder actor at Ray's worker niceness, as `index --ray`
                ran it before taking the driver's niceness (one reserved CPU)
  actor         the actor as `index --ray` starts it now (the driver's niceness)
  actor +Nt     the same with torch's threads set to the node's N cores

While the batches are timed, `--competitors` busy processes at the default
priority stand for a node's other work (a machine shared with other jobs).
Rounds alternate the kinds call by call, so the load slows them alike:
compare the ratios, not the seconds. Each kind also reports, from
inside the method that encodes (the thread that runs the model), torch's
intra-op and inter-op thread counts, the OMP/MKL variables, the precision,
whether that thread is the one the actor was built on, and whether the
frames arrived read-only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

BATCH = 32
"""Frames per batch: the CPU encoder's default batch size."""

FRAME_SHAPE = (224, 398, 3)
"""A 360p frame as a decoding task resizes it for a 224-pixel CLIP."""


def probe_class():
    from scenegrep.pipeline.ray_tasks import FrameEncoder

    class Probe(FrameEncoder):
        """FrameEncoder with a report of where and how it encodes."""

        def __init__(self, *args, threads=None):
            import torch

            super().__init__(*args)
            self.built_on = threading.get_ident()
            if threads:
                torch.set_num_threads(threads)

        def facts(self, segment) -> dict:
            import torch

            return {"pid": os.getpid(), "nice": os.getpriority(os.PRIO_PROCESS, 0), "torch threads": torch.get_num_threads(),
                    "interop threads": torch.get_num_interop_threads(), "precision": self.encoder.precision,
                    "dtype": str(self.encoder.dtype), "method on the building thread": threading.get_ident() == self.built_on,
                    "frames read-only": not segment.pixels[0].flags.writeable,
                    **{k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}}

        def seconds(self, segment) -> float:
            return self.encode(segment).encode_seconds

    return Probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="/tmp/scenegrep-bench/vit-b32-random")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=8, help="frames per timed call (default 8)")
    parser.add_argument("--competitors", type=int, default=os.cpu_count() or 1,
                        help="busy processes at default priority while timing (default: one per core), as other "
                             "work on a node; 0 for none")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import logging

    import ray

    from scenegrep.pipeline.ray_tasks import DecodedSegment, Worker

    cores = os.cpu_count() or 1
    frames = [np.random.default_rng(i).integers(0, 256, FRAME_SHAPE, dtype=np.uint8) for i in range(args.frames)]
    segment = DecodedSegment([float(i) for i in range(args.frames)], frames, 0, "segments", Worker.here("decode"), 0.0)
    Probe = probe_class()
    kinds = {"process": Probe(args.model, "cpu", None, BATCH)}
    ray.init(num_cpus=cores + 1, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        shared = ray.put(segment)  # as the actor gets frames: from the object store
        remote = ray.remote(max_restarts=0, num_cpus=1)(Probe)
        niceness = os.getpriority(os.PRIO_PROCESS, 0)
        kinds["actor nice 15"] = remote.remote(args.model, "cpu", None, BATCH)
        kinds["actor"] = remote.remote(args.model, "cpu", None, BATCH, niceness)
        kinds[f"actor +{cores}t"] = remote.remote(args.model, "cpu", None, BATCH, niceness, threads=cores)

        def call(kind, method):
            target = kinds[kind]
            if kind == "process":
                return getattr(target, method)(segment)
            return ray.get(getattr(target, method).remote(shared))

        for kind in kinds:
            print(f"{kind:>14}: {call(kind, 'facts')}", flush=True)
        for kind in kinds:
            call(kind, "seconds")  # warm-up: first calls pick kernels
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.competitors)]
        try:
            for _ in range(args.rounds):
                for kind in kinds:
                    times[kind].append(call(kind, "seconds"))
        finally:
            for process in busy:
                process.kill()
                process.wait()
        base = statistics.median(times["process"])
        print(f"\nload average {os.getloadavg()[0]:.1f}, {args.competitors} busy process(es) at nice 0; median "
              f"seconds per {args.frames}-frame call over {args.rounds} alternating rounds:")
        for kind, seconds in times.items():
            median = statistics.median(seconds)
            print(f"{kind:>14}: {median:6.2f} s  {args.frames / median:5.1f} frames/s  x{median / base:.2f} of process  "
                  f"({', '.join(f'{s:.2f}' for s in seconds)})")
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
