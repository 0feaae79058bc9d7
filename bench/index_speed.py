"""Indexing speed: a naive baseline, scenegrep, and the decode-only and encode-only bounds, measured in one run.

Makes its own deterministic H.264 test video (moving shapes, shot changes, a
keyframe every 10 s, 3 B-frames; 720p by default), a ViT-B/32-sized CLIPModel
with random weights (CLIPConfig defaults: the real model's compute) and
temporary Chroma folders. Every run below executes in a fresh process (so its
peak RSS is its own); model loading and imports are outside every timer.

    python bench/index_speed.py                       # 2-minute 720p video, N=2 (about 4 min on 2 busy cores)
    python bench/index_speed.py --minutes 5 --every 1
    python bench/index_speed.py --rss-minutes 2,10 --height 360   # also: `scenegrep index` peak RSS by video length
    python bench/index_speed.py --skip-main --rss-minutes 1,4 --rss-workers 1,2 --height 360   # ... with worker processes
    python bench/index_speed.py --skip-main --cuts --repeat 4     # scenegrep with and without recording shot changes
    python bench/index_speed.py --skip-main --workers 1,2 --archive 8           # 8 videos of --minutes: scaling table
    python bench/index_speed.py --skip-main --workers 1,16 --long 22 --device cuda   # one 22-minute episode on a GPU box

Runs:
  naive      the way a typical script does it: OpenCV seek per sample
             (CAP_PROP_POS_FRAMES), transformers' CLIPProcessor (PIL),
             fp32, one stage after another for each batch of 32, a Chroma
             add per batch
  scenegrep  index_videos: the shipped path (stages overlapped, --precision auto)
  decode     bound: scenegrep's sampler alone (strategy auto)
  encode     bound: scenegrep's torch preprocessing + the model alone, on
             frames decoded beforehand; then Chroma adds alone
  ideal      sum of the isolated stage times (decode + preprocess + encode + store)
Each run goes --repeat times (round robin) and the table keeps its fastest, so
a burst of load from other processes does not decide a ratio. Then:
scenegrep / naive and scenegrep / ideal (as speed ratios), and the cold latency
of `scenegrep search` (a fresh process) on the index scenegrep built.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from fractions import Fraction

import numpy as np

os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def make_video(path: str, seconds: float, width=1280, height=720, fps=Fraction(24000, 1001), gop_seconds=10,
               seed: int = 0) -> str:
    """Deterministic synthetic 720p H.264: a shot change every ~4 s, moving shapes, noise texture."""
    import av

    if os.path.exists(path):
        return path
    rng = np.random.default_rng(seed)
    frames = int(seconds * fps)
    texture = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"g": str(int(gop_seconds * fps)), "bf": "3", "preset": "veryfast", "crf": "23"}
        shot_colour = None
        for i in range(frames):
            if i % 97 == 0:
                shot_colour = rng.integers(0, 255, 3)
                background = rng.integers(0, 255, 3)
            image = np.empty((height, width, 3), np.uint8)
            image[:] = background
            image += texture
            x = int((i % 97) / 97 * (width - 200))
            y = height // 2 - 100 + int(80 * np.sin(i / 10))
            image[y : y + 200, x : x + 200] = shot_colour
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def vit_b32(folder: str, clip_tokenizer: bool = False) -> str:
    """A ViT-B/32-sized CLIP with random weights, saved like a real one. Its
    tokenizer is tests/tiny_clip's (one token per character), or with
    `clip_tokenizer` CLIP's own byte-pair tokenizer (bench/clip_tokenizer.py)
    and vocabulary size, for benchmarks whose cost grows with a text's tokens."""
    if os.path.exists(os.path.join(folder, "config.json")):
        return folder
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from tiny_clip import save_tiny_clip

    save_tiny_clip(folder)  # tokenizer and processor files
    torch.manual_seed(0)
    if clip_tokenizer:
        from clip_tokenizer import save_clip_tokenizer

        tokenizer = save_clip_tokenizer(folder, os.path.dirname(os.path.abspath(folder)))
        # openai/clip-vit-base-patch32's text ids: the old defaults, so the end of a text is found by argmax
        ids = {"bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1}
    else:
        tokenizer = CLIPTokenizer.from_pretrained(folder)
        ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    config = CLIPConfig(text_config={"vocab_size": len(tokenizer), **ids})
    CLIPModel(config).save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


NAIVE_BATCH = 32
"""Frames per model call and per Chroma add in the naive baseline: what such scripts typically use."""


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the runs, each in its own process -------------------------------------------------


def run_naive(path: str, model: str, every: float, db: str) -> dict:
    """A typical script: OpenCV seek per sample, CLIPProcessor (PIL), fp32, stages one after another per batch."""
    import chromadb
    import cv2  # noqa: F401  (loaded before the timer, as the script loads it; naive_batches uses it)
    import torch
    from transformers import CLIPModel, CLIPProcessor

    clip = CLIPModel.from_pretrained(model).eval()
    processor = CLIPProcessor.from_pretrained(model)
    collection = chromadb.PersistentClient(db).get_or_create_collection("frames", metadata={"hnsw:space": "cosine"})
    stages = {"decode": 0.0, "preprocess": 0.0, "encode": 0.0, "store": 0.0}
    start = time.perf_counter()
    frames = 0
    batches = naive_batches(path, every)
    while True:
        t0 = time.perf_counter()
        images, kept = next(batches, ([], []))
        t1 = time.perf_counter()
        if not images:
            break
        inputs = processor(images=images, return_tensors="pt")
        t2 = time.perf_counter()
        with torch.no_grad():
            features = clip.get_image_features(pixel_values=inputs["pixel_values"])
            features = getattr(features, "pooler_output", features)
            features = torch.nn.functional.normalize(features, dim=-1).numpy()
        t3 = time.perf_counter()
        collection.add(ids=[f"{path}:{t}" for t in kept], embeddings=features,
                       metadatas=[{"path": path, "t": t} for t in kept])
        t4 = time.perf_counter()
        for stage, seconds in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[stage] += seconds
        frames += len(kept)
    return {"wall": time.perf_counter() - start, "frames": frames, "stages": stages, "rss": peak_rss_mb()}


def naive_batches(path: str, every: float):
    """The typical script's samples of `path`: an OpenCV seek to each time on the
    `every` grid, as PIL images, NAIVE_BATCH at a time: (images, times) per batch
    that decoded any."""
    import cv2
    from PIL import Image

    capture = cv2.VideoCapture(path)
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
        times = [i * every for i in range(int(capture.get(cv2.CAP_PROP_FRAME_COUNT) / fps // every) + 1)]
        for first in range(0, len(times), NAIVE_BATCH):
            images, kept = [], []
            for t in times[first : first + NAIVE_BATCH]:
                capture.set(cv2.CAP_PROP_POS_FRAMES, round(t * fps))
                ok, bgr = capture.read()
                if ok:
                    images.append(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                    kept.append(t)
            if images:
                yield images, kept
    finally:
        capture.release()


def run_scenegrep(path: str, model: str, every: float, db: str, precision: str, record_cuts: bool = True,
                  workers: int | None = None) -> dict:
    """The shipped path: index_videos with overlapped stages (record_cuts False: without recording shot changes)."""
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.index_access import Location, open_index
    from scenegrep.pipeline.indexer import index_videos

    encoder = ClipEncoder(model, device="cpu", precision=precision).load()  # model load is not a stage
    with open_index(Location(db=db), write=True) as opened:
        store = opened.for_writing(encoder.info, every)
    start, start_cpu = time.perf_counter(), _cpu_seconds()
    results = list(index_videos([video_for(path)], encoder, store, record_cuts=record_cuts, workers=workers))
    assert results[0].status == "indexed", results[0].reason
    cuts = store.indexed_videos()[0].cuts
    return {"wall": time.perf_counter() - start, "cpu": _cpu_seconds() - start_cpu, "frames": results[0].frames,
            "precision": encoder.precision, "strategy": results[0].strategy, "rss": peak_rss_mb(),
            "cuts": None if cuts is None else len(cuts)}


def _cpu_seconds() -> float:
    """CPU time of this process's threads and of its finished children (worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_decode(path: str, model: str, every: float, db: str, precision: str) -> dict:
    """Bound: scenegrep's sampler alone, frames dropped as they come."""
    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.sample import VideoSampler

    start = time.perf_counter()
    with VideoSampler(video_for(path), every) as sampler:
        frames = sum(1 for _ in sampler)
        strategy = sampler.used_strategy
    wall = time.perf_counter() - start
    return {"wall": wall, "frames": frames, "stages": {"decode": wall}, "strategy": strategy, "rss": peak_rss_mb()}


def run_encode(path: str, model: str, every: float, db: str, precision: str) -> dict:
    """Bound: preprocessing and the model alone on frames decoded beforehand; then Chroma adds alone."""
    import torch

    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.index_access import Location, open_index
    from scenegrep.pipeline.sample import VideoSampler

    video = video_for(path)
    with VideoSampler(video, every) as sampler:
        decoded = list(sampler)  # outside the timers
    encoder = ClipEncoder(model, device="cpu", precision=precision).load()
    encoder.embed_pixels(encoder.preprocess([decoded[0].pixels]))  # warm-up: first calls pick kernels
    t0 = time.perf_counter()
    prepared = [encoder.preprocess([frame.pixels]) for frame in decoded]  # as the decode threads do on a CPU
    t1 = time.perf_counter()
    vectors = np.concatenate([encoder.embed_pixels(torch.cat(prepared[i : i + encoder.batch_size]))
                              for i in range(0, len(prepared), encoder.batch_size)])
    t2 = time.perf_counter()
    with open_index(Location(db=db), write=True) as opened:
        store = opened.for_writing(encoder.info, every)
    t3 = time.perf_counter()
    for i in range(0, len(decoded), encoder.batch_size):
        store.add_frames(video, [f.t for f in decoded[i : i + encoder.batch_size]], vectors[i : i + encoder.batch_size])
    t4 = time.perf_counter()
    stages = {"preprocess": t1 - t0, "encode": t2 - t1, "store": t4 - t3}
    return {"wall": t2 - t0, "frames": len(decoded), "stages": stages, "rss": peak_rss_mb()}


def run_naive_all(paths: list[str], model: str, every: float, db: str, device: str = "cpu") -> dict:
    """The typical script over several videos, model loading included (timed from outside as a whole process)."""
    import chromadb
    import torch
    from transformers import CLIPModel, CLIPProcessor

    clip = CLIPModel.from_pretrained(model).to(device).eval()
    processor = CLIPProcessor.from_pretrained(model)
    collection = chromadb.PersistentClient(db).get_or_create_collection("frames", metadata={"hnsw:space": "cosine"})
    frames = 0
    for path in paths:
        for images, kept in naive_batches(path, every):
            with torch.no_grad():
                inputs = processor(images=images, return_tensors="pt")["pixel_values"].to(device)
                features = clip.get_image_features(pixel_values=inputs)
                features = getattr(features, "pooler_output", features)
                features = torch.nn.functional.normalize(features, dim=-1).cpu().numpy()
            collection.add(ids=[f"{path}:{t}" for t in kept], embeddings=features,
                           metadatas=[{"path": path, "t": t} for t in kept])
            frames += len(kept)
    return {"wall": 0.0, "frames": frames, "rss": peak_rss_mb()}


RUNS = {"naive-all": run_naive_all, "naive": run_naive, "scenegrep": run_scenegrep, "decode": run_decode, "encode": run_encode}


def in_child(name: str, *args) -> dict:
    """Run RUNS[name](*args) in a fresh interpreter (nothing shared with this one); returns its dict."""
    import json
    import subprocess

    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", json.dumps([name, *args])],
                         check=True, stdout=subprocess.PIPE).stdout
    result = json.loads(out.decode().strip().splitlines()[-1])
    print(f"# {name}: {result['wall']:.1f} s, {result['frames']} frames, peak RSS {result['rss']:.0f} MB", file=sys.stderr)
    return result


def cold_search(db: str, model: str, tries: int = 3) -> list[float]:
    """Wall seconds of `scenegrep search` in a fresh process, `tries` times."""
    import subprocess

    walls = []
    for _ in range(tries):
        start = time.perf_counter()
        subprocess.run([os.path.join(os.path.dirname(sys.executable), "scenegrep"), "search", "a red square",
                        "--db", db, "--model", model, "-k", "5"], check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    return walls


def index_rss(path: str, model: str, every: float, db: str, workers: int) -> tuple[float, float]:
    """(wall s, peak RSS MB) of `scenegrep index PATH --workers W` in a fresh process (its own peak: the kernel
    reports the largest of the process and its worker processes, not their sum)."""
    import subprocess

    start = time.perf_counter()
    process = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "scenegrep"), "index", path, "--db", db,
                                "--model", model, "--every", str(every), "--workers", str(workers)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"scenegrep index {path} failed (exit {process.returncode})")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


# -- the table -------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="test video length (default 2)")
    parser.add_argument("--height", type=int, default=720, choices=[360, 720, 1080], help="test video height (default 720)")
    parser.add_argument("--every", type=float, default=2.0, help="sampling interval N (default 2)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="scenegrep's precision (default auto, as `scenegrep index`); the naive run is fp32")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each kind, in turn; the table keeps each kind's fastest (default 2)")
    parser.add_argument("--rss-minutes", default="",
                        help="also run `scenegrep index` on videos of these lengths (e.g. 2,10) at --height and "
                             "report each one's peak RSS")
    parser.add_argument("--rss-workers", default="1",
                        help="--rss-minutes runs: with these --workers counts (default 1), e.g. 1,2")
    parser.add_argument("--skip-main", action="store_true", help="only the --rss-minutes, --workers or --cuts runs")
    parser.add_argument("--cuts", action="store_true",
                        help="also what recording shot changes costs (issue 14): scenegrep with and without it, "
                             "--repeat times each in turn, wall and CPU time")
    parser.add_argument("--cuts-workers", type=int, default=None,
                        help="--cuts runs: decoding worker processes (default: as `scenegrep index`)")
    parser.add_argument("--workers", default="",
                        help="also the worker-process table (bench/index_scaling.py) for these counts, e.g. 1,2,4,8,16; "
                             "1 is scenegrep's previous indexer (decoding in the process's threads)")
    parser.add_argument("--archive", type=int, default=8, help="--workers runs: this many videos of --minutes (default 8)")
    parser.add_argument("--long", type=float, default=0.0,
                        help="--workers runs: one video of this many minutes instead of the archive")
    parser.add_argument("--device", default="cpu", help="--workers runs: cpu, cuda (default cpu)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"),
                        help="folder for the generated videos and model (kept between runs)")
    args = parser.parse_args()

    os.makedirs(args.work, exist_ok=True)
    width = args.height * 16 // 9
    t0 = time.perf_counter()
    model = vit_b32(os.path.join(args.work, "vit-b32-random"))
    name = f"bench_{args.height}p_{args.minutes:g}min.mp4"
    path = make_video(os.path.join(args.work, name), args.minutes * 60, width, args.height)
    print(f"# input ready in {time.perf_counter() - t0:.1f} s: {path}", file=sys.stderr)

    import torch

    from scenegrep.pipeline.encode import cpu_bf16_is_fast, pick_precision

    precision = pick_precision(args.precision, "cpu")
    print(f"\n{args.height}p H.264, {args.minutes:g} min ({args.minutes * 60:.0f} video-s), N={args.every:g} s, "
          f"{os.cpu_count()} CPU(s), torch threads {torch.get_num_threads()}, load average "
          f"{os.getloadavg()[0]:.1f}, bf16 faster here: {cpu_bf16_is_fast()}, scenegrep precision {precision}")
    if not args.skip_main:
        main_table(args, path, model, precision)
    if args.cuts:
        cuts_table(args, path, model, precision)
    if args.rss_minutes:
        rss_table(args, model, width)
    if args.workers:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from index_scaling import table

        if args.long:
            videos = [make_video(os.path.join(args.work, f"bench_{args.height}p_{args.long:g}min.mp4"), args.long * 60,
                                 width, args.height)]
        else:  # the same content under several names: each is decoded and encoded (no content reuse across runs)
            videos = [make_video(os.path.join(args.work, f"bench_{args.height}p_{args.minutes:g}min_{i}.mp4"),
                                 args.minutes * 60, width, args.height, seed=i) for i in range(args.archive)]
        seconds = (args.long or args.minutes) * 60 * len(videos)
        table(videos, seconds, model, args.every, [int(w) for w in args.workers.split(",")], args.device)


def main_table(args, path: str, model: str, precision: str) -> None:
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory() as scratch:
        db = lambda run: os.path.join(scratch, run)  # noqa: E731
        best: dict[str, dict] = {}
        for attempt in range(args.repeat):  # round robin, so a burst of load elsewhere hits every run alike
            for run in ("naive", "scenegrep", "decode", "encode"):
                folder = db(f"{run}{attempt}")
                result = in_child(run, path, model, args.every, folder, *([] if run == "naive" else [precision]))
                if run not in best or result["wall"] < best[run]["wall"]:
                    best[run] = result
        naive, ours, decode, encode = best["naive"], best["scenegrep"], best["decode"], best["encode"]
        cold = cold_search(db("scenegrep0"), model)

    stages = {**decode["stages"], **encode["stages"]}
    ideal = sum(stages.values())
    rows = [
        ("naive (OpenCV seek, CLIPProcessor/PIL, fp32, sequential)", naive["wall"], naive["frames"], naive["stages"], naive["rss"]),
        (f"scenegrep ({ours['precision']}, {ours['strategy']}, overlapped)", ours["wall"], ours["frames"], {}, ours["rss"]),
        (f"decode only (scenegrep sampler, {decode['strategy']})", decode["wall"], decode["frames"], decode["stages"], decode["rss"]),
        (f"encode only (torch preprocess + {precision} model)", encode["wall"], encode["frames"],
         {k: v for k, v in encode["stages"].items() if k != "store"}, encode["rss"]),
        ("store only (Chroma add, batches)", stages["store"], encode["frames"], {"store": stages["store"]}, None),
        ("ideal (sum of the isolated stages)", ideal, ours["frames"], {}, None),
    ]

    def rate(frames, stage_seconds):
        return f"{frames / stage_seconds:7.1f}" if stage_seconds else f"{'':>7}"

    print(f"\n{'run':58} {'wall s':>7} {'frames':>6} {'video-s/s':>9} {'decode':>7} {'prep':>7} {'encode':>7} "
          f"{'store':>7} {'RSS MB':>7} {'vs naive':>8}")
    print(f"{'':58} {'':>7} {'':>6} {'':>9} {'(frames/s per stage)':>31}")
    for label, wall, frames, per_stage, rss in rows:
        cells = " ".join(rate(frames, per_stage.get(stage)) for stage in ("decode", "preprocess", "encode", "store"))
        memory = f"{rss:7.0f}" if rss else " " * 7
        print(f"{label:58} {wall:7.2f} {frames:6d} {seconds / wall:9.1f} {cells} {memory} {naive['wall'] / wall:7.2f}x")
    print(f"\nscenegrep / naive: {naive['wall'] / ours['wall']:.2f}x faster (target >= 3)")
    print(f"scenegrep / ideal: {ideal / ours['wall']:.2f} (target >= 0.85; above 1: stages ran at the same time)")
    print(f"cold `scenegrep search` (fresh process, ViT-B/32-sized local model): "
          + ", ".join(f"{w:.2f}" for w in cold) + " s (target < 3 s)")


def cuts_table(args, path: str, model: str, precision: str) -> None:
    """scenegrep with and without recording shot changes, in turn, each in a fresh process."""
    import statistics

    runs: dict[bool, list[dict]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as scratch:
        for attempt in range(args.repeat):
            for record in (False, True):
                folder = os.path.join(scratch, f"cuts{record}{attempt}")
                runs[record].append(in_child("scenegrep", path, model, args.every, folder, precision, record,
                                             args.cuts_workers))
    print(f"\nrecording shot changes while indexing ({args.repeat} runs each, in turn; workers "
          f"{args.cuts_workers or 'default'}; load average now {os.getloadavg()[0]:.1f}):")
    print(f"{'run':28} {'strategy':>9} {'cuts':>5} {'wall min':>9} {'wall med':>9} {'CPU min':>8} {'CPU med':>8}")
    for record in (False, True):
        done = runs[record]
        walls, cpus = [r["wall"] for r in done], [r["cpu"] for r in done]
        print(f"{'with cuts' if record else 'without (before issue 14)':28} {done[0]['strategy']:>9} "
              f"{str(done[0]['cuts']):>5} {min(walls):9.2f} {statistics.median(walls):9.2f} {min(cpus):8.2f} "
              f"{statistics.median(cpus):8.2f}")
    base, rec = runs[False], runs[True]

    def ratio(key, pick):
        return pick([r[key] for r in rec]) / pick([r[key] for r in base])

    print(f"with / without: wall {ratio('wall', min):.3f} (min) {ratio('wall', statistics.median):.3f} (median); "
          f"CPU {ratio('cpu', min):.3f} (min) {ratio('cpu', statistics.median):.3f} (median)   (target <= 1.05)")


def rss_table(args, model: str, width: int) -> None:
    print(f"\n`scenegrep index` peak RSS by video length ({args.height}p, N={args.every:g} s, fresh process each):")
    print(f"{'workers':>8} {'minutes':>8} {'frames':>7} {'wall s':>8} {'peak RSS MB':>12}")
    for workers in [int(w) for w in args.rss_workers.split(",")]:
        peaks = []
        for minutes in [float(m) for m in args.rss_minutes.split(",")]:
            path = make_video(os.path.join(args.work, f"bench_{args.height}p_{minutes:g}min.mp4"), minutes * 60, width,
                              args.height)
            with tempfile.TemporaryDirectory() as db:
                wall, rss = index_rss(path, model, args.every, db, workers)
            peaks.append(rss)
            print(f"{workers:8d} {minutes:8g} {int(minutes * 60 // args.every) + 1:7d} {wall:8.1f} {rss:12.0f}")
        print(f"{'':8} largest / smallest peak with {workers} worker(s): {max(peaks) / min(peaks):.3f} (target <= 1.10)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":  # one run, in a process of its own (see in_child)
        import json

        name, *run_args = json.loads(sys.argv[2])
        print(json.dumps(RUNS[name](*run_args)))
    else:
        main()
