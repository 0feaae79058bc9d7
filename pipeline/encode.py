"""Encode stage: CLIP embeddings for frames and for text, L2-normalised.

Any Hugging Face `CLIPModel` works: a hub id (downloaded once into the Hugging
Face cache) or a local folder saved with `save_pretrained`. The model's own
preprocessor config decides the input size and normalisation.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
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


UNIT_LENGTH_TOLERANCE = 1e-2
"""Embeddings are unit length (`_normalised`); a stored one further off than
this was not written by scenegrep: a damaged segment file (a cut-short HNSW
`length.bin` made Chroma return norms from 0 to inf)."""


def all_unit_length(vectors: np.ndarray) -> bool:
    """Whether every row is finite and of unit length (within UNIT_LENGTH_TOLERANCE)."""
    with np.errstate(over="ignore", invalid="ignore"):  # damaged rows (huge or NaN) answer False, not a warning
        norms = np.linalg.norm(vectors, axis=1) if len(vectors) else np.ones(0)
    return bool(np.all(np.abs(norms - 1.0) <= UNIT_LENGTH_TOLERANCE))


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


PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
"""int8: CPU only, the image tower's linear layers quantised dynamically by torch
(weights int8, activations quantised per batch); text stays fp32. Measured here
1.46x fp32 for the image tower with cosine 0.9996, and `eval videos` on the
sample annotations unchanged (bench/RESULTS.md); `auto` does not pick it (yet):
the gain was measured on one CPU only."""

BF16_PROBE_SPEEDUP = 1.3
"""On a CPU without a bf16 flag torch knows, bf16 is used when a short matmul
probe runs at least this much faster than fp32: emulated bf16 is slower than
fp32, native bf16 (AVX-512 BF16, AMX) is 2-4x faster, so the margin is wide."""


NUMPY_TEXT_DEVICES = (None, "auto", "cpu")
"""Device requests the numpy text tower may stand in for: it runs on the CPU."""

NUMPY_TEXT_PRECISIONS = (None, "auto", "fp32")
"""Precision requests the numpy text tower may stand in for: it computes in fp32."""


def pick_precision(requested: str | None, device: str) -> str:
    """The numeric precision the model runs in: fp16 on CUDA, bf16 on CPUs where
    it is faster (see `cpu_bf16_is_fast`), else fp32; or the requested one.

    Raises ScenegrepError for a precision the device cannot run.
    """
    import torch

    kind = device.split(":")[0]
    requested = requested or "auto"
    if requested not in PRECISIONS:
        raise ScenegrepError(f"--precision {requested}: choose one of {', '.join(PRECISIONS)}")
    if requested == "auto":
        if kind == "cuda":
            return "fp16"
        if kind == "cpu" and cpu_bf16_is_fast():
            return "bf16"
        return "fp32"
    if requested == "int8" and kind != "cpu":
        raise ScenegrepError("--precision int8 is for CPUs without bf16; on a GPU use --precision fp16")
    if requested == "fp16" and kind == "cpu":
        raise ScenegrepError("--precision fp16 is for GPUs (it is slow on CPUs); use --precision bf16 or fp32")
    if requested == "bf16" and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise ScenegrepError("--precision bf16: this GPU has no bf16; use --precision fp16")
    return requested


@functools.cache
def cpu_bf16_is_fast() -> bool:
    """Whether this CPU runs bf16 matrix products faster than fp32.

    True when torch reports native bf16 (AVX-512 BF16 or AMX); False when
    oneDNN has no bf16 kernels at all (then bf16 runs 2-20x slower); otherwise
    a probe of a few tens of ms times one ViT-B-sized linear layer both ways.
    """
    import time

    import torch

    cpu = getattr(torch, "cpu", None)
    for flag in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(cpu, flag, None)
        if check is not None and check():
            return True
    mkldnn_bf16 = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if mkldnn_bf16 is not None and not mkldnn_bf16():
        return False

    def best_ms(dtype) -> float:
        x = torch.randn(64, 768).to(dtype)
        weight = torch.randn(768, 768).to(dtype)
        torch.nn.functional.linear(x, weight)  # warm-up: first calls pick kernels
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            torch.nn.functional.linear(x, weight)
            best = min(best, time.perf_counter() - start)
        return best

    with torch.inference_mode():
        return best_ms(torch.float32) > BF16_PROBE_SPEEDUP * best_ms(torch.bfloat16)


class ClipEncoder:
    """A CLIP model on a device, embedding RGB frames and text into one space.

    Nothing heavy happens on construction: `info` comes from the model's
    config, and the weights load on the first embedding (or `load()`), so
    indexing videos that are all unchanged never loads the model.
    Raises ScenegrepError (on construction) if the model's config cannot be read,
    and (on loading) if the model cannot be loaded or the device/precision is unusable.
    """

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None, batch_size: int | None = None,
                 precision: str | None = None):
        self.requested = model
        self.name = resolve_model_name(model)
        self._requested_device = device
        self._requested_batch_size = batch_size
        self._requested_precision = precision
        self.info = ModelInfo(name=self.name, fingerprint=model_fingerprint(self.name), dim=_model_dim(model, self.name))
        self._lock = threading.Lock()
        self._loaded = False

    @property
    def loaded(self) -> bool:
        return self._loaded

    def _numpy_text(self):
        if not hasattr(self, "_numpy_text_encoder"):
            from .numpy_text import NumpyTextEncoder

            self._numpy_text_encoder = NumpyTextEncoder.open(self.name)
        return self._numpy_text_encoder

    def load(self) -> "ClipEncoder":
        """Load the model, tokenizer and preprocessing (once; later calls return at once)."""
        with self._lock:
            if not self._loaded:
                self._load()
                self._loaded = True
                self.__dict__.pop("_numpy_text_encoder", None)  # text now runs on the loaded model: free its copy
        return self

    def _load(self) -> None:
        import torch
        from transformers import AutoTokenizer, CLIPModel

        self._torch = torch
        self.device = pick_device(self._requested_device)
        self.precision = pick_precision(self._requested_precision, self.device)
        self.dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16,
                      "int8": torch.float32}[self.precision]
        self.batch_size = self._requested_batch_size or DEFAULT_BATCH_SIZE.get(self.device.split(":")[0], 32)
        name = self.name
        try:
            self.model = CLIPModel.from_pretrained(name, dtype=self.dtype).to(self.device).eval()
            if self.precision == "int8":
                _quantise_image_tower(self.model)
            self.tokenizer = AutoTokenizer.from_pretrained(name)
            processor = _image_processor_class().from_pretrained(name)
        except (OSError, ValueError, KeyError) as exc:
            raise ScenegrepError(f"cannot load CLIP model {self.requested!r}: {_first_line(exc)}; {_load_hint(name)}") from exc
        self._preprocess = TorchPreprocess.from_processor(processor, self.device, self.dtype)
        self._max_text_length = int(self.model.config.text_config.max_position_embeddings)

    @property
    def preprocess_in_loader(self) -> bool:
        """True when frames should be preprocessed where they are decoded (CPU):
        a preprocessed frame is ~10x smaller than a 720p RGB frame. On a GPU the
        uint8 frames travel instead and are preprocessed there in one batch."""
        self.load()
        return self.device == "cpu"

    def input_size(self, height: int, width: int) -> tuple[int, int] | None:
        """(height, width) a height × width frame is resized to before the centre crop, or None
        when the model's preprocessing does not resize: what decoding workers resize to.

        Before the model has loaded, read from its preprocessor config file
        when that states the resize (so workers start decoding while the model
        loads); otherwise the model is loaded first."""
        if not self._loaded:
            rule = resize_rule_from_config(self.name)
            if rule is not None:
                return resize_target(*rule, height, width) if any(rule) else None
        self.load()
        return self._preprocess.resize_size(height, width)

    def load_in_background(self) -> None:
        """Start loading the model in a thread (imports and weights take seconds), so
        decoding can start meanwhile. A failure is left for the next `load()` to raise."""
        if self._loaded or getattr(self, "_loader", None) is not None:
            return

        def load_quietly():
            try:
                self.load()
            except Exception:  # raised again, in the caller's thread, by the next load()
                pass

        self._loader = threading.Thread(target=load_quietly, name="scenegrep-model-loader", daemon=True)
        self._loader.start()

    def preprocess(self, images: Sequence[np.ndarray]):
        """Images (H×W×3 uint8 RGB) → the model's input batch on its device, in its dtype."""
        self.load()
        return self._preprocess(images)

    def embed_pixels(self, pixels) -> np.ndarray:
        """Embed an already preprocessed batch (see `preprocess`); returns (n, dim) float32, unit length."""
        return vectors_of(self.embed_pixels_later(pixels))

    @property
    def embeds_asynchronously(self) -> bool:
        """Whether `embed_pixels_later` returns before the work is done (CUDA): then waiting for
        the vectors belongs in another thread. On a CPU the work is done by the time it returns."""
        self.load()
        return self.device.startswith("cuda")

    def embed_pixels_later(self, pixels):
        """Like `embed_pixels`, but returns the unit vectors as a tensor on the model's device,
        without waiting for them: on a GPU the work is queued and this returns at once, so the
        next batch is prepared while this one runs; `vectors_of` waits and gives the numpy array."""
        self.load()
        pixels = pixels.to(self.device, non_blocking=True)
        with self._torch.inference_mode():
            features = _projected(self.model.get_image_features(pixel_values=pixels)).float()
            return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Embed H×W×3 uint8 RGB images; returns (n, dim) float32, unit length."""
        self.load()
        chunks = []
        for start in range(0, len(images), self.batch_size):
            chunks.append(self.embed_pixels(self._preprocess(images[start : start + self.batch_size])))
        return np.concatenate(chunks) if chunks else np.zeros((0, self.info.dim), np.float32)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed text queries; returns (n, dim) float32, unit length.

        Before the model has loaded, on the CPU (or `auto`) and in fp32 (or
        `auto`), the text runs through the numpy copy of the text tower
        (`pipeline/numpy_text.py`) when the model allows it: the same vectors
        without importing torch, which is most of a cold search's time. That
        copy computes in fp32, so an explicit fp16 or bf16 loads the model:
        the precision is then checked and used for text as for images (fp16
        on a CPU is refused for both)."""
        if (not self._loaded and self._requested_device in NUMPY_TEXT_DEVICES
                and self._requested_precision in NUMPY_TEXT_PRECISIONS):
            numpy_text = self._numpy_text()
            if numpy_text is not None:
                return numpy_text.embed_texts(texts)
        self.load()
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self._max_text_length, return_tensors="pt"
        ).to(self.device)
        with self._torch.inference_mode():
            features = _projected(
                self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            )
        return _normalised(features)


def _quantise_image_tower(model) -> None:
    """int8 dynamic quantisation of the image tower's linear layers (see PRECISIONS), in place."""
    import warnings

    import torch

    quantize_dynamic = torch.ao.quantization.quantize_dynamic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch announces the API's future move on every call
        model.vision_model = quantize_dynamic(model.vision_model, {torch.nn.Linear}, dtype=torch.qint8)
        model.visual_projection = quantize_dynamic(model.visual_projection, {torch.nn.Linear}, dtype=torch.qint8)


def _load_hint(name: str) -> str:
    if os.path.isdir(name):
        return "check the folder holds a CLIP model saved with save_pretrained"
    return ("a hub id is downloaded into the Hugging Face cache on first use (this needs internet); "
            "pass --model PATH to use a local copy")


def _model_dim(model: str, name: str) -> int:
    """The embedding size from the model's config, without loading its weights.

    Raises ScenegrepError when there is no readable CLIP config.
    """
    try:
        if os.path.isdir(name):
            with open(os.path.join(name, "config.json"), encoding="utf-8") as fh:
                config = json.load(fh)
            return int(config.get("projection_dim", 512))
        from .numpy_text import cached_hub_file

        cached = cached_hub_file(name, "config.json")
        if cached:  # reading the cached file directly spares importing transformers (seconds)
            with open(cached, encoding="utf-8") as fh:
                return int(json.load(fh).get("projection_dim", 512))
        from transformers import AutoConfig

        return int(AutoConfig.from_pretrained(name).projection_dim)
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise ScenegrepError(f"cannot load CLIP model {model!r}: {_first_line(exc)}; {_load_hint(name)}") from exc


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
        if self.device != "cpu" and len({image.shape for image in images}) == 1:
            # One transfer and one resize call for the batch: what keeps a GPU busy.
            x = torch.from_numpy(np.stack(images))
            if self.device.startswith("cuda"):
                x = x.pin_memory()
            x = self._resized(x.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float())
        else:
            # On a CPU, frame by frame is faster than batched (smaller working set).
            out = []
            for image in images:
                if not image.flags.writeable or not image.flags.c_contiguous:
                    image = np.array(image)  # torch wants a writable, contiguous buffer
                x = torch.from_numpy(image).to(self.device)
                out.append(self._resized(x.permute(2, 0, 1).unsqueeze(0).float()))
            x = torch.cat(out)
        return ((x - self.mean) / self.std).to(self.dtype)

    def _resized(self, x):
        """Resize (bicubic, antialiased) and centre-crop an N×3×H×W float batch of 0-255 values."""
        h, w = x.shape[-2:]
        target = self._resize_target(h, w)
        if target != (h, w):
            x = self._torch.nn.functional.interpolate(x, size=target, mode="bicubic", antialias=True, align_corners=False)
            x = x.clamp_(0, 255)
        if self.crop_hw:
            x = _centre_crop(x, self.crop_hw)
        return x

    def resize_size(self, h: int, w: int) -> tuple[int, int] | None:
        """The size `__call__` resizes an h × w image to, or None when it keeps every size."""
        return self._resize_target(h, w) if (self.shortest_edge or self.resize_hw) else None

    def _resize_target(self, h: int, w: int) -> tuple[int, int]:
        return resize_target(self.shortest_edge, self.resize_hw, h, w)


def resize_target(shortest_edge: int | None, resize_hw: tuple[int, int] | None, h: int, w: int) -> tuple[int, int]:
    """Where CLIP preprocessing resizes an h × w image: shortest edge to `shortest_edge`
    (the long one scaled and truncated, as transformers does), or to `resize_hw`."""
    if shortest_edge:
        short, long = (h, w) if h <= w else (w, h)
        new_long = int(shortest_edge * long / short)
        return (shortest_edge, new_long) if h <= w else (new_long, shortest_edge)
    return resize_hw or (h, w)


PREPROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")
"""Where a saved CLIP model states its image preprocessing (the second nests it under "image_processor")."""


def resize_rule_from_config(name: str) -> tuple[int | None, tuple[int, int] | None] | None:
    """(shortest_edge, (height, width)) of a model's resize, read from its preprocessor
    file without transformers (importing it takes seconds); (None, None) when it does not
    resize; None when no file says so plainly (then the loaded processor decides)."""
    from .numpy_text import cached_hub_file

    for filename in PREPROCESSOR_FILES:
        path = os.path.join(name, filename) if os.path.isdir(name) else cached_hub_file(name, filename)
        if not path or not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as fh:
                config = json.load(fh)
        except (OSError, ValueError):
            return None
        config = config.get("image_processor", config) if isinstance(config, dict) else None
        if not isinstance(config, dict) or not isinstance(config.get("do_resize"), bool):
            return None
        if not config["do_resize"]:
            return None, None
        size = config.get("size")
        if isinstance(size, dict) and isinstance(size.get("shortest_edge"), int) and len(size) == 1:
            return size["shortest_edge"], None
        if isinstance(size, dict) and set(size) == {"height", "width"} and all(isinstance(v, int) for v in size.values()):
            return None, (size["height"], size["width"])
        return None
    return None


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


def vectors_of(unit_vectors) -> np.ndarray:
    """(n, dim) float32 numpy from `embed_pixels_later`'s tensor (waits for the device)."""
    return unit_vectors.cpu().numpy().astype(np.float32, copy=False)


def _normalised(features) -> np.ndarray:
    features = features.float()
    features = features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return features.cpu().numpy().astype(np.float32, copy=False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
