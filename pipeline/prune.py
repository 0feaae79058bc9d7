"""Removing what no longer belongs in an index: videos whose files are gone,
orphan frames (frames of a video that is not registered, left by a killed run)
and registered videos whose frames are incomplete (so `index` redoes them)."""

from __future__ import annotations

import os
from typing import Sequence

from .files import is_within
from .registry import VideoEntry


def missing_videos(store, within: Sequence[str] | None = None) -> list[VideoEntry]:
    """Registered videos whose file no longer exists, limited to those under
    `within` (files or folders) when given."""
    return [
        entry for entry in store.indexed_videos()
        if (within is None or is_within(entry.path, within)) and not os.path.exists(entry.path)
    ]


def prune_missing(store, within: Sequence[str] | None = None, dry_run: bool = False) -> list[VideoEntry]:
    """Remove (unless `dry_run`) registered videos whose files are gone, and
    their local vector copies; returns their entries.

    Restricting to `within` keeps an unmounted drive from emptying the index
    when another folder is pruned; a path in `within` that does not exist
    itself (the unplugged drive) is ignored, so nothing under it is pruned.
    """
    if within is not None:
        within = [path for path in within if os.path.exists(path)]
        if not within:
            return []
    gone = missing_videos(store, within)
    if not dry_run:
        for entry in gone:
            store.remove_video(entry.video_id)
        forget_stale_vectors(store)
    return gone


def audit(store) -> tuple[dict[str, int], list[VideoEntry]]:
    """(frames per orphan video id, registry entries whose stored frame count is wrong).

    Orphans are frames of a video that is not registered (left by a killed
    run, or being written right now by a running `index`)."""
    counts = store.frames_per_video()
    videos = store.indexed_videos()
    registered = {entry.video_id for entry in videos}
    orphans = {video_id: n for video_id, n in counts.items() if video_id not in registered}
    incomplete = [entry for entry in videos if counts.get(entry.video_id, 0) != entry.frames]
    return orphans, incomplete


def repair(store, dry_run: bool = False) -> tuple[dict[str, int], list[VideoEntry]]:
    """Delete orphan frames and registered videos whose stored frames do not
    match their count (unless `dry_run`); the next `index` redoes those videos.
    Returns (frames per orphan video id, incomplete registry entries).

    Only safe while nothing indexes into the store: a video being indexed
    right now is unregistered until its last frame is stored.
    """
    orphans, incomplete = audit(store)
    if not dry_run:
        for video_id in orphans:
            store.remove_leftovers(video_id)
        for entry in incomplete:
            store.remove_video(entry.video_id)
        forget_stale_vectors(store)
    return orphans, incomplete


def forget_stale_vectors(store) -> int:
    """Delete local vector copies (`pipeline/vector_cache.py`) of videos no longer
    registered as they were; returns how many files went."""
    return store.cache.forget_others(store.indexed_videos()) if store.cache else 0
