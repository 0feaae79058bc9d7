"""Health checks: the device really used, a model that tells inputs apart, and
an index whose registry and frames agree.

Each check returns `Check` records; a "problem" means results cannot be
trusted (non-zero exit), a "warning" that something needs attention.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import numpy as np

from .present.names import first_few
from .registry import names_its_file

COLLAPSED_COSINE = 0.999
"""Distinct inputs whose embeddings all have |cosine| at least this are one
vector: a collapsed or broken model. Trained CLIPs give distinct prompts
cosines well under 0.95, and even a random-weight test model stays under 0.995
on the probe images, so only a model that maps everything to one direction
reaches it."""

PROBE_TEXTS = (
    "a red circle on a blue background",
    "a city street at night",
    "two people talking in a kitchen",
    "a dog running on a beach",
    "the number forty-two written on a wall",
    "an abstract green texture",
)
"""Prompts with nothing in common, to see that the text side separates them."""

PROBE_SIZE = 96
"""Side of the synthetic probe images in pixels: big enough for any model's
resize and crop to see their patterns, small enough to embed in milliseconds."""


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "ok", "warning" or "problem"
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def probe_images(size: int = PROBE_SIZE) -> list[np.ndarray]:
    """Synthetic RGB pictures with nothing in common: flat colours, gradients, a checkerboard, noise."""
    yy, xx = np.mgrid[0:size, 0:size]
    grey = lambda a: np.repeat(a.astype(np.uint8)[..., None], 3, axis=2)  # noqa: E731
    return [
        np.full((size, size, 3), (220, 30, 30), np.uint8),
        np.full((size, size, 3), (20, 40, 200), np.uint8),
        grey(xx * 255 // size),
        grey(yy * 255 // size),
        grey(((xx // 12 + yy // 12) % 2) * 255),
        np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8),
    ]


def check_device(encoder) -> Check:
    """Where the model actually runs (from its weights, not from what was asked)."""
    import torch

    parameter = next(encoder.model.parameters())
    device = str(parameter.device)
    detail = f"{device}, {str(parameter.dtype).replace('torch.', '')}, torch {torch.__version__}"
    if parameter.device.type == "cuda":
        detail += f", {torch.cuda.get_device_name(parameter.device)}"
    elif torch.cuda.is_available():
        return Check("device", "warning", detail + "; a CUDA GPU is visible but not used (see --device)")
    return Check("device", "ok", detail)


def spread(embeddings: np.ndarray) -> tuple[float, float]:
    """(smallest, largest) |cosine| between different rows of unit vectors."""
    cosines = np.abs(embeddings @ embeddings.T)
    off = cosines[~np.eye(len(embeddings), dtype=bool)]
    return float(off.min()), float(off.max())


def check_embeddings(encoder) -> list[Check]:
    """Distinct texts and distinct pictures must get distinct, finite, non-zero vectors."""
    checks = []
    for name, embed in (("text embeddings", lambda: encoder.embed_texts(list(PROBE_TEXTS))),
                        ("image embeddings", lambda: encoder.embed_images(probe_images()))):
        vectors = np.asarray(embed(), np.float64)
        norms = np.linalg.norm(vectors, axis=1)
        if not np.all(np.isfinite(vectors)):
            checks.append(Check(name, "problem", "the model outputs NaN or infinite values"))
            continue
        if np.any(norms < 0.5):
            checks.append(Check(name, "problem", "the model outputs zero vectors (broken or untrained weights?)"))
            continue
        low, high = spread(vectors)
        detail = f"{len(vectors)} distinct inputs, |cosine| between them {low:.3f} to {high:.3f}"
        if low >= COLLAPSED_COSINE:
            checks.append(Check(name, "problem", detail + ": every input maps to the same vector "
                                "(a collapsed model); search results would be meaningless"))
        else:
            checks.append(Check(name, "ok", detail))
    return checks


def check_index(store, model_dim: int | None = None, indexing_now: bool = False) -> list[Check]:
    """Every registered video has exactly its frames; no frames without a video;
    files still where the registry says (a warning: maybe another machine's path).

    While an `index` run writes to the store (`indexing_now`), the video it is
    on has frames but no registry entry yet: mismatches are then warnings."""
    from .prune import audit

    checks = []
    mismatch = "warning" if indexing_now else "problem"
    if indexing_now:
        checks.append(Check(f"index {store.info.model}", "warning",
                            "an `index` run is writing right now; run doctor again after it for a final answer"))
    label = f"index {store.info.model}"
    if model_dim is not None and store.info.dim != model_dim:
        checks.append(Check(label, "problem", f"stores {store.info.dim}-d vectors but the model makes {model_dim}-d"))
    videos = store.indexed_videos()
    counts = store.frames_per_video()
    orphans, wrong = audit(store)
    gone = [entry for entry in videos if not os.path.exists(entry.path)]
    total = sum(counts.values())
    checks.append(Check(label, "ok", f"{len(videos)} videos, {total} frames, every {store.info.every:g} s"))
    for entry in wrong:
        checks.append(Check(label, mismatch, f"{entry.path}: registry says {entry.frames} frames, "
                            f"{counts.get(entry.video_id, 0)} stored; `scenegrep prune --repair` then "
                            "`scenegrep index` redoes it"))
    if orphans:
        checks.append(Check(label, mismatch, f"{sum(orphans.values())} orphan frame(s) of {len(orphans)} "
                            "unregistered video(s) (an interrupted run): `scenegrep index` the same folders again, "
                            "or `scenegrep prune --repair`"))
    misnamed = [entry for entry in videos if not names_its_file(entry)]
    if misnamed:
        shown = first_few([entry.path for entry in misnamed])
        one = len(misnamed) == 1
        checks.append(Check(label, "problem", f"{len(misnamed)} registry {'entry does' if one else 'entries do'} "
                            f"not name {'its' if one else 'their'} own file ({shown}: a path that is not absolute, or not the one "
                            "its id was made from; an edited or damaged index): index the videos again into a new index"))
    damaged_cuts = [entry for entry in videos if entry.cuts_damaged]
    if damaged_cuts:
        shown = first_few([entry.path for entry in damaged_cuts])
        checks.append(Check(label, "problem", f"the recorded shot changes of {len(damaged_cuts)} video(s) are damaged "
                            f"({shown}): searches decode them instead; index them again into a new index"))
    if gone:
        shown = first_few([entry.path for entry in gone])
        checks.append(Check(label, "warning", f"{len(gone)} indexed file(s) no longer exist here ({shown}); "
                            "`scenegrep prune` removes them"))
    return checks


VECTOR_INDEX_PROBE = 10_000
"""Frames asked of the vector index (HNSW) in one unfiltered query to see that
it still answers for them (see store.VECTOR_INDEX_MIN_SHARE): with a segment
file lost, Chroma silently answers from the frames it still has."""


def check_frames_readable(store, indexing_now: bool = False) -> list[Check]:
    """Every registered video's vectors can be read back from Chroma, of unit
    length; the vector index answers for the stored
    frames; and the local vector copies (`pipeline/vector_cache.py`) equal
    what Chroma holds. Reads only: a bad copy is reported, not deleted."""
    from .errors import ScenegrepError
    from .store import frame_groups

    label = f"index {store.info.model}"
    unreadable, bad_copies = [], []
    for entries in frame_groups(store.indexed_videos()):
        try:
            fetched = list(store.fetch_frames(entries))
        except ScenegrepError:  # damaged (or a writer's first moments): find which videos
            fetched = []
            for entry in entries:  # name the videos that cannot be read back
                try:
                    fetched.extend(store.fetch_frames([entry]))
                except ScenegrepError:
                    unreadable.append(entry.path)
        for entry, times, vectors in fetched:
            if store.cache is not None and store.cache.inspect(entry, store.info.dim, times, vectors):
                bad_copies.append(entry.path)
    checks = []
    if unreadable:
        checks.append(Check(label, "warning" if indexing_now else "problem",
                            f"the stored frames of {len(unreadable)} video(s) cannot be read back intact "
                            f"({_some(unreadable)}): the index is damaged (a segment file lost or cut short); "
                            "move it aside and run `scenegrep index` on your videos again"))
    if bad_copies:
        checks.append(Check(label, "problem", f"local vector copies of {len(bad_copies)} video(s) differ from what the "
                            f"index returns ({_some(bad_copies)}); when no other problem is listed the index reads back "
                            f"intact and the copies are wrong: delete {store.cache.folder} (a copy: nothing is lost)"))
    if not unreadable:
        checks.extend(_check_vector_index(store, label, indexing_now))
    return checks


def _check_vector_index(store, label: str, indexing_now: bool) -> list[Check]:
    from .errors import ScenegrepError

    stored = store.frame_count()
    wanted = min(stored, VECTOR_INDEX_PROBE)
    if wanted == 0:
        return []
    probe = np.random.default_rng(0).standard_normal(store.info.dim).astype(np.float32)
    try:
        store.nearest(probe / np.linalg.norm(probe), wanted, stored=stored)
    except ScenegrepError as exc:  # damaged, or a writer's first moments
        return [Check(label, "warning" if indexing_now else "problem", str(exc))]
    return []


def _some(paths: list[str]) -> str:
    return ", ".join(paths[:3]) + (" …" if len(paths) > 3 else "")
