"""Encode stage: CLIP embeddings for frames and for text, L2-normalised.

Any Hugging Face `CLIPModel` works: a hub id (downloaded once into the Hugging
Face cache) or a local folder saved with `save_pretrained`. The model's own
preprocessor config decides the input size and normalisation.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import ScenegrepError

DEFAULT_MODEL = "openai/clip-vit-base-patch32"

DEFAULT_BATCH_SIZE = {"cuda": 256, "mps": 64, "cpu": 32}
"""Frames per forward pass. On a GPU large batches keep the card busy (ViT-B/32
at fp16 needs well under 2 GiB for 256 frames); on a CPU throughput is flat
past ~16, and smaller batches keep memory and latency low."""

FINGERPRINT_BYTES = 1 << 20
"""How much of each weights file a local model's fingerprint reads: enough to
tell retrained weights apart without reading gigabytes."""


@dataclass(frozen=True)
class ModelInfo:
    """What an index must remember about the model that filled it."""

    name: str  # hub id, or the absolute path of a local folder
    fingerprint: str  # tells two different models with the same name apart
    dim: int  # embedding size


def pick_device(requested: str | None = None) -> str:
    """CUDA, then Apple MPS, then CPU; or the requested device if it exists.

    Raises ScenegrepError for an unknown or unavailable device."""
    import torch

    if requested and requested != "auto":
        try:
            device = torch.device(requested)
        except RuntimeError as exc:
            raise ScenegrepError(f"--device {requested}: unknown device; use auto, cpu, cuda, cuda:N or mps") from exc
        if device.type == "cuda":
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if count == 0:
                raise ScenegrepError(f"--device {requested}: no CUDA GPU is visible to torch; use --device cpu")
            if device.index is not None and device.index >= count:
                raise ScenegrepError(f"--device {requested}: torch sees {count} GPU(s), numbered from 0")
        elif device.type == "mps" and not torch.backends.mps.is_available():
            raise ScenegrepError("--device mps: Apple MPS is not available; use --device cpu")
        elif device.type not in ("cpu", "cuda", "mps"):
            raise ScenegrepError(f"--device {requested}: scenegrep runs on auto, cpu, cuda, cuda:N or mps")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def model_fingerprint(name: str) -> str:
    """A short hash naming a model: its id, or a local folder's config and weights."""
    digest = hashlib.sha1()
    if os.path.isdir(name):
        for entry in sorted(os.listdir(name)):
            full = os.path.join(name, entry)
            if entry == "config.json":
                with open(full, "rb") as fh:
                    digest.update(fh.read())
            elif entry.endswith((".safetensors", ".bin")):
                digest.update(entry.encode())
                digest.update(str(os.path.getsize(full)).encode())
                with open(full, "rb") as fh:
                    digest.update(fh.read(FINGERPRINT_BYTES))
    else:
        digest.update(name.encode())
    return digest.hexdigest()[:12]


def resolve_model_name(name: str) -> str:
    """Local folders are named by absolute path; hub ids stay as they are."""
    return os.path.abspath(name) if os.path.isdir(name) else name


class ClipEncoder:
    """A CLIP model on a device, embedding RGB frames and text into one space."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None, batch_size: int | None = None):
        import torch
        from transformers import AutoTokenizer, CLIPModel

        self._torch = torch
        self.device = pick_device(device)
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE.get(self.device.split(":")[0], 32)
        name = resolve_model_name(model)
        try:
            self.model = CLIPModel.from_pretrained(name, dtype=self.dtype).to(self.device).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            processor = _image_processor_class().from_pretrained(name)
        except (OSError, ValueError, KeyError) as exc:
            hint = (
                "check the folder holds a CLIP model saved with save_pretrained"
                if os.path.isdir(name)
                else "a hub id is downloaded into the Hugging Face cache on first use (this needs internet); "
                "pass --model PATH to use a local copy"
            )
            raise ScenegrepError(f"cannot load CLIP model {model!r}: {_first_line(exc)}; {hint}") from exc
        self._preprocess = TorchPreprocess.from_processor(processor, self.device, self.dtype)
        self.info = ModelInfo(
            name=name,
            fingerprint=model_fingerprint(name),
            dim=int(self.model.config.projection_dim),
        )
        self._max_text_length = int(self.model.config.text_config.max_position_embeddings)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed H×W×3 uint8 RGB images; returns (n, dim) float32, unit length."""
        chunks = []
        for start in range(0, len(images), self.batch_size):
            pixels = self._preprocess(images[start : start + self.batch_size])
            with self._torch.inference_mode():
                features = _projected(self.model.get_image_features(pixel_values=pixels))
            chunks.append(_normalised(features))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.info.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed text queries; returns (n, dim) float32, unit length."""
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self._max_text_length, return_tensors="pt"
        ).to(self.device)
        with self._torch.inference_mode():
            features = _projected(
                self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            )
        return _normalised(features)


class TorchPreprocess:
    """CLIP preprocessing on uint8 tensors: resize, centre crop, normalise.

    Follows the model's preprocessor config (shortest-edge resize with bicubic
    interpolation, centre crop, mean/std) like transformers' image processor,
    but runs batched in torch on the encoder's device, several times faster
    than the PIL path.
    """

    def __init__(self, shortest_edge, resize_hw, crop_hw, mean, std, device, dtype):
        import torch

        self._torch = torch
        self.shortest_edge = shortest_edge
        self.resize_hw = resize_hw
        self.crop_hw = crop_hw
        self.device = device
        self.dtype = dtype
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255.0

    @classmethod
    def from_processor(cls, processor, device, dtype) -> "TorchPreprocess":
        size = processor.size if processor.do_resize else None
        crop = processor.crop_size if processor.do_center_crop else None
        shortest = _field(size, "shortest_edge")
        resize_hw = None if shortest else _hw(size)
        return cls(shortest, resize_hw, _hw(crop), processor.image_mean, processor.image_std, device, dtype)

    def __call__(self, images: Sequence[np.ndarray]):
        torch = self._torch
        F = torch.nn.functional
        out = []
        for image in images:
            if not image.flags.writeable or not image.flags.c_contiguous:
                image = np.array(image)  # torch wants a writable, contiguous buffer
            x = torch.from_numpy(image).to(self.device)
            x = x.permute(2, 0, 1).unsqueeze(0).float()
            h, w = x.shape[-2:]
            target = self._resize_target(h, w)
            if target != (h, w):
                x = F.interpolate(x, size=target, mode="bicubic", antialias=True, align_corners=False)
                x = x.clamp_(0, 255)
            if self.crop_hw:
                x = _centre_crop(x, self.crop_hw)
            out.append(x)
        batch = (torch.cat(out) - self.mean) / self.std
        return batch.to(self.dtype)

    def _resize_target(self, h: int, w: int) -> tuple[int, int]:
        if self.shortest_edge:
            short, long = (h, w) if h <= w else (w, h)
            new_long = int(self.shortest_edge * long / short)
            return (self.shortest_edge, new_long) if h <= w else (new_long, self.shortest_edge)
        return self.resize_hw or (h, w)


def _image_processor_class():
    """The PIL-based processor: we only read its config, and it needs no torchvision."""
    try:
        from transformers import CLIPImageProcessorPil

        return CLIPImageProcessorPil
    except ImportError:  # transformers < 5
        from transformers import CLIPImageProcessor

        return CLIPImageProcessor


def _centre_crop(x, crop_hw):
    h, w = x.shape[-2:]
    ch, cw = crop_hw
    if h < ch or w < cw:  # as transformers does: pad, then crop
        import torch

        pad_h, pad_w = max(ch - h, 0), max(cw - w, 0)
        x = torch.nn.functional.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        h, w = x.shape[-2:]
    top = (h - ch) // 2
    left = (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


def _field(size, key):
    if size is None:
        return None
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def _hw(size) -> tuple[int, int] | None:
    height, width = _field(size, "height"), _field(size, "width")
    return (int(height), int(width)) if height and width else None


def _projected(output):
    """transformers 5 returns a ModelOutput whose pooler_output is the projection."""
    return output if hasattr(output, "norm") else output.pooler_output


def _normalised(features) -> np.ndarray:
    features = features.float()
    features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return features.cpu().numpy().astype(np.float32, copy=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
