"""Queries: weighted text and image terms, positive or negative, → one query vector.

A query is a list of terms. Each term is a text or an image file with a
weight; terms the user wants to avoid (`--not`) carry a negative weight.
The query vector is

    q = normalise( Σ wᵢ·e(termᵢ) )        (wᵢ < 0 for negative terms)

where e() is the model's unit-length embedding of the term. This is rclip's
query arithmetic (`"2:cat" + photo.jpg - fruit`): a frame's cosine score
against q rises with its similarity to the positive terms and falls with its
similarity to the negative ones, each in proportion to its weight. Two
positive terms of weight 1 give their mean direction, the v1 behaviour.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from .errors import ScenegrepError

WEIGHT_PREFIX = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*:(.*)$", re.S)
"""`2:kitchen`, `0.5:sky`: a leading number and colon is the term's weight.
Text that really starts like that is written with an explicit weight: `1:1:30 am`."""

CANCELLED_NORM = 1e-6
"""Below this length the weighted sum has no direction (e.g. the same term
given as positive and negative): the query would match everything equally."""


@dataclass(frozen=True)
class Term:
    """One part of a query: a text or an image file, and its weight (negative: avoid it)."""

    kind: str  # "text" or "image"
    value: str  # the text, or the image's path
    weight: float = 1.0


@dataclass(frozen=True)
class Query:
    """Weighted query terms; `Query.parse` builds one from command-line style arguments."""

    terms: tuple[Term, ...]

    @classmethod
    def parse(
        cls,
        texts: Iterable[str] = (),
        images: Iterable[str] = (),
        not_texts: Iterable[str] = (),
        not_images: Iterable[str] = (),
    ) -> "Query":
        """Terms from strings, each optionally prefixed by a weight (`2:kitchen`, `3:still.jpg`).

        Raises ScenegrepError for a zero weight, an empty term, text that is
        not valid UTF-8, or a query with nothing to look for (only negative
        terms, or none at all).
        """
        terms = []
        for values, kind, sign in ((texts, "text", 1), (images, "image", 1), (not_texts, "text", -1), (not_images, "image", -1)):
            for value in values:
                if kind == "text" and not value.strip():
                    continue
                if kind == "text" and not _is_utf8(value):
                    raise ScenegrepError(
                        f"query text {_printable(value)!r} is not valid UTF-8 (the terminal or script sent other "
                        "bytes); type it in a UTF-8 locale (e.g. LANG=C.UTF-8)"
                    )
                weight, body = _split_weight(value, kind)
                terms.append(Term(kind, body, sign * weight))
        if not any(term.weight > 0 for term in terms):
            if terms:
                raise ScenegrepError("the query has only --not terms; add text or --image to say what to look for")
            raise ScenegrepError('empty query: give search text (scenegrep search "a red ball") or --image FILE')
        return cls(tuple(terms))

    def describe(self) -> str:
        """The query as one line, e.g. `chase + 2×kitchen − "title card"`."""
        parts = []
        for term in self.terms:
            shown = term.value if term.kind == "text" else f"image:{_printable(os.path.basename(term.value))}"
            weight = abs(term.weight)
            parts.append(("− " if term.weight < 0 else "+ ") + (f"{weight:g}×" if weight != 1 else "") + shown)
        return " ".join(parts).removeprefix("+ ")


def _is_utf8(text: str) -> bool:
    """False for text holding undecodable bytes (Python keeps them as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """Text with undecodable bytes (of a file name or argument) shown as �."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _split_weight(value: str, kind: str) -> tuple[float, str]:
    if kind == "image" and os.path.exists(value):
        return 1.0, value  # a file name that happens to look like `2:x.jpg`
    match = WEIGHT_PREFIX.match(value)
    if not match:
        return 1.0, value
    weight, body = float(match.group(1)), match.group(2)
    if not math.isfinite(weight):
        raise ScenegrepError(f"query term {_printable(value[:40])!r}… has a weight too large to compute with; "
                             f"use a weight like 2:{_printable(body[:40])}")
    if weight == 0:
        raise ScenegrepError(f"query term {value!r} has weight 0; leave it out, or give a positive weight like 2:{body}")
    if kind == "text" and not body.strip():
        raise ScenegrepError(f"query term {value!r} has a weight but no text")
    return weight, body


def load_image(path: str) -> np.ndarray:
    """An image file as H×W×3 uint8 RGB. Raises ScenegrepError if it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.exists(path):
        raise ScenegrepError(f"query image {_printable(path)}: no such file")
    if not os.path.isfile(path):
        raise ScenegrepError(f"query image {_printable(path)}: not a regular file (a folder, pipe or device); "
                             "use a JPEG or PNG file")  # never opened: reading a FIFO blocks
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise ScenegrepError(f"query image {path}: not a readable image ({exc.__class__.__name__}); use a JPEG or PNG") from exc


def combine(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """normalise(Σ wᵢ·vᵢ) as float32. Raises ScenegrepError when the terms cancel out."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, as one line
        total = np.asarray(weights, np.float64) @ np.asarray(vectors, np.float64)
        norm = float(np.linalg.norm(total))
    if not math.isfinite(norm):
        raise ScenegrepError("the query's weights are too large to compute with; use weights like 2 or 0.5")
    if norm < CANCELLED_NORM:
        raise ScenegrepError("the query's terms cancel each other out; change a weight or drop a --not term")
    return (total / norm).astype(np.float32)


def query_vector(encoder, query: Query, pictures: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """The unit query vector for `query` with `encoder` (a `ClipEncoder`).

    `pictures` holds images already in memory (H×W×3 uint8 RGB) by term
    value, e.g. uploads to `scenegrep serve`; other image terms are files.
    Raises ScenegrepError for unreadable images or terms that cancel out.
    """
    pictures = pictures or {}
    texts = [term for term in query.terms if term.kind == "text"]
    images = [term for term in query.terms if term.kind == "image"]
    vectors, weights = [], []
    if texts:
        vectors.append(encoder.embed_texts([term.value for term in texts]))
        weights += [term.weight for term in texts]
    if images:
        vectors.append(encoder.embed_images([pictures[term.value] if term.value in pictures else load_image(term.value)
                                             for term in images]))
        weights += [term.weight for term in images]
    return combine(np.concatenate(vectors), weights)
