"""Measuring retrieval quality: labelled image folders and annotated videos.

`evaluate_images` follows the CLIP-DB paper's protocol (its Table 1): every
image of a labelled folder (one sub-folder per class) is a query against all
the others in a Chroma collection; a query scores top-k when one of its k
nearest neighbours shares its class. Mean average precision ranks all the
other images exactly (numpy), since Chroma's HNSW is approximate.

`evaluate_videos` asks each annotated caption of an annotations file (the
format of sample_videos/annotations.json) against an index of its videos and
checks whether the clips returned overlap the annotated time range, and how
far the edges of the first overlapping clip are from the annotated shot
changes, in frames of the video (the video's start and end are no shot
change; a scene's optional `transition_in` says how it begins: "cut", the
default, or "cross-fade", whose annotated time is the fade's midpoint).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .clips import ClipRules
from .errors import ScenegrepError
from .query import Query, load_image, query_vector
from .timecode import parse_rate

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})

EVAL_DEPTH = 10
"""Clips retrieved per annotated query: the depth of MRR (a first hit below
rank 10 counts as 0, as a user would not scroll further)."""

EDGE_SLACK = 1e-3
"""Seconds a clip edge may pass an annotated shot change before it counts as
holding a frame of the other shot: annotations are rounded to the microsecond,
frames are at least 1/240 s apart."""

MAP_CHUNK = 512
"""Queries ranked at once for mean average precision: a chunk × N float32
similarity matrix (N = 70,000 MNIST images: 140 MB), so memory stays bounded."""


@dataclass(frozen=True)
class ImageEvalReport:
    images: int
    classes: int
    top1: float
    top5: float
    mean_average_precision: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class AnnotatedQuery:
    caption: str
    episode: str
    start: float
    end: float
    rank: int | None  # 1-based rank of the first returned clip overlapping [start, end), None if none in the top EVAL_DEPTH
    iou: float  # temporal IoU of that clip with [start, end), 0 if none
    start_error: float | None = None  # frames between that clip's start and a shot change at `start`; None: none
    end_error: float | None = None  # the same at `end`
    start_transition: str | None = None  # "cut" or "cross-fade" at `start`; None: the video's start
    end_transition: str | None = None  # the same at `end`; None: the video's end
    spills: bool = False  # that clip holds a frame of a neighbouring shot


@dataclass(frozen=True)
class VideoEvalReport:
    queries: tuple[AnnotatedQuery, ...]

    @property
    def recall_at_1(self) -> float:
        return _mean([q.rank is not None and q.rank <= 1 for q in self.queries])

    @property
    def recall_at_5(self) -> float:
        return _mean([q.rank is not None and q.rank <= 5 for q in self.queries])

    @property
    def mean_reciprocal_rank(self) -> float:
        return _mean([1.0 / q.rank if q.rank else 0.0 for q in self.queries])

    @property
    def mean_iou(self) -> float:
        return _mean([q.iou for q in self.queries])

    def boundary_errors(self, transition: str = "cut") -> list[float]:
        """Edge errors in frames at the annotated shot changes of one kind."""
        errors = [q.start_error for q in self.queries if q.start_transition == transition]
        errors += [q.end_error for q in self.queries if q.end_transition == transition]
        return [error for error in errors if error is not None]

    @property
    def boundary_error_median(self) -> float | None:
        """Median edge error at hard cuts, in frames."""
        errors = self.boundary_errors()
        return float(np.median(errors)) if errors else None

    @property
    def boundary_error_p90(self) -> float | None:
        """90th percentile of the edge errors at hard cuts, in frames."""
        errors = self.boundary_errors()
        return float(np.percentile(errors, 90)) if errors else None

    @property
    def spills(self) -> int:
        """Clips that hold a frame of a neighbouring shot."""
        return sum(q.spills for q in self.queries)

    def as_dict(self) -> dict:
        return {
            "queries": len(self.queries),
            "recall_at_1": self.recall_at_1,
            "recall_at_5": self.recall_at_5,
            "mean_reciprocal_rank": self.mean_reciprocal_rank,
            "mean_iou": self.mean_iou,
            "boundary_error_median": self.boundary_error_median,
            "boundary_error_p90": self.boundary_error_p90,
            "fade_errors": self.boundary_errors("cross-fade"),
            "clips_into_neighbouring_shots": self.spills,
            "per_query": [asdict(q) for q in self.queries],
        }


def labelled_images(folder: str) -> list[tuple[str, str]]:
    """(path, class) for every image in the class sub-folders of `folder`.

    Raises ScenegrepError unless there are at least two classes with images.
    """
    root = Path(folder)
    if not root.is_dir():
        raise ScenegrepError(f"{folder}: no such folder; give a folder with one sub-folder of images per class")
    items = [
        (str(path), class_dir.name)
        for class_dir in sorted(p for p in root.iterdir() if p.is_dir())
        for path in sorted(class_dir.rglob("*"))
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()
    ]
    if len({label for _, label in items}) < 2:
        raise ScenegrepError(f"{folder}: need at least two class sub-folders with images (e.g. {folder}/cat/1.jpg, {folder}/dog/2.jpg)")
    return items


def evaluate_images(folder: str, encoder, progress: Callable[[int], None] | None = None) -> ImageEvalReport:
    """Top-1/top-5 class accuracy and mAP of image-to-image retrieval in `folder`."""
    import chromadb
    from chromadb.config import Settings

    items = labelled_images(folder)
    labels = np.array([label for _, label in items])
    vectors = []
    encoder.load()  # its batch size depends on the device it loads on
    for start in range(0, len(items), encoder.batch_size):
        chunk = items[start : start + encoder.batch_size]
        vectors.append(encoder.embed_images([load_image(path) for path, _ in chunk]))
        if progress:
            progress(len(chunk))
    embeddings = np.concatenate(vectors)

    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False))
    collection = client.create_collection(
        f"eval-{os.getpid()}-{id(embeddings)}", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
    )
    ids = [str(i) for i in range(len(items))]
    limit = client.get_max_batch_size()
    for start in range(0, len(ids), limit):
        collection.add(ids=ids[start : start + limit], embeddings=embeddings[start : start + limit])
    k = min(6, len(ids))  # itself plus five neighbours
    top1 = top5 = 0
    for start in range(0, len(ids), limit):
        found = collection.query(query_embeddings=embeddings[start : start + limit], n_results=k, include=[])
        for offset, neighbours in enumerate(found["ids"]):
            own = str(start + offset)
            classes = [labels[int(i)] for i in neighbours if i != own][:5]
            top1 += bool(classes) and classes[0] == labels[start + offset]
            top5 += labels[start + offset] in classes
    client.delete_collection(collection.name)
    return ImageEvalReport(
        images=len(items),
        classes=len(set(labels)),
        top1=top1 / len(items),
        top5=top5 / len(items),
        mean_average_precision=_mean_average_precision(embeddings, labels),
    )


def _mean_average_precision(embeddings: np.ndarray, labels: np.ndarray) -> float:
    n = len(labels)
    precisions = []
    for start in range(0, n, MAP_CHUNK):
        scores = embeddings[start : start + MAP_CHUNK] @ embeddings.T
        for row, index in enumerate(range(start, min(start + MAP_CHUNK, n))):
            scores[row, index] = -np.inf  # a query is not its own answer
            order = np.argsort(-scores[row], kind="stable")[: n - 1]
            relevant = labels[order] == labels[index]
            if relevant.any():
                hits = np.cumsum(relevant)
                precisions.append(float((hits[relevant] / (np.flatnonzero(relevant) + 1)).mean()))
            else:
                precisions.append(0.0)
    return _mean(precisions)


def read_annotations(path: str) -> list[dict]:
    """The annotated videos of an annotations file, each with its absolute `path`.

    Raises ScenegrepError when the file is missing, not JSON or has no scenes.
    """
    try:
        data = json.loads(Path(path).read_text())
        videos = data["videos"]
        for video in videos:
            video["path"] = os.path.abspath(os.path.join(os.path.dirname(path), video["file"]))
            [(s["caption"], float(s["start"]), float(s["end"])) for s in video["scenes"]]
    except FileNotFoundError as exc:
        raise ScenegrepError(f"{path}: no such annotations file") from exc
    except OSError as exc:
        raise ScenegrepError(f"{path}: cannot read the annotations file ({exc.strerror or exc})") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ScenegrepError(
            f"{path}: not an annotations file ({exc.__class__.__name__}: {exc}); expected "
            '{"videos": [{"file": ..., "scenes": [{"start": s, "end": s, "caption": ...}]}]}'
        ) from exc
    if not any(video["scenes"] for video in videos):
        raise ScenegrepError(f"{path}: no annotated scenes")
    return videos


def evaluate_videos(videos: list[dict], encoder, store, rules: ClipRules = ClipRules(),
                    progress: Callable[[int], None] | None = None) -> VideoEvalReport:
    """Ask every annotated caption against `store` (which must hold the videos)."""
    from .search import search

    results = []
    for video in videos:
        episode = Path(video["path"]).stem
        rate = parse_rate(video["fps"]) if video.get("fps") else None
        starts = {round(float(scene["start"]), 3): scene for scene in video["scenes"]}
        for scene in video["scenes"]:
            start, end = float(scene["start"]), float(scene["end"])
            clips = search(store, query_vector(encoder, Query.parse([scene["caption"]])), k=EVAL_DEPTH, rules=rules)
            rank, iou, found = None, 0.0, None
            for position, clip in enumerate(clips, 1):
                if clip.path == video["path"] and clip.start < end and clip.end > start:
                    rank, iou, found = position, _iou(clip.start, clip.end, start, end), clip
                    break
            after = starts.get(round(end, 3))
            start_kind = scene.get("transition_in", "cut") if start > 0 else None
            end_kind = after.get("transition_in", "cut") if after is not None else None
            errors: list[float | None] = [None, None]
            spills = False
            if found is not None:
                frame_rate = rate or found.fps
                if frame_rate:
                    errors = [round(abs(found.start - start) * float(frame_rate), 2) if start_kind else None,
                              round(abs(found.end - end) * float(frame_rate), 2) if end_kind else None]
                spills = (start_kind is not None and found.start < start - EDGE_SLACK) or (
                    end_kind is not None and found.end > end + EDGE_SLACK)
            results.append(AnnotatedQuery(scene["caption"], episode, start, end, rank, iou, errors[0], errors[1],
                                          start_kind, end_kind, spills))
            if progress:
                progress(1)
    return VideoEvalReport(tuple(results))


def _iou(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    overlap = max(0.0, min(a_end, b_end) - max(a_start, b_start))
    union = max(a_end, b_end) - min(a_start, b_start)
    return overlap / union if union > 0 else 0.0


def _mean(values) -> float:
    values = list(values)
    return float(sum(values)) / len(values) if values else 0.0
