"""The catalogue of indexes in one Chroma store, and the one rule that picks a model's index.

Each model gets two collections: `sg-…` holds one record per sampled frame,
`sgv-…` the registry of fully indexed videos (`pipeline/registry.py`). The
frames collection's metadata names the model, its fingerprint, the vector
size and the sampling interval.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from .errors import IndexNotFoundError, ModelMismatchError

SCHEMA_VERSION = 1
FRAMES_PREFIX = "sg-"
VIDEOS_PREFIX = "sgv-"

HNSW_CONFIGURATION = {"space": "cosine", "ef_search": 200}
"""The frames collection's HNSW settings, set when the collection is created.
On archive-shaped vectors (bench/search_scale.py) Chroma's default graph
already has recall@10 = 1.0 against exact search at 10k and 50k frames; a
wider graph (ef_construction 200, 32 neighbours) made adds 1.65x slower for no
gain there, so only the query-time beam is widened (search asks for 100+
candidates anyway, which widens it to at least that)."""


@dataclass(frozen=True)
class IndexInfo:
    """What a frames collection says about itself."""

    collection: str
    model: str
    fingerprint: str
    dim: int
    every: float

    @property
    def registry_collection(self) -> str:
        return VIDEOS_PREFIX + self.collection[len(FRAMES_PREFIX):]


def list_indexes(client) -> list[IndexInfo]:
    """Every scenegrep frames collection in this store."""
    found = []
    for collection in client.list_collections():
        name = collection.name if hasattr(collection, "name") else str(collection)
        if not name.startswith(FRAMES_PREFIX):
            continue
        meta = client.get_collection(name, embedding_function=None).metadata or {}
        found.append(IndexInfo(name, str(meta.get("model")), str(meta.get("fingerprint")), int(meta.get("dim", 0)),
                               float(meta.get("every", 0))))
    return found


def collection_name(model) -> str:
    """The frames collection of a model (`encode.ModelInfo`): its name's last part and its fingerprint."""
    stem = os.path.basename(model.name.rstrip("/")) or "model"
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", stem).strip("-._")[:40] or "model"
    return f"{FRAMES_PREFIX}{slug}-{model.fingerprint}"


def choose_index(indexes: list[IndexInfo], fingerprint: str | None, where: str, requested: str | None = None,
                 *, creating: bool = False) -> IndexInfo | None:
    """The one rule every command uses to pick an index in a store.

    - A model was asked for (`fingerprint` of `requested`): its index, or None
      when `creating` (the caller then makes one); else ModelMismatchError.
    - None was asked for: the store's only index; None for an empty store when
      `creating` (the default model then starts one), else IndexNotFoundError;
      ModelMismatchError when the store holds several, since guessing would
      search, check or grow the wrong one.
    """
    if fingerprint is not None:
        for index in indexes:
            if index.fingerprint == fingerprint:
                return index
        if creating:
            return None
        if not indexes:
            raise IndexNotFoundError(f"no videos are indexed at {where}; run `scenegrep index VIDEOS` first")
        built = ", ".join(index.model for index in indexes)
        raise ModelMismatchError(
            f"the index at {where} was built with {built}, not {requested}; use --model {indexes[0].model} "
            "or index the videos with this model first"
        )
    if len(indexes) > 1:
        names = ", ".join(index.model for index in indexes)
        raise ModelMismatchError(f"{where} holds indexes for several models ({names}); choose one with --model")
    if indexes:
        return indexes[0]
    if creating:
        return None
    raise IndexNotFoundError(f"no videos are indexed at {where}; run `scenegrep index VIDEOS` first")


def create_index(client, model, every: float) -> IndexInfo:
    """Make the frames and registry collections of `model` (`encode.ModelInfo`) sampled every `every` s."""
    name = collection_name(model)
    metadata = {"scenegrep": SCHEMA_VERSION, "model": model.name, "fingerprint": model.fingerprint,
                "dim": model.dim, "every": float(every)}
    client.get_or_create_collection(
        name, configuration={"hnsw": dict(HNSW_CONFIGURATION)}, metadata=metadata, embedding_function=None
    )
    info = IndexInfo(name, model.name, model.fingerprint, model.dim, float(every))
    client.get_or_create_collection(info.registry_collection, embedding_function=None)
    return info
