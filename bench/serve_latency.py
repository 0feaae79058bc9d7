"""`scenegrep serve`: warm search latency over HTTP at archive scale, against the same search in-process.

Builds a 200k-frame index of synthetic frame vectors shaped like an archive's
(`search_scale.archive_vectors`) under the ViT-B/32-sized random CLIP that
bench/index_speed.py makes, with CLIP's own tokenizer (bench/clip_tokenizer.py),
so the text tower a query runs through is ViT-B/32's size and a query has as
many tokens as with the real model. Then starts a real `scenegrep serve` process on loopback and
times text searches from request to parsed JSON (10 clips each); the baseline
rows are the same searches called in this process (`Engine.search`: text tower,
nearest frames, clip shaping), with no HTTP, no JSON and no clip records.
Queries alternate between the two, so a burst of load hits both alike.
"new text" runs the text tower every time; "refined" searches the same terms
with another filter, as the page does when a filter changes or an export is
asked for (the engine keeps recent terms' embeddings).

    python bench/serve_latency.py                 # 200k frames: ~3 min to build (kept for reruns), then ~1 min
    python bench/serve_latency.py --frames 20000  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from index_speed import vit_b32  # noqa: E402
from search_scale import archive_vectors, store_archive  # noqa: E402

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

WARM_QUERIES = 5
"""Untimed searches first, each its own text (never one of the timed ones): they load
the HNSW index in both processes and ep0000's vectors, and keep the text the
"refined" row searches again."""

WORDS = ("a red ball", "a chase", "the kitchen", "a title card", "two people talking", "a car at night",
         "rain on a window", "a dog running", "fireworks", "an empty street")


def build(db: str, model_info, frames: int) -> None:
    """The synthetic index at `db`, written through `open_index` as `scenegrep index` writes."""
    from scenegrep.pipeline.index_access import Location, open_index

    vectors, episode_of, _ = archive_vectors(frames)
    episodes = int(episode_of.max()) + 1
    first_row = np.searchsorted(episode_of, np.arange(episodes))
    times = (np.arange(frames) - first_row[episode_of]) * 2.0
    began = time.perf_counter()
    with open_index(Location(db=db), write=True) as opened:
        writer = opened.for_writing(model_info, 2.0)
        store_archive(writer, vectors, episode_of, times)
    print(f"{frames} frames in {episodes} episodes added in {time.perf_counter() - began:.1f} s", flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post(url: str, fields: list[tuple[str, str]]) -> dict:
    body = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in fields).encode()
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p95 of what was measured (a handful of queries gives rough ones: the table says n)."""
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--queries", type=at_least_one, default=100, help="timed searches per row (default 100)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"))
    args = parser.parse_args()

    from scenegrep.pipeline.clips import ClipRules
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.index_access import Location
    from scenegrep.pipeline.query import Query
    from scenegrep.pipeline.search import Filters
    from scenegrep.serve.engine import Engine

    os.makedirs(args.work, exist_ok=True)
    model = vit_b32(os.path.join(args.work, "vit-b32-clip-tokenizer"), clip_tokenizer=True)
    db = os.path.join(args.work, f"serve-latency-{args.frames}")
    if not os.path.isdir(db):
        build(db, ClipEncoder(model).info, args.frames)
    engine = Engine(Location(db=db), model)
    engine.warm_up()

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "scenegrep.cli", "serve", "--db", db, "--model", model,
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = server.stdout.readline().strip().rstrip("/")
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/api/info", timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
        warm = [f"warm-up {WORDS[i]}" for i in range(WARM_QUERIES)]
        texts = [f"{WORDS[i % len(WORDS)]} {i}" for i in range(args.queries)]
        cases = {  # label: (text, episodes, per_episode) of query i
            "new text": lambda i: (texts[i], (), None),
            "new text, 1 episode": lambda i: (texts[i] + " in one episode", ("ep0000",), None),
            "refined (same text, new filter)": lambda i: (warm[0], (), 1 + i % 3),
        }
        for text in warm:  # warm both: the HNSW index in each process, the vector cache of ep0000
            post(f"{base}/api/search", [("text", text), ("episode", "ep0000")])
            engine.search(Query.parse([text]), {}, 10, Filters(("ep0000",)), ClipRules())
        timings = {(label, way): [] for label in cases for way in ("http", "in-process")}
        for i in range(len(texts)):
            for label, case in cases.items():
                text, episodes, per_episode = case(i)
                fields = [("text", text), ("k", "10")] + [("episode", e) for e in episodes]
                fields += [("per_episode", str(per_episode))] if per_episode else []
                began = time.perf_counter()
                answer = post(f"{base}/api/search", fields)
                timings[(label, "http")].append((time.perf_counter() - began) * 1000)
                assert answer["clips"]
                began = time.perf_counter()
                engine.search(Query.parse([text]), {}, 10, Filters(episodes), ClipRules(per_episode=per_episode))
                timings[(label, "in-process")].append((time.perf_counter() - began) * 1000)
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"warm search, 10 clips, {args.frames} frames, ViT-B/32-sized text tower, {args.queries} queries per row, "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}")
    print(f"{'search':32} {'way':40} {'p50 ms':>8} {'p95 ms':>8} {'n':>5}")
    for (label, way), values in timings.items():
        shown = "HTTP, request to JSON (scenegrep serve)" if way == "http" else "in-process Engine.search (baseline)"
        p50, p95 = percentiles(values)
        print(f"{label:32} {shown:40} {p50:8.1f} {p95:8.1f} {len(values):5d}")


if __name__ == "__main__":
    main()
