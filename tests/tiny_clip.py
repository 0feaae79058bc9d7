"""A tiny random-weight CLIP, saved like a real one, for plumbing tests.

It proves the pipeline end to end (loading through `from_pretrained(path)`,
preprocessing, batching, storing) but cannot tell a red circle from a blue
square: semantic tests use the trained miniature model in sample_videos/.
"""

from __future__ import annotations

import json
import os

SPECIALS = ["<|startoftext|>", "<|endoftext|>"]


def _byte_chars() -> list[str]:
    """GPT-2/CLIP's reversible byte → unicode table (a visible char per byte)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars, n = [], 0
    for b in range(256):
        if b in printable:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + n))
            n += 1
    return chars


def save_tiny_clip(folder: str, seed: int = 0, image_size: int = 32) -> str:
    """Write a tiny CLIPModel + character-level CLIP tokenizer + processor to `folder`."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    os.makedirs(folder, exist_ok=True)
    chars = _byte_chars()
    vocab = {token: i for i, token in enumerate(SPECIALS + chars + [c + "</w>" for c in chars])}
    with open(os.path.join(folder, "vocab.json"), "w") as fh:
        json.dump(vocab, fh)
    with open(os.path.join(folder, "merges.txt"), "w") as fh:
        fh.write("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"),
        bos_token=SPECIALS[0], eos_token=SPECIALS[1], pad_token=SPECIALS[1], unk_token=SPECIALS[1],
    )
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        vision_config=dict(
            image_size=image_size, patch_size=8, hidden_size=32, intermediate_size=64,
            num_hidden_layers=2, num_attention_heads=2,
        ),
        projection_dim=16,
    )
    model = CLIPModel(config)
    model.save_pretrained(folder)
    image_processor = CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size})
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
