"""CLIP's text tower in numpy: text queries without importing torch or transformers.

A cold `scenegrep search "text"` used to spend ~6 s importing torch and
transformers to run a 12-layer text transformer over a dozen tokens, a few
milliseconds of arithmetic. This module runs that same forward pass
(transformers' `CLIPTextModelWithProjection`: pre-LayerNorm blocks, causal
attention, the end-of-text token's state, the text projection) in float32
numpy, reading only the text weights from `model.safetensors` and tokenizing
with the model's own `tokenizer.json` through the `tokenizers` library.
tests/test_numpy_text.py checks it against transformers token for token and
vector for vector.

`NumpyTextEncoder.open` returns None when a model is outside what it mirrors
(no safetensors weights or tokenizer.json, an unknown activation or config):
callers then use the torch encoder, which handles everything.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
TEXT_PREFIX = "text_model."
LEGACY_EOS_TOKEN_ID = 2
"""transformers' marker for old CLIP configs whose eos_token_id is wrong: the
end-of-text token is then found as the highest token id (argmax), as the
original CLIP did. Other configs name the real end-of-text id."""

TEXT_DEFAULTS = {"num_attention_heads": 8, "num_hidden_layers": 12, "layer_norm_eps": 1e-5,
                 "hidden_act": "quick_gelu", "eos_token_id": 49407, "max_position_embeddings": 77}
"""transformers' CLIPTextConfig defaults, for keys a saved config leaves out."""


def _quick_gelu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-1.702 * x))


def _gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to within 1.5e-7 (Abramowitz & Stegun 7.1.26): numpy has no erf, and
    float32 arithmetic carries ~6e-8 anyway."""
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))).astype(np.float32)


ACTIVATIONS = {"quick_gelu": _quick_gelu, "gelu": _gelu, "gelu_new": _gelu_tanh, "gelu_pytorch_tanh": _gelu_tanh}


def model_files(name: str) -> dict[str, str] | None:
    """Paths of config.json, model.safetensors and tokenizer.json for a local
    folder or a hub id already in the Hugging Face cache; None if any is missing.
    Never downloads."""
    files = {}
    for filename in ("config.json", WEIGHTS_FILE, TOKENIZER_FILE):
        if os.path.isdir(name):
            path = os.path.join(name, filename)
            found = path if os.path.isfile(path) else None
        else:
            found = cached_hub_file(name, filename)
        if not found:
            return None
        files[filename] = found
    return files


def cached_hub_file(repo_id: str, filename: str) -> str | None:
    """The path of `filename` of hub model `repo_id` in the Hugging Face cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, filename)
    except Exception:  # an invalid repo id, an unreadable cache: the torch path will explain
        return None
    return found if isinstance(found, str) else None


@dataclass(frozen=True)
class Block:
    """One transformer layer's weights as transformers stores them, (out, in),
    for `x @ weight.T + bias`; the query, key and value projections stacked into
    one (3 * width, width) matrix, the attention scale folded into the query's
    rows, so a layer is four matrix products."""

    norm1: tuple[np.ndarray, np.ndarray]
    qkv: tuple[np.ndarray, np.ndarray]
    out: tuple[np.ndarray, np.ndarray]
    norm2: tuple[np.ndarray, np.ndarray]
    fc1: tuple[np.ndarray, np.ndarray]
    fc2: tuple[np.ndarray, np.ndarray]


def _blocks(weights: dict[str, np.ndarray], layers: int, heads: int) -> list[Block]:
    width = weights["embeddings.token_embedding.weight"].shape[1]
    scale = np.float32((width // heads) ** -0.5)

    def pair(name: str) -> tuple[np.ndarray, np.ndarray]:
        return weights[name + ".weight"], weights[name + ".bias"]

    blocks = []
    for layer in range(layers):
        at = f"encoder.layers.{layer}."
        q, k, v = (pair(at + "self_attn.q_proj"), pair(at + "self_attn.k_proj"), pair(at + "self_attn.v_proj"))
        blocks.append(Block(
            norm1=pair(at + "layer_norm1"),
            qkv=(np.concatenate([q[0] * scale, k[0], v[0]]), np.concatenate([q[1] * scale, k[1], v[1]])),
            out=pair(at + "self_attn.out_proj"),
            norm2=pair(at + "layer_norm2"),
            fc1=pair(at + "mlp.fc1"),
            fc2=pair(at + "mlp.fc2"),
        ))
    return blocks


class NumpyTextEncoder:
    """A CLIP model's text tower on the CPU in float32 numpy. Build with `open`."""

    def __init__(self, text: dict, weights: dict[str, np.ndarray], tokenizer, projection: np.ndarray):
        """`text`: the text config with every TEXT_DEFAULTS key present."""
        self.heads = int(text["num_attention_heads"])
        self.layers = int(text["num_hidden_layers"])
        self.eps = float(text["layer_norm_eps"])
        self.activation = ACTIVATIONS[text["hidden_act"]]
        self.eos_token_id = int(text["eos_token_id"])
        self.tokenizer = tokenizer
        width = weights["embeddings.token_embedding.weight"].shape[1]
        if width % self.heads or f"encoder.layers.{self.layers - 1}.mlp.fc2.weight" not in weights:
            raise ValueError("the config does not match the weights")
        self.token_embedding = weights["embeddings.token_embedding.weight"]
        self.position_embedding = weights["embeddings.position_embedding.weight"]
        self.blocks = _blocks(weights, self.layers, self.heads)
        self.final_norm = weights["final_layer_norm.weight"], weights["final_layer_norm.bias"]
        self.projection = projection

    @classmethod
    def open(cls, name: str) -> "NumpyTextEncoder | None":
        """The numpy text encoder for model `name` (local folder or cached hub id),
        or None when this model needs the torch encoder."""
        files = model_files(name)
        if files is None:
            return None
        try:
            with open(files["config.json"], encoding="utf-8") as fh:
                config = json.load(fh)
            # As transformers reads a CLIP config: text_config_dict, when present, wins.
            text = {**TEXT_DEFAULTS, **(config.get("text_config") or {}), **(config.get("text_config_dict") or {})}
            if text["hidden_act"] not in ACTIVATIONS or config.get("model_type") not in (None, "clip"):
                return None
            from safetensors import safe_open
            from tokenizers import Tokenizer

            with safe_open(files[WEIGHTS_FILE], framework="np") as tensors:
                keys = set(tensors.keys())
                if "text_projection.weight" not in keys:
                    return None
                weights = {key[len(TEXT_PREFIX):]: tensors.get_tensor(key).astype(np.float32, copy=False)
                           for key in keys if key.startswith(TEXT_PREFIX)}
                projection = tensors.get_tensor("text_projection.weight").astype(np.float32, copy=False)
            tokenizer = Tokenizer.from_file(files[TOKENIZER_FILE])
            tokenizer.no_padding()
            tokenizer.enable_truncation(int(text["max_position_embeddings"]))
            return cls(text, weights, tokenizer, projection)
        except Exception:  # unreadable or unexpected files; safetensors and tokenizers raise kinds of their own
            return None

    def token_ids(self, text: str) -> list[int]:
        """The token ids transformers' tokenizer gives `text` (start and end tokens included)."""
        return self.tokenizer.encode(text).ids

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """(n, dim) float32 unit vectors, one per text."""
        features = np.stack([self._pooled(self.token_ids(text)) for text in texts]) @ self.projection.T
        return (features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _pooled(self, ids: list[int]) -> np.ndarray:
        """The final-LayerNorm state of the end-of-text token. Each text runs
        alone, so no padding mask is needed: attention is causal, so the
        end-of-text token only sees the tokens before it, and the tokens after
        it are left out, as is every other token's state in the last layer."""
        ids_array = np.asarray(ids)
        if self.eos_token_id == LEGACY_EOS_TOKEN_ID:
            end = int(ids_array.argmax())
        else:
            matches = np.nonzero(ids_array == self.eos_token_id)[0]
            end = int(matches[0]) if len(matches) else 0  # as transformers: argmax of an all-False mask
        ids_array = ids_array[: end + 1]
        x = self.token_embedding[ids_array] + self.position_embedding[: end + 1]
        for layer, block in enumerate(self.blocks):
            x = self._block(x, block, only_last=layer == self.layers - 1)
        return self._norm(x, self.final_norm)[-1]

    def _block(self, x: np.ndarray, block: Block, only_last: bool) -> np.ndarray:
        """One pre-LayerNorm layer; with `only_last`, the last token's state alone."""
        n, width = x.shape
        head = width // self.heads
        qkv = self._linear(self._norm(x, block.norm1), block.qkv)
        rows = slice(n - 1, n) if only_last else slice(0, n)
        q, k, v = (qkv[rows, :width], qkv[:, width:2 * width], qkv[:, 2 * width:])
        split = lambda t: t.reshape(len(t), self.heads, head).transpose(1, 0, 2)  # noqa: E731
        scores = split(q) @ split(k).transpose(0, 2, 1)
        if not only_last:  # the last token sees every token, the others only those before them
            scores = np.where(np.tri(n, dtype=bool), scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        attended = (scores @ split(v)).transpose(1, 0, 2).reshape(-1, width)
        x = x[rows] + self._linear(attended, block.out)
        return x + self._linear(self.activation(self._linear(self._norm(x, block.norm2), block.fc1)), block.fc2)

    @staticmethod
    def _linear(x: np.ndarray, weight_bias: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        weight, bias = weight_bias
        return x @ weight.T + bias

    def _norm(self, x: np.ndarray, weight_bias: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        weight, bias = weight_bias
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * weight + bias
