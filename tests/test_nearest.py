"""Filtered nearest-frame search: each way (exact from the vector cache, over-fetch, Chroma's
filter) returns exactly the filtered top n of a real Chroma store, and the cache never serves stale vectors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from scenegrep.pipeline import nearest
from scenegrep.pipeline.encode import ModelInfo
from scenegrep.pipeline.nearest import nearest_frames
from scenegrep.pipeline.records import Video
from scenegrep.pipeline.index_access import Location, open_index

DIM = 16
FRAMES = 50  # per video, one every 2 s
VIDEOS = 6


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def archive(tmp_path):
    """A real embedded store with VIDEOS registered videos of random frame vectors, opened for search."""
    rng = np.random.default_rng(7)
    where = Location(db=str(tmp_path / "db"))
    model = ModelInfo(name="synthetic", fingerprint="synthetic01", dim=DIM)
    with open_index(where, write=True) as opened:
        writer = opened.for_writing(model, 2.0)
    times = np.arange(FRAMES) * 2.0
    truth = {}
    for i in range(VIDEOS):
        video = Video(path=f"/archive/ep{i}.mp4", episode=f"ep{i}", video_id=f"{i:016x}")
        vectors = _unit(rng.standard_normal((FRAMES, DIM)))
        writer.add_frames(video, list(times), vectors)
        writer.mark_indexed(video, FRAMES, {"size": 1, "mtime_ns": 1, "hash": "h1", "duration": FRAMES * 2.0})
        truth[video.video_id] = (video, vectors)
    with open_index(where) as opened:
        store = opened.for_reading(model)
    return store, writer, truth, rng


def _expected(truth, query, n, chosen, start=None, end=None):
    rows = []
    for video_id in chosen:
        video, vectors = truth[video_id]
        for row, t in enumerate(np.arange(FRAMES) * 2.0):
            if (start is None or t >= start) and (end is None or t <= end):
                rows.append((float(vectors[row] @ query), video.episode, float(t), vectors[row]))
    rows.sort(key=lambda r: -r[0])
    return rows[:n]


class Spy:
    """Records which store calls a search made (the real store still answers them)."""

    def __init__(self, store, monkeypatch):
        self.calls = []
        for name in ("query", "nearest", "frames_of"):
            real = getattr(store, name)
            monkeypatch.setattr(store, name, self._wrap(name, real))

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            self.calls.append(name)
            return real(*args, **kwargs)
        return call


def force_way(way: str, monkeypatch) -> None:
    """Make the planner choose `way` for any filtered search of this small store."""
    exact_max, overfetch_max = {"exact": (10**6, 10**6), "overfetch": (0, 10**6), "index": (0, 0)}[way]
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", exact_max)
    monkeypatch.setattr(nearest, "OVERFETCH_MAX", overfetch_max)


@pytest.mark.parametrize("way", ["exact", "overfetch", "index"])
def test_each_way_returns_the_filtered_top_n(way, archive, monkeypatch):
    store, _, truth, rng = archive
    force_way(way, monkeypatch)
    spy = Spy(store, monkeypatch)
    videos = store.indexed_videos()
    chosen = [entry for entry in videos if entry.episode in ("ep1", "ep3", "ep4", "ep5")]
    for _ in range(5):
        query = _unit(rng.standard_normal((1, DIM)))[0]
        hits = nearest_frames(store, query, 12, videos, chosen, start=20.0, end=70.0, with_vectors=True)
        expected = _expected(truth, query, 12, [entry.video_id for entry in chosen], 20.0, 70.0)
        assert [(hit.episode, hit.t) for hit in hits] == [(episode, t) for _, episode, t, _ in expected]
        assert np.allclose([hit.score for hit in hits], [score for score, *_ in expected], atol=1e-5)
        assert all(np.allclose(hit.vector, vector, atol=1e-6) for hit, (*_, vector) in zip(hits, expected))
        assert all(hit.path == f"/archive/{hit.episode}.mp4" for hit in hits)
    assert set(spy.calls) == {{"exact": "frames_of", "overfetch": "nearest", "index": "query"}[way]}


def search_one_episode(store, rng, episode: str):
    """(registry, chosen entries, query, the first top-5 hits) of a random query within `episode`."""
    videos = store.indexed_videos()
    chosen = [entry for entry in videos if entry.episode == episode]
    query = _unit(rng.standard_normal((1, DIM)))[0]
    return videos, chosen, query, nearest_frames(store, query, 5, videos, chosen)


def test_the_exact_way_keeps_a_cache_that_follows_the_registry(archive):
    store, writer, truth, rng = archive
    videos, chosen, query, first = search_one_episode(store, rng, "ep2")
    assert len(first) == 5 and len(os.listdir(store.cache.folder)) == 1

    # The cache answers now: the same hits even with Chroma's copy gone.
    writer.frames.delete(where={"video_id": chosen[0].video_id})
    assert nearest_frames(store, query, 5, videos, chosen) == first

    # Re-indexed with other content: the registry's new hash misses the cache, Chroma answers.
    video = truth[chosen[0].video_id][0]
    vectors = _unit(rng.standard_normal((FRAMES, DIM)))
    writer.add_frames(video, list(np.arange(FRAMES) * 2.0), vectors)
    writer.mark_indexed(video, FRAMES, {"size": 1, "mtime_ns": 2, "hash": "h2", "duration": FRAMES * 2.0})
    videos = store.indexed_videos()
    chosen = [entry for entry in videos if entry.episode == "ep2"]
    again = nearest_frames(store, query, 5, videos, chosen)
    best = int(np.argmax(vectors @ query))
    assert len(again) == 5
    assert again[0].t == best * 2.0 and abs(again[0].score - float(vectors[best] @ query)) < 1e-5
    assert len(os.listdir(store.cache.folder)) == 2
    assert store.cache.forget_others(videos) == 1  # what `prune` does: the stale file goes
    assert len(os.listdir(store.cache.folder)) == 1


def test_a_damaged_video_is_searched_but_not_cached(archive):
    store, writer, truth, rng = archive
    video_id = f"{4:016x}"
    writer.frames.delete(ids=[f"{video_id}:{t * 1_000_000}" for t in (0, 2, 4)])
    videos = store.indexed_videos()
    chosen = [entry for entry in videos if entry.video_id == video_id]
    hits = nearest_frames(store, truth[video_id][1][10], 3, videos, chosen)
    assert hits[0].t == 20.0
    assert not os.path.exists(store.cache.folder) or not os.listdir(store.cache.folder)


def test_frames_of_a_video_being_indexed_are_found_by_an_unfiltered_search(archive):
    """Searching during a long `index` finds what is stored so far, though that video is not registered yet."""
    store, writer, truth, rng = archive
    unfinished = Video(path="/archive/running.mp4", episode="running", video_id="f" * 16)
    target = truth[f"{0:016x}"][1][0]
    writer.add_frames(unfinished, [0.0, 2.0], np.stack([target, target]))  # not registered (yet)
    videos = store.indexed_videos()
    hits = nearest_frames(store, target, 5, videos)
    assert len(hits) == 5
    assert {(hit.episode, hit.t) for hit in hits[:3]} == {("running", 0.0), ("running", 2.0), ("ep0", 0.0)}
    assert hits[0].path in ("/archive/running.mp4", "/archive/ep0.mp4")
    only_ep0 = nearest_frames(store, target, 5, videos, [entry for entry in videos if entry.episode == "ep0"])
    assert len(only_ep0) == 5 and {hit.episode for hit in only_ep0} == {"ep0"} and only_ep0[0].t == 0.0


def test_overfetch_below_the_whole_collection_and_its_fallback_stay_exact(archive, monkeypatch):
    """Over-fetching fewer candidates than the store holds: enough pass (answered by the
    unfiltered index alone), or too few pass and Chroma's filter answers; exact either way."""
    store, _, truth, rng = archive
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", 0)
    monkeypatch.setattr(nearest, "CANDIDATES_FOR_RECALL", 1)
    videos = store.indexed_videos()
    chosen = [entry for entry in videos if entry.episode in ("ep1", "ep3", "ep4", "ep5")]
    for factor, answered_by in ((2.0, {"nearest"}), (0.05, {"nearest", "query"})):
        monkeypatch.setattr(nearest, "OVERFETCH_FACTOR", factor)
        wanted = nearest.plan(12, videos, chosen, 20.0, 70.0).wanted
        assert 0 < wanted < VIDEOS * FRAMES
        for _ in range(5):
            spy = Spy(store, monkeypatch)
            query = _unit(rng.standard_normal((1, DIM)))[0]
            hits = nearest_frames(store, query, 12, videos, chosen, start=20.0, end=70.0)
            expected = _expected(truth, query, 12, [entry.video_id for entry in chosen], 20.0, 70.0)
            assert [(hit.episode, hit.t) for hit in hits] == [(episode, t) for _, episode, t, _ in expected]
            assert set(spy.calls) == answered_by


@pytest.mark.parametrize("way", ["exact", "overfetch", "index"])
def test_a_filter_matching_every_episode_still_leaves_out_unregistered_frames(way, archive, monkeypatch):
    store, writer, truth, rng = archive
    force_way(way, monkeypatch)
    target = truth[f"{0:016x}"][1][0]
    for video in (Video("/elsewhere/other.mp4", "other", "e" * 16), Video("/elsewhere/ep1.mp4", "ep1", "d" * 16)):
        writer.add_frames(video, [0.0, 2.0], np.stack([target, target]))  # stored, not registered
    videos = store.indexed_videos()
    hits = nearest_frames(store, target, 10, videos, list(videos))  # e.g. --episode 'ep*'
    # All 10 asked for: the best registered frames, none of the four better unregistered ones, and no fewer.
    expected = _expected(truth, target, 10, list(truth))
    assert [(hit.episode, hit.t) for hit in hits] == [(episode, t) for _, episode, t, _ in expected]
    assert all(hit.path == f"/archive/{hit.episode}.mp4" for hit in hits)


def test_a_damaged_cache_file_is_fetched_again(archive):
    store, _, truth, rng = archive
    videos, chosen, query, first = search_one_episode(store, rng, "ep3")
    (cached,) = os.listdir(store.cache.folder)
    path = os.path.join(store.cache.folder, cached)
    for damage in (b"", open(path, "rb").read()[:100]):  # empty, and cut short
        with open(path, "wb") as fh:
            fh.write(damage)
        assert nearest_frames(store, query, 5, videos, chosen) == first
        assert os.path.getsize(path) > 1000  # written whole again


def test_server_urls_name_one_cache_folder_however_they_are_written(tmp_path, monkeypatch):
    from scenegrep.pipeline.connect import location
    from scenegrep.pipeline.vector_cache import cache_folder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folders = {cache_folder(location(None, url), "sg-x") for url in
               ("localhost:8000", "http://localhost:8000", "HTTP://localhost:8000", " http://localhost:8000/ ", "localhost",
                "http://LOCALHOST:8000/default_database", "localhost:8000/default_database/")}
    (folder,) = folders
    assert folder.startswith(str(tmp_path)) and "localhost" not in folder
    assert cache_folder(location(str(tmp_path / "db"), None), "sg-x") == str(tmp_path / "db" / "vectors" / "sg-x")


@pytest.mark.parametrize("way", ["exact", "overfetch", "index"])
def test_unregistered_frames_that_rank_first_never_cost_a_filtered_search_its_n_hits(way, archive, monkeypatch):
    """Frames of a video still being indexed rank first, pass Chroma's filter and are dropped
    afterwards: the search still returns exactly the filtered top n of the registered videos."""
    store, writer, truth, rng = archive
    force_way(way, monkeypatch)
    target = truth[f"{0:016x}"][1][0]
    running = Video("/elsewhere/ep0.mp4", "ep0", "c" * 16)  # same episode name as a registered video
    writer.add_frames(running, [float(t) for t in range(0, 40, 2)], np.stack([target] * 20))
    videos = store.indexed_videos()
    chosen = [entry for entry in videos if entry.episode in ("ep0", "ep1")]
    hits = nearest_frames(store, target, 10, videos, chosen, start=0.0, end=60.0)
    expected = _expected(truth, target, 10, [entry.video_id for entry in chosen], 0.0, 60.0)
    assert [(hit.path, hit.t) for hit in hits] == [(f"/archive/{episode}.mp4", t) for _, episode, t, _ in expected]


@pytest.mark.parametrize("damage", ["foreign", "nan", "short", "dimension", "unsorted"])
def test_a_cache_file_that_is_not_exactly_its_video_is_never_used(damage, archive):
    """A cache file named right but holding another video's vectors, NaN rows, too few rows,
    the wrong dimension or unsorted times is rejected on load and fetched again."""
    store, _, truth, rng = archive
    videos, chosen, query, first = search_one_episode(store, rng, "ep3")
    (name,) = os.listdir(store.cache.folder)
    path = os.path.join(store.cache.folder, name)
    with np.load(path) as data:
        saved = {key: data[key] for key in data.files}
    other = truth[f"{5:016x}"][1]
    saved = {
        "foreign": {**saved, "vectors": other, "video_id": np.str_(f"{5:016x}")},
        "nan": {**saved, "vectors": np.where(np.arange(FRAMES)[:, None] == 3, np.nan, saved["vectors"]).astype(np.float32)},
        "short": {**saved, "times": saved["times"][:-1], "vectors": saved["vectors"][:-1]},
        "dimension": {**saved, "vectors": np.zeros((FRAMES, DIM + 1), np.float32)},
        "unsorted": {**saved, "times": saved["times"][::-1].copy()},
    }[damage]
    with open(path, "wb") as fh:
        np.savez(fh, **saved)
    assert store.cache.load(chosen[0], DIM) is None
    assert not os.path.exists(path)  # a rejected file is deleted …
    assert nearest_frames(store, query, 5, videos, chosen) == first
    times, vectors = store.cache.load(chosen[0], DIM)  # … and written whole again from the index
    assert np.allclose(vectors, truth[chosen[0].video_id][1])
