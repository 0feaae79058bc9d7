"""CLIP's own byte-pair tokenizer for the benchmark models, so a text query has
the token count it has with `openai/clip-vit-base-patch32`.

The text tower's cost grows with the tokens of a query, and the tests'
character-level tokenizer (tests/tiny_clip.py) gives about four times as many
("a red ball" is 10 tokens there, 5 with CLIP's). Model weights cannot be
downloaded here, but CLIP's vocabulary can: OpenAI's byte-pair merges file
ships inside the `open_clip_torch` wheel on PyPI. This module builds the same
`vocab.json` and `merges.txt` that Hugging Face's CLIP tokenizer uses from it
(as CLIP's own `SimpleTokenizer` does), checks them against token ids
published with CLIP, and saves a CLIP tokenizer in a model folder.

The merges file is looked for in `--work`, then in an installed `open_clip`,
then fetched with `pip download open_clip_torch --no-deps` into `--work`.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import subprocess
import sys
import zipfile

BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
MERGES = 49152 - 256 - 2
"""Merges CLIP uses from the file (the rest are unused), as CLIP's SimpleTokenizer reads it."""

KNOWN_IDS = {"a photo of a cat": [49406, 320, 1125, 539, 320, 2368, 49407]}
"""Token ids CLIP gives these texts (the example in Hugging Face's CLIP docs):
a vocabulary built wrong fails here instead of timing the wrong thing."""


def bpe_file(work: str) -> str:
    """The path of CLIP's merges file: in `work`, in an installed open_clip, or
    fetched from PyPI into `work`. Raises RuntimeError when none can be had."""
    kept = os.path.join(work, BPE_FILE)
    if os.path.isfile(kept):
        return kept
    try:
        import open_clip  # noqa: F401  (only its data file is used)

        installed = os.path.join(os.path.dirname(open_clip.__file__), BPE_FILE)
        if os.path.isfile(installed):
            return installed
    except ImportError:
        pass
    wheels = os.path.join(work, "open-clip-wheel")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", wheels,
                    "open_clip_torch"], check=True)
    for wheel in glob.glob(os.path.join(wheels, "open_clip_torch-*.whl")):
        with zipfile.ZipFile(wheel) as archive, open(kept, "wb") as out:
            out.write(archive.read(f"open_clip/{BPE_FILE}"))
        return kept
    raise RuntimeError(f"no open_clip_torch wheel in {wheels}: put {BPE_FILE} in {work}")


def save_clip_tokenizer(folder: str, work: str):
    """Write CLIP's vocab.json, merges.txt and tokenizer files to `folder`; returns the tokenizer."""
    from transformers import CLIPTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    with gzip.open(bpe_file(work), "rt", encoding="utf-8") as fh:
        merges = fh.read().split("\n")[1:MERGES + 1]
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [symbol + "</w>" for symbol in symbols]
    vocab += ["".join(merge.split()) for merge in merges] + ["<|startoftext|>", "<|endoftext|>"]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as fh:
        json.dump({token: index for index, token in enumerate(vocab)}, fh)
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as fh:
        fh.write("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizerFast(os.path.join(folder, "vocab.json"), os.path.join(folder, "merges.txt"))
    for text, ids in KNOWN_IDS.items():
        got = tokenizer(text)["input_ids"]
        if got != ids:
            raise RuntimeError(f"the CLIP vocabulary built from {BPE_FILE} gives {got} for {text!r}, not {ids}")
    tokenizer.save_pretrained(folder)
    return tokenizer
