#!/usr/bin/env python
"""Train the tiny CLIP test fixture in ``sample_videos/mini_clip/``.

Usage (from the repository root, after ``python tools/make_sample_videos.py``)::

    python tools/train_mini_clip.py                 # ~4-5 min on 2 CPU cores
    python tools/train_mini_clip.py --out DIR --steps N --seed S

What it does, deterministically (fixed seed, deterministic torch ops,
``torch.set_num_threads(2)``):

1. builds a tiny byte-level BPE ``CLIPTokenizer`` whose merges form each word
   of the caption vocabulary (see ``WORDS``) as a single token, and a
   ``CLIPImageProcessor`` (shortest_edge 64, centre crop 64);
2. renders a pool of random synthetic scenes with ``tools/scenes.py`` (every
   shape x colour x background x motion, random position / size / time) at
   16:9, degrades them a little (JPEG re-encoding with 4:2:0 chroma, noise) to
   look like H.264 frames, and preprocesses them with *the same* image
   processor that is saved with the model;
3. trains a small ``transformers.CLIPModel`` from scratch with a
   multi-positive contrastive loss (captions sometimes omit the background or
   use "ball" for circle; any image matching all attributes a caption names
   counts as a positive);
4. saves model (safetensors) + processor with ``save_pretrained``, reloads
   them from disk and reports text->image top-1 retrieval accuracy on a
   held-out rendered set and on mid-scene frames decoded from the sample
   videos against ``sample_videos/annotations.json``; writes ``TRAINING.md``.

The result is a *test fixture*: it only knows the synthetic vocabulary below.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scenes import COLOURS, MOTIONS, SHAPE_SYNONYMS, SHAPES, Scene, caption, render  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEED = 1234
IMAGE_SIZE = 64

#: Every word the tokenizer knows as a single token (anything else falls back
#: to byte-level single-character tokens, so no text is ever rejected).
WORDS = sorted(
    {"a", "on", "background", "moving", "left", "right", "up", "down", "bouncing", "still"}
    | set(COLOURS)
    | {w for syns in SHAPE_SYNONYMS.values() for w in syns}
)
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


# --------------------------------------------------------------------------
# Tokenizer / processor
# --------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def build_tokenizer():
    """Byte-level BPE CLIPTokenizer: 512 byte tokens + one merge chain per word."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    merges: list[tuple[str, str]] = []
    # Longest words first so their chains get the lowest ranks and are not
    # pre-empted by a pair belonging to a shorter word.
    for word in sorted(WORDS, key=lambda w: (-len(w), w)):
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        left = pieces[0]
        for right in pieces[1:]:
            pair = (left, right)
            if pair not in merges:
                merges.append(pair)
            left = left + right
            if left not in vocab:
                vocab[left] = len(vocab)
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    tok._mini_vocab, tok._mini_merges = vocab, merges  # also written as vocab.json / merges.txt
    return tok


def save_bpe_files(tok, out: Path) -> None:
    """Write the classic vocab.json + merges.txt next to tokenizer.json."""
    (out / "vocab.json").write_text(json.dumps(tok._mini_vocab, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in tok._mini_merges]
    (out / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_processor():
    from transformers import CLIPImageProcessor, CLIPProcessor

    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        improc = CLIPImageProcessor(
            size={"shortest_edge": IMAGE_SIZE},
            crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        )
    return CLIPProcessor(image_processor=improc, tokenizer=build_tokenizer())


def build_model(tok):
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    text = CLIPTextConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=64,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,  # text tower pools at the first EOS
        pad_token_id=tok.pad_token_id,
    )
    vision = CLIPVisionConfig(
        image_size=IMAGE_SIZE,
        patch_size=8,
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=3,
        num_attention_heads=4,
        projection_dim=64,
    )
    cfg = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=64)
    return CLIPModel(cfg)


def _emb(out) -> torch.Tensor:
    """get_*_features returns a tensor (transformers 4) or a ModelOutput (5)."""
    if isinstance(out, torch.Tensor):
        return out
    return out.pooler_output


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

FRAME_SIZES = [(320, 180), (320, 180), (256, 144), (384, 216)]


def random_scene(rng: random.Random, combo: tuple[str, str, str] | None = None) -> Scene:
    shape, colour, bg = combo or (
        rng.choice(SHAPES),
        rng.choice(list(COLOURS)),
        None,
    )
    if bg is None:
        bg = rng.choice([c for c in COLOURS if c != colour])
    return Scene(
        shape=shape,
        colour=colour,
        background=bg,
        motion=rng.choice(MOTIONS),
        x=rng.uniform(0.15, 0.85),
        y=rng.uniform(0.15, 0.85),
        size=rng.uniform(0.3, 0.55),
        duration=rng.uniform(4.0, 6.0),
    )


def degrade(img: np.ndarray, rng: random.Random) -> np.ndarray:
    """Cheap stand-in for H.264 artefacts: JPEG (4:2:0) + noise + colour jitter."""
    out = io.BytesIO()
    Image.fromarray(img).save(out, "JPEG", quality=rng.randint(20, 85), subsampling=2)
    out.seek(0)
    x = np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)
    x += np.float32(rng.uniform(-12, 12))  # brightness
    x *= np.asarray([rng.uniform(0.9, 1.1) for _ in range(3)], dtype=np.float32)  # per-channel gain
    sigma = rng.uniform(0.0, 6.0)
    if sigma > 0.5:
        nrng = np.random.default_rng(rng.getrandbits(32))
        x += nrng.normal(0.0, sigma, size=x.shape).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def render_pool(n: int, improc, rng: random.Random, augment: bool = True):
    """Render ``n`` random scenes -> (pixel_values fp16 [n,3,64,64], scenes)."""
    scenes, chunks, batch = [], [], []
    for i in range(n):
        sc = random_scene(rng)
        w, h = rng.choice(FRAME_SIZES)
        img = render(sc, rng.uniform(0.0, sc.duration), w, h)
        if augment:
            img = degrade(img, rng)
        scenes.append(sc)
        batch.append(img)
        if len(batch) == 512 or i == n - 1:
            pv = improc(images=batch, return_tensors="pt")["pixel_values"]
            chunks.append(pv.to(torch.float16))
            batch = []
    return torch.cat(chunks), scenes


def train_caption(sc: Scene, rng: random.Random) -> tuple[str, tuple[str | None, str | None, str | None]]:
    """Random phrasing of a scene's caption + the attributes it names.

    Returns ``(text, (shape, colour, background))`` with ``None`` for
    attributes the text does not mention (used for multi-positive targets).
    """
    noun = rng.choice(SHAPE_SYNONYMS[sc.shape])
    with_motion = rng.random() < 0.5
    r = rng.random()
    if r < 0.65:  # full caption (the annotation format)
        return caption(sc, motion=with_motion, shape_word=noun), (sc.shape, sc.colour, sc.background)
    words = ["a", sc.colour, noun]
    if with_motion and sc.motion != "still":
        words.append(sc.motion)
    if r < 0.9:  # "a red ball bouncing"
        return " ".join(words), (sc.shape, sc.colour, None)
    # "a circle on a blue background"
    words = ["a", noun] + ([sc.motion] if with_motion and sc.motion != "still" else [])
    return " ".join(words + ["on", "a", sc.background, "background"]), (sc.shape, None, sc.background)


def compat(attrs, scenes) -> torch.Tensor:
    """[n_text, n_image] bool: image matches every attribute the text names."""
    m = torch.zeros(len(attrs), len(scenes), dtype=torch.bool)
    for i, (s, c, b) in enumerate(attrs):
        for j, sc in enumerate(scenes):
            m[i, j] = (s is None or s == sc.shape) and (c is None or c == sc.colour) and (
                b is None or b == sc.background
            )
    return m


def sample_batch(by_combo, n_pool: int, batch: int, g: torch.Generator) -> list[int]:
    """Half the batch in hard-negative groups, half uniformly random.

    A group is one (colour, background) pair with every shape, so the model
    has to look at the *shape* (the hardest attribute) to tell them apart.
    """
    keys = sorted(k for k, v in by_combo.items() if len(v) == len(SHAPES))
    idx: list[int] = []
    n_groups = batch // 2 // len(SHAPES)
    for k in torch.randperm(len(keys), generator=g)[:n_groups].tolist():
        for shape in SHAPES:
            lst = by_combo[keys[k]][shape]
            idx.append(lst[int(torch.randint(len(lst), (1,), generator=g))])
    rest = [i for i in torch.randperm(n_pool, generator=g)[: batch].tolist() if i not in set(idx)]
    return idx + rest[: batch - len(idx)]


def multi_positive_ce(logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """-log(sum of softmax probability over the positives), averaged over rows."""
    lse_all = torch.logsumexp(logits, dim=1)
    lse_pos = torch.logsumexp(logits.masked_fill(~pos, float("-inf")), dim=1)
    return (lse_all - lse_pos).mean()


# --------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------


@torch.no_grad()
def embed_texts(model, tok, texts):
    enc = tok(texts, padding=True, return_tensors="pt")
    return F.normalize(_emb(model.get_text_features(**enc)), dim=-1)


@torch.no_grad()
def embed_images(model, pixel_values):
    return F.normalize(_emb(model.get_image_features(pixel_values=pixel_values.float())), dim=-1)


def top1(sim: torch.Tensor, correct: list[int]) -> float:
    return float((sim.argmax(dim=1) == torch.tensor(correct)).float().mean())


def heldout_set(improc, seed: int):
    """One degraded image per (shape, colour, background) combo: 120 scenes."""
    rng = random.Random(seed + 999)
    combos = [(s, c, b) for s in SHAPES for c in COLOURS for b in COLOURS if b != c]
    scenes = [random_scene(rng, combo) for combo in combos]
    imgs = [degrade(render(sc, rng.uniform(0, sc.duration), 320, 180), rng) for sc in scenes]
    pv = improc(images=imgs, return_tensors="pt")["pixel_values"]
    return pv, scenes


def video_frames(video_dir: Path):
    """Mid-scene frame of every annotated scene: (frames, captions, scene info)."""
    import av

    ann = json.loads((video_dir / "annotations.json").read_text())
    frames, caps, info = [], [], []
    for v in ann["videos"]:
        with av.open(str(video_dir / v["file"])) as c:
            decoded = [(float(f.pts * f.time_base), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
        for s in v["scenes"]:
            mid = (s["start"] + s["end"]) / 2
            frames.append(min(decoded, key=lambda tf: abs(tf[0] - mid))[1])
            caps.append(s["caption"])
            info.append((v["file"], s))
    return frames, caps, info


def evaluate(model, proc, video_dir: Path, seed: int) -> dict:
    model.eval()
    tok, improc = proc.tokenizer, proc.image_processor
    res: dict = {}

    pv, scenes = heldout_set(improc, seed)
    sim = embed_texts(model, tok, [caption(s) for s in scenes]) @ embed_images(model, pv).T
    res["heldout_full_caption_top1"] = top1(sim, list(range(len(scenes))))
    res["heldout_n"] = len(scenes)

    if (video_dir / "annotations.json").exists():
        frames, caps, info = video_frames(video_dir)
        img = embed_images(model, improc(images=frames, return_tensors="pt")["pixel_values"])
        sim = embed_texts(model, tok, caps) @ img.T
        res["video_caption_top1"] = top1(sim, list(range(len(caps))))
        res["video_n"] = len(caps)
        res["video_failures"] = [caps[i] for i in range(len(caps)) if int(sim[i].argmax()) != i]
        # Short queries ("a blue star"): each (shape, colour) occurs once in the videos.
        short = [f"a {s['colour']} {s['shape']}" for _, s in info]
        sim = embed_texts(model, tok, short) @ img.T
        res["video_short_query_top1"] = top1(sim, list(range(len(short))))
        q = "a red ball bouncing"
        best = int((embed_texts(model, tok, [q]) @ img.T)[0].argmax())
        res["red_ball_bouncing_best"] = f"{info[best][0]} {info[best][1]['start']}-{info[best][1]['end']}: {caps[best]}"
    return res


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Train the tiny CLIP test fixture.")
    ap.add_argument("--out", default=str(ROOT / "sample_videos" / "mini_clip"))
    ap.add_argument("--videos", default=str(ROOT / "sample_videos"))
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--pool", type=int, default=6144)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args(argv)

    t0 = time.time()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(2)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    rng = random.Random(args.seed)

    proc = build_processor()
    tok, improc = proc.tokenizer, proc.image_processor
    for w in WORDS:  # every vocabulary word is one token
        ids = tok(w, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1, (w, ids, tok.convert_ids_to_tokens(ids))
    model = build_model(tok)
    nparams = sum(p.numel() for p in model.parameters())
    print(f"vocab {len(tok)} tokens, model {nparams / 1e6:.2f} M params", flush=True)

    pool, pool_scenes = render_pool(args.pool, improc, rng)
    print(f"rendered pool of {len(pool)} images in {time.time() - t0:.0f} s", flush=True)

    by_combo: dict[tuple[str, str], dict[str, list[int]]] = {}
    for i, sc in enumerate(pool_scenes):
        by_combo.setdefault((sc.colour, sc.background), {}).setdefault(sc.shape, []).append(i)

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05, betas=(0.9, 0.98))
    warm = max(1, args.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps))),
    )
    model.train()
    g = torch.Generator().manual_seed(args.seed)
    t1 = time.time()
    running = None
    for step in range(args.steps):
        idx = sample_batch(by_combo, len(pool), args.batch, g)
        scenes = [pool_scenes[i] for i in idx]
        texts, attrs = zip(*(train_caption(sc, rng) for sc in scenes))
        pos = compat(attrs, scenes)
        enc = tok(list(texts), padding=True, return_tensors="pt")
        t_emb = F.normalize(_emb(model.get_text_features(**enc)), dim=-1)
        i_emb = F.normalize(_emb(model.get_image_features(pixel_values=pool[idx].float())), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * t_emb @ i_emb.T
        loss = 0.5 * (multi_positive_ce(logits, pos) + multi_positive_ce(logits.T, pos.T))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  (ema {running:.4f})  "
                  f"scale {scale.item():.1f}  {time.time() - t1:.0f} s", flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    proc.save_pretrained(out)
    save_bpe_files(tok, out)
    train_s = time.time() - t0

    # Reload exactly what was saved, the way users will.
    from transformers import AutoTokenizer, CLIPModel, CLIPProcessor

    proc2 = CLIPProcessor.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)
    model2 = CLIPModel.from_pretrained(out)
    e = embed_texts(model2, proc2.tokenizer, ["a red circle on a blue background", "a blue square on a red background"])
    assert float(e[0] @ e[1]) < 0.99, "different captions must give different text embeddings"
    metrics = evaluate(model2, proc2, Path(args.videos), args.seed)
    metrics["final_loss_ema"] = round(running, 4)
    metrics["train_seconds"] = round(train_s, 1)
    print(json.dumps(metrics, indent=2))
    write_training_md(out, args, nparams, len(tok), metrics)
    size = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"saved to {out} ({size / 1e6:.2f} MB) in {time.time() - t0:.0f} s total")
    return 0


def write_training_md(out: Path, args, nparams: int, vocab: int, m: dict) -> None:
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    text = f"""\
# mini_clip: a tiny CLIP *test fixture*

Trained from scratch by

    python tools/train_mini_clip.py --seed {args.seed} --steps {args.steps} --batch {args.batch} --pool {args.pool}

(deterministic: fixed seed, `torch.use_deterministic_algorithms(True)`,
`torch.set_num_threads(2)`, CPU; re-running reproduces these numbers up to
floating-point noise). Load it with `CLIPModel.from_pretrained`,
`CLIPProcessor.from_pretrained` / `AutoTokenizer.from_pretrained` on this folder,
offline.

## What it is

A `transformers.CLIPModel` with {nparams / 1e6:.2f} M parameters
(vision: ViT 64x64 px, 8x8 patches, 3 layers, width 64; text: 2 layers,
width 64; projection 64) and a {vocab}-token byte-level BPE `CLIPTokenizer`
whose merges turn each known word into one token:
{", ".join(WORDS)}.
Unknown words still tokenize (byte-level characters) but mean nothing to it.
The image processor resizes the short edge to 64 and centre-crops 64x64.

It was trained on synthetic frames rendered by `tools/scenes.py` (one flat
shape -- circle/ball, square, triangle, star -- of one of six colours on a flat
background of another, at a random place/size/time of a still or moving
scene, 16:9, JPEG-degraded) with captions such as
"a red circle bouncing on a blue background", "a red ball bouncing" or
"a circle on a blue background".

## What it is NOT

Not a product model: it knows nothing beyond these shapes and colours, and
motion words are in its vocabulary but cannot be seen in a single frame (it
learnt to ignore them). Use it only as a small, fast, offline test fixture for
scenegrep's indexing/search pipeline on `sample_videos/`.

## Measured metrics (text -> image, cosine similarity, top-1)

| evaluation | result |
|---|---|
| held-out rendered scenes, full caption among all {m['heldout_n']} shape x colour x background combos | {pct(m['heldout_full_caption_top1'])} |
| sample videos: annotated caption -> mid-scene frame among all {m.get('video_n', 0)} scenes | {pct(m.get('video_caption_top1', float('nan')))} |
| sample videos: "a <colour> <shape>" -> mid-scene frame | {pct(m.get('video_short_query_top1', float('nan')))} |
| query "a red ball bouncing" -> best frame | {m.get('red_ball_bouncing_best', 'n/a')} |

Final training loss (EMA): {m['final_loss_ema']}; training + saving took
{m['train_seconds']:.0f} s wall clock on a 2-core CPU (shared with other jobs at the time;
roughly 3-4 min on an idle 2-core machine).
"""
    (out / "TRAINING.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
