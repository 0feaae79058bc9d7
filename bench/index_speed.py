"""Indexing speed, stage by stage and end to end, with ratios against a baseline run in the same process.

Makes its own deterministic 720p H.264 test video (moving shapes, shot changes,
a keyframe every 10 s, 3 B-frames), a ViT-B/32-sized CLIPModel with random
weights (CLIPConfig defaults: the real model's compute) and a temporary Chroma.

    python bench/index_speed.py              # 2-minute video, N=2 (about 3-6 min on 2 busy cores)
    python bench/index_speed.py --minutes 5 --every 1

Rows (video-seconds indexed per wall second, and frames/s):
  decode: sampling alone, per decode strategy (decode through, seek, auto, keyframes)
  preprocess: torch preprocessing alone
  encode fp32 / bf16: the model alone on preprocessed frames
  store: Chroma adds alone
  sequential: the stages one after another (decode all, then encode, then store)
  scenegrep: index_videos, stages overlapped (the shipped path)
  ideal: sum of the isolated stage times of the shipped configuration
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


def make_video(path: str, seconds: float, width=1280, height=720, fps=Fraction(24000, 1001), gop_seconds=10) -> str:
    """Deterministic synthetic 720p H.264: a shot change every ~4 s, moving shapes, noise texture."""
    import av

    if os.path.exists(path):
        return path
    rng = np.random.default_rng(0)
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


def vit_b32(folder: str) -> str:
    """A ViT-B/32-sized CLIP with random weights, saved like a real one (tokenizer from tests/tiny_clip)."""
    if os.path.exists(os.path.join(folder, "config.json")):
        return folder
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from tiny_clip import save_tiny_clip

    save_tiny_clip(folder)  # tokenizer and processor files
    torch.manual_seed(0)
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(folder)
    config = CLIPConfig(text_config={"vocab_size": len(tokenizer), "bos_token_id": tokenizer.bos_token_id,
                                     "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id})
    CLIPModel(config).save_pretrained(folder)
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    CLIPProcessor(image_processor=processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="test video length (default 2)")
    parser.add_argument("--every", type=float, default=2.0, help="sampling interval N (default 2)")
    parser.add_argument("--precisions", default="fp32,bf16", help="encoder rows to measure (default fp32,bf16)")
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "scenegrep-bench"),
                        help="folder for the generated video and model (kept between runs)")
    args = parser.parse_args()

    from scenegrep.pipeline.encode import ClipEncoder, cpu_bf16_is_fast
    from scenegrep.pipeline.files import video_for
    from scenegrep.pipeline.indexer import index_videos
    from scenegrep.pipeline.sample import VideoSampler
    from scenegrep.pipeline.store import FrameStore, open_client

    os.makedirs(args.work, exist_ok=True)
    t0 = time.perf_counter()
    path = make_video(os.path.join(args.work, f"bench_720p_{args.minutes:g}min.mp4"), args.minutes * 60)
    model = vit_b32(os.path.join(args.work, "vit-b32-random"))
    print(f"# input ready in {time.perf_counter() - t0:.1f} s: {path}", file=sys.stderr)
    video = video_for(path)
    seconds = args.minutes * 60
    rows: list[tuple[str, float, int]] = []  # (name, wall seconds, frames)

    def row(name, wall, frames):
        rows.append((name, wall, frames))
        print(f"# {name}: {wall:.1f} s, {frames} frames", file=sys.stderr)

    # -- decode strategies ------------------------------------------------------
    sampled = {}
    for strategy, sampling in [("decode", "grid"), ("seek", "grid"), ("auto", "grid"), ("keyframes", "keyframes")]:
        start = time.perf_counter()
        with VideoSampler(video, args.every, sampling=sampling, strategy="auto" if strategy == "keyframes" else strategy) as sampler:
            frames = [frame for frame in sampler]
            used = sampler.used_strategy
        row(f"decode: {strategy} ({used})", time.perf_counter() - start, len(frames))
        sampled[strategy] = frames
    grid = sampled["auto"]
    decode_auto = next(wall for name, wall, _ in rows if name.startswith("decode: auto"))
    del sampled

    # -- preprocess and encode alone -------------------------------------------
    encoders = {}
    for precision in args.precisions.split(","):
        encoder = ClipEncoder(model, device="cpu", precision=precision).load()
        encoders[precision] = encoder
        start = time.perf_counter()
        prepared = [encoder.preprocess([frame.pixels]) for frame in grid]
        preprocess_wall = time.perf_counter() - start
        if precision == "fp32":
            row("preprocess (torch, per frame)", preprocess_wall, len(prepared))
        import torch

        encoder.embed_pixels(torch.cat(prepared[: encoder.batch_size]))  # warm-up
        start = time.perf_counter()
        embeddings = [encoder.embed_pixels(torch.cat(prepared[i : i + encoder.batch_size]))
                      for i in range(0, len(prepared), encoder.batch_size)]
        row(f"encode {precision} (batch {encoder.batch_size})", time.perf_counter() - start, len(prepared))
    embeddings = np.concatenate(embeddings)

    # -- store alone -------------------------------------------------------------
    with tempfile.TemporaryDirectory() as db:
        store = FrameStore.for_indexing(open_client(db), encoders["fp32"].info, args.every)
        start = time.perf_counter()
        for i in range(0, len(grid), 32):
            store.add_frames(video, [f.t for f in grid[i : i + 32]], embeddings[i : i + 32])
        row("store (Chroma add, batches of 32)", time.perf_counter() - start, len(grid))
    del grid, prepared

    shipped = "bf16" if cpu_bf16_is_fast() else "fp32"
    stage = {name.split(" ")[0] + ("-" + name.split(" ")[1] if name.startswith("encode") else ""): wall for name, wall, _ in rows}
    ideal = decode_auto + stage["preprocess"] + stage[f"encode-{shipped}"] + stage["store"]

    # -- end to end: sequential, then overlapped --------------------------------
    def run(workers_label, fn):
        with tempfile.TemporaryDirectory() as db:
            encoder = ClipEncoder(model, device="cpu", precision=shipped).load()  # model load is not a stage
            store = FrameStore.for_indexing(open_client(db), encoder.info, args.every)
            start = time.perf_counter()
            frames = fn(encoder, store)
            row(workers_label, time.perf_counter() - start, frames)

    def sequential(encoder, store):
        with VideoSampler(video, args.every) as sampler:
            frames = list(sampler)
        vectors = encoder.embed_images([f.pixels for f in frames])
        store.add_frames(video, [f.t for f in frames], vectors)
        return len(frames)

    def overlapped(encoder, store):
        return sum(r.frames for r in index_videos([video], encoder, store))

    run(f"sequential ({shipped}, decode all → encode all → store)", sequential)
    run(f"scenegrep ({shipped}, overlapped)", overlapped)
    rows.append((f"ideal (sum of isolated stages, {shipped})", ideal, rows[-1][2]))

    # -- table ---------------------------------------------------------------------
    base = next(wall for name, wall, _ in rows if name.startswith("sequential"))
    ours = rows[-2][1]
    print(f"\n720p H.264, {args.minutes:g} min ({seconds:.0f} video-s), N={args.every:g} s, "
          f"{os.cpu_count()} CPU(s), torch threads {__import__('torch').get_num_threads()}, "
          f"bf16 faster here: {cpu_bf16_is_fast()}, peak RSS {peak_rss_mb():.0f} MB\n")
    print(f"{'stage / run':58} {'wall s':>8} {'frames':>7} {'frames/s':>9} {'video-s/s':>10} {'vs sequential':>14}")
    for name, wall, frames in rows:
        print(f"{name:58} {wall:8.2f} {frames:7d} {frames / wall:9.1f} {seconds / wall:10.1f} {base / wall:13.2f}x")
    print(f"\nscenegrep / ideal: {ideal / ours:.2f} (1.00 = overlap and batching cost nothing; "
          "above 1 = the stages ran at the same time)")


if __name__ == "__main__":
    main()
