"""Query pictures sent to the server: checked, then decoded in memory (never saved)."""

from __future__ import annotations

import io
import re

import numpy as np
from fastapi import HTTPException

MAX_REQUEST_BYTES = 16 * 1024 * 1024
"""Largest request body the server reads (413 beyond): a 4K PNG screenshot is ~10 MB,
a phone JPEG 2-8 MB; more than this is not a query picture."""

MAX_QUERY_IMAGES = 8
"""Pictures one query may hold: CLIP embeds each, and a query mixes a few terms."""

MAX_IMAGE_PIXELS = 40_000_000
"""Pixels a query picture may have (checked from its header, before decoding):
CLIP sees 224×224, so more is never needed, and a small file that claims
gigapixels (a decompression bomb) is refused without allocating them."""

IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
"""Picture formats accepted by content (the name and the declared type are not trusted)."""


def upload_key(number: int, filename: str | None) -> str:
    """How a query names an uploaded picture: unique, no path, shown as its file name."""
    name = re.sub(r"[^\w.-]+", "_", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])[:80] or "picture"
    return f"upload{number}/{name}"


def read_picture(data: bytes, filename: str | None) -> np.ndarray:
    """An uploaded picture as H×W×3 uint8 RGB.

    Raises HTTPException: 413 when too large, 415 when it is not a picture."""
    from PIL import Image, UnidentifiedImageError

    shown = upload_key(0, filename).split("/", 1)[1]
    if len(data) > MAX_REQUEST_BYTES:
        raise HTTPException(413, f"picture {shown} is larger than {MAX_REQUEST_BYTES // (1024 * 1024)} MB; send a smaller one")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_FORMATS:
                raise HTTPException(415, f"{shown} is a {image.format} file; send a JPEG, PNG, WebP, GIF, BMP or TIFF picture")
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise HTTPException(413, f"picture {shown} has {image.width}×{image.height} pixels; "
                                         f"send one under {MAX_IMAGE_PIXELS // 1_000_000} megapixels")
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # (PIL raises SyntaxError for some broken PNG chunks)
        raise HTTPException(415, f"{shown} is not a readable picture ({exc.__class__.__name__}); send a JPEG or PNG") from exc
