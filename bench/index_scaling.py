"""Worker-process scaling: `scenegrep index --workers W` as whole processes, and decoding alone.

Called from `bench/index_speed.py --workers 1,2,4 [--archive 8 | --long 22] [--device cuda]`.
Each row is a fresh process timed from outside (imports, model loading and
worker start-up included, as a user waits for them), with:

  video-s/s   video seconds indexed per wall second
  cores       (user + system CPU seconds of the process and its workers) / wall:
              how many cores the run kept busy on average
  RSS MB      peak resident memory of the main process, and of the largest
              worker, sampled every SAMPLE_SECONDS from /proc
  GPU %       mean `nvidia-smi` utilisation over the run ("-" without a GPU)

Rows: the typical script (OpenCV seek, CLIPProcessor, fp32 or fp16 on a GPU,
sequential; `run_naive` one video after another), scenegrep's previous
indexer (`--workers 1`: decoding in the process's threads, as before worker
processes existed), and `--workers W` for each W asked. A decode-only table
follows: the sampler alone (W=1) against the pool of W worker processes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

SAMPLE_SECONDS = 0.2
"""How often memory and GPU utilisation are sampled: fine enough for runs of a few seconds."""


class Watch:
    """Samples a process tree's RSS (main and largest child) and the GPU's utilisation while it runs."""

    def __init__(self, pid: int):
        self.pid = pid
        self.main_rss = 0.0
        self.worker_rss = 0.0
        self.gpu: list[float] = []
        self._stop = threading.Event()
        self._smi = shutil.which("nvidia-smi")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.main_rss = max(self.main_rss, _rss_mb(self.pid))
            for child in _children(self.pid):
                self.worker_rss = max(self.worker_rss, _rss_mb(child))
            if self._smi:
                out = subprocess.run([self._smi, "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True).stdout.split()
                if out:
                    self.gpu.append(float(out[0]))
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def gpu_text(self) -> str:
        return f"{sum(self.gpu) / len(self.gpu):5.0f}" if self.gpu else f"{'-':>5}"


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def timed(command: list[str]) -> dict:
    """Run a whole process; wall seconds, cores kept busy, peak RSS of it and of its largest child, GPU %."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watch = Watch(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    watch.stop()
    out, err = process.communicate()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command[:3])} … failed:\n{err.decode()[-2000:]}")
    return {"wall": wall, "cores": (usage.ru_utime + usage.ru_stime) / wall, "rss": max(watch.main_rss, usage.ru_maxrss / 1024),
            "worker_rss": watch.worker_rss, "gpu": watch.gpu_text, "stdout": out.decode()}


def scenegrep_index(paths: list[str], model: str, every: float, workers: int, device: str) -> dict:
    with tempfile.TemporaryDirectory() as db:
        exe = os.path.join(os.path.dirname(sys.executable), "scenegrep")
        return timed([exe, "index", *paths, "--db", db, "--model", model, "--every", str(every),
                      "--workers", str(workers), "--device", device])


def naive(paths: list[str], model: str, every: float, device: str) -> dict:
    with tempfile.TemporaryDirectory() as db:
        bench = os.path.join(os.path.dirname(__file__), "index_speed.py")
        return timed([sys.executable, bench, "--child", json.dumps(["naive-all", paths, model, every, db, device])])


def decode_only(paths: list[str], every: float, workers: int) -> dict:
    code = ("import sys, json; sys.path.insert(0, %r); from index_scaling import run_decode_only; "
            "run_decode_only(json.loads(sys.argv[1]), %r, %d)") % (os.path.dirname(__file__), every, workers)
    return timed([sys.executable, "-c", code, json.dumps(paths)])


def run_decode_only(paths: list[str], every: float, workers: int) -> None:
    """In a child: sample every video (resized to 224 px as the workers do for a ViT-B/32), frames dropped."""
    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.sample import VideoSampler
    from scenegrep.pipeline.segments import SegmentedSampler
    from scenegrep.pipeline.workers import DecodePool

    size_for = lambda h, w: (224, int(224 * w / h)) if h <= w else (int(224 * h / w), 224)  # noqa: E731
    if workers == 1:
        frames = 0
        for path in paths:
            with VideoSampler(video_for(path), every) as sampler:
                frames += sum(1 for _ in sampler)
        print(frames)
        return
    from scenegrep.pipeline.overlap import prefetch_each

    with DecodePool(workers) as pool:
        jobs = ((path, lambda path=path: iter(SegmentedSampler(video_for(path), every, pool, size_for)))
                for path in paths)
        print(sum(sum(1 for _ in items) for _, items in prefetch_each(jobs, workers + 1, 16)))


def table(paths: list[str], seconds: float, model: str, every: float, workers: list[int], device: str) -> None:
    """Print the whole-process table and the decode-only scaling table."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\n{len(paths)} video(s), {seconds:.0f} video-s in all, N={every:g}, {cores} core(s), device {device}, "
          f"load average {os.getloadavg()[0]:.1f}; whole processes, start-up included")
    print(f"{'run':46} {'wall s':>7} {'video-s/s':>9} {'cores':>6} {'RSS MB':>7} {'worker MB':>9} {'GPU %':>5} "
          f"{'vs typical':>10}")
    typical = naive(paths, model, every, device)
    rows = [("typical script (OpenCV seek, CLIPProcessor)", typical)]
    for w in workers:
        label = "scenegrep --workers 1 (previous indexer)" if w == 1 else f"scenegrep --workers {w}"
        rows.append((label, scenegrep_index(paths, model, every, w, device)))
    for label, r in rows:
        print(f"{label:46} {r['wall']:7.2f} {seconds / r['wall']:9.1f} {r['cores']:6.2f} {r['rss']:7.0f} "
              f"{r['worker_rss'] or 0:9.0f} {r['gpu']} {typical['wall'] / r['wall']:9.2f}x")
    print("\ndecode only (sampling, resized to 224 px), fresh process each:")
    print(f"{'workers':>7} {'wall s':>7} {'video-s/s':>9} {'cores':>6} {'worker MB':>9} {'vs 1':>6}")
    one = None
    for w in workers:
        r = decode_only(paths, every, w)
        one = one or r["wall"]
        print(f"{w:7d} {r['wall']:7.2f} {seconds / r['wall']:9.1f} {r['cores']:6.2f} {r['worker_rss'] or 0:9.0f} "
              f"{one / r['wall']:5.2f}x")
