"""Filtered nearest-frame search: each way (exact from the vector cache, over-fetch, Chroma's
filter) returns exactly the filtered top n of a real Chroma store, and the cache never serves stale vectors."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from scenegrep.pipeline import nearest
from scenegrep.pipeline.encode import ModelInfo
from scenegrep.pipeline.frame_matrix import forget_held_copies, ready_frame_matrix, wait_for_frame_matrices
from scenegrep.pipeline.nearest import nearest_frames
from scenegrep.pipeline.records import Video
from scenegrep.pipeline.index_access import Location, open_index

DIM = 16
FRAMES = 50  # per video, one every 2 s
VIDEOS = 6


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _synthetic_archive(tmp_path, videos: int, frames: int, seed: int):
    """A real embedded index of `videos` registered videos of `frames` random frame vectors (one every 2 s):
    (where, model, writer, {video_id: (video, vectors)}, rng). Each video's copy is written at index
    time; the caller decides whether it stays, then opens it for search with `_reopened`."""
    rng = np.random.default_rng(seed)
    where = Location(db=str(tmp_path / "db"))
    model = ModelInfo(name="synthetic", fingerprint="synthetic01", dim=DIM)
    with open_index(where, write=True) as opened:
        writer = opened.for_writing(model, 2.0)
    times = np.arange(frames) * 2.0
    truth = {}
    for i in range(videos):
        video = Video(path=f"/archive/ep{i}.mp4", episode=f"ep{i}", video_id=f"{i:016x}")
        vectors = _unit(rng.standard_normal((frames, DIM)))
        writer.add_frames(video, list(times), vectors)
        writer.mark_indexed(video, frames, {"size": 1, "mtime_ns": 1, "hash": "h1", "duration": frames * 2.0})
        truth[video.video_id] = (video, vectors)
    return where, model, writer, truth, rng


MODEL = ModelInfo(name="synthetic", fingerprint="synthetic01", dim=DIM)


def _reopened(where, model, many_searches: bool = True):
    """The index opened for search as `serve` opens it (many searches: the frame matrix pays),
    or as `scenegrep search` does."""
    with open_index(where) as opened:
        return opened.for_reading(model, many_searches=many_searches)


@pytest.fixture
def archive(tmp_path):
    """A real embedded store with VIDEOS registered videos of random frame vectors, opened for search."""
    where, model, writer, truth, rng = _synthetic_archive(tmp_path, VIDEOS, FRAMES, seed=7)
    assert len(os.listdir(writer.cache.folder)) == VIDEOS  # written at index time …
    shutil.rmtree(writer.cache.folder)  # … and gone, as for an index searched from another machine
    return _reopened(where, model), writer, truth, rng


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
        self.videos_read = []  # the number of videos of each frames_of call
        for name in ("query", "nearest", "frames_of"):
            real = getattr(store, name)
            monkeypatch.setattr(store, name, self._wrap(name, real))

    def _wrap(self, name, real):
        def call(*args, **kwargs):
            self.calls.append(name)
            if name == "frames_of":
                self.videos_read.append(len(args[0]))
            return real(*args, **kwargs)
        return call


def force_way(way: str, monkeypatch, store) -> None:
    """Make the planner choose `way` for any filtered search of this small store
    (for "matrix", with the frame matrix built, as a server has it after its first narrow window)."""
    exact_max, overfetch_max, matrix_max = {"exact": (10**6, 10**6, 10**6), "overfetch": (0, 10**6, 10**6),
                                            "matrix": (0, 0, 10**6), "index": (0, 0, 0)}[way]
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", exact_max)
    monkeypatch.setattr(nearest, "OVERFETCH_MAX", overfetch_max)
    monkeypatch.setattr(nearest, "MATRIX_MAX_FRAMES", matrix_max)
    if way == "matrix":
        held_matrix(store)


def held_matrix(store):
    """The frame matrix of `store`, built in the background as a server builds it, once it is ready."""
    assert ready_frame_matrix(store, store.indexed_videos()) is None  # not held yet: its build starts
    wait_for_frame_matrices()
    held = ready_frame_matrix(store, store.indexed_videos())
    assert held is not None
    return held


@pytest.mark.parametrize("way", ["exact", "overfetch", "matrix", "index"])
def test_each_way_returns_the_filtered_top_n(way, archive, monkeypatch):
    store, _, truth, rng = archive
    spy = Spy(store, monkeypatch)
    force_way(way, monkeypatch, store)
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
    assert set(spy.calls) == {{"exact": "frames_of", "overfetch": "nearest", "matrix": "frames_of", "index": "query"}[way]}


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


def test_indexing_writes_each_videos_copy_so_its_first_filtered_search_asks_chroma_nothing(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    where = Location(db=str(tmp_path / "db"))
    model = ModelInfo(name="synthetic", fingerprint="synthetic01", dim=DIM)
    with open_index(where, write=True) as opened:
        writer = opened.for_writing(model, 2.0)
    video = Video(path="/archive/ep0.mp4", episode="ep0", video_id="0" * 16)
    vectors = _unit(rng.standard_normal((FRAMES, DIM)))
    times = np.arange(FRAMES) * 2.0 + 1e-7  # written in two batches, in any order; times as frame ids round them
    writer.add_frames(video, list(times[25:]), vectors[25:])
    writer.add_frames(video, list(times[:25]), vectors[:25])
    writer.mark_indexed(video, FRAMES, {"size": 1, "mtime_ns": 1, "hash": "h1", "duration": FRAMES * 2.0})
    with open_index(where) as opened:
        store = opened.for_reading(model)
    spy = Spy(store, monkeypatch)
    monkeypatch.setattr(store, "fetch_frames", lambda entries: entries and pytest.fail("asked Chroma for a copy written at index time") or iter(()))
    videos = store.indexed_videos()
    hits = nearest_frames(store, vectors[7], 3, videos, videos)
    assert hits[0].t == 14.0 and spy.calls == ["frames_of"]
    cached_times, cached_vectors = store.cache.load(videos[0], DIM)
    assert np.array_equal(cached_times, np.arange(FRAMES) * 2.0) and np.array_equal(cached_vectors, vectors)
    assert store.cache.inspect(videos[0], DIM, *next(iter(store.frames_of(videos).values()))) is False


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


@pytest.mark.parametrize("way", ["exact", "overfetch", "matrix", "index"])
def test_a_filter_matching_every_episode_still_leaves_out_unregistered_frames(way, archive, monkeypatch):
    store, writer, truth, rng = archive
    force_way(way, monkeypatch, store)
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
        forget_held_copies()  # as a new process: the file is read again
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


@pytest.mark.parametrize("way", ["exact", "overfetch", "matrix", "index"])
def test_unregistered_frames_that_rank_first_never_cost_a_filtered_search_its_n_hits(way, archive, monkeypatch):
    """Frames of a video still being indexed rank first, pass Chroma's filter and are dropped
    afterwards: the search still returns exactly the filtered top n of the registered videos."""
    store, writer, truth, rng = archive
    force_way(way, monkeypatch, store)
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
    forget_held_copies()  # as a new process: the file is read again
    assert store.cache.load(chosen[0], DIM) is None
    assert not os.path.exists(path)  # a rejected file is deleted …
    assert nearest_frames(store, query, 5, videos, chosen) == first
    times, vectors = store.cache.load(chosen[0], DIM)  # … and written whole again from the index
    assert np.allclose(vectors, truth[chosen[0].video_id][1])


@pytest.fixture(scope="module")
def many_videos_built(tmp_path_factory):
    """The archive `many_videos` copies, built once: (folder, model, truth by episode, rng state after building)."""
    built = tmp_path_factory.mktemp("many_videos")
    where, model, writer, truth, rng = _synthetic_archive(built, 40, 60, seed=11)
    shutil.rmtree(writer.cache.folder)  # the first window search fills the copies from Chroma
    by_episode = {video.episode: vectors for video, vectors in truth.values()}
    return where.db, model, by_episode, rng.bit_generator.state


@pytest.fixture
def many_videos(many_videos_built, tmp_path):
    """40 registered videos of 60 random frames (one every 2 s), their cached copies gone, and the truth by
    episode: a private copy of one archive (writing 2400 frames to Chroma takes seconds; copying it, none)."""
    built, model, by_episode, rng_state = many_videos_built
    where = Location(db=str(tmp_path / "db"))
    shutil.copytree(built, where.db)
    with open_index(where, write=True) as opened:
        writer = opened.for_writing(model, 2.0)
    rng = np.random.default_rng()
    rng.bit_generator.state = rng_state  # each test draws the same queries as from a fresh build
    return _reopened(where, model), writer, dict(by_episode), rng


def brute_force(truth, query, n, episodes, start, end):
    """(episode, t) of the best n frames of `episodes` within [start, end], by numpy over every frame."""
    rows = [(float(vectors[i] @ query), episode, i * 2.0) for episode, vectors in truth.items() if episode in episodes
            for i in range(len(vectors)) if (start is None or i * 2.0 >= start) and (end is None or i * 2.0 <= end)]
    rows.sort(key=lambda row: -row[0])
    return [(episode, t) for _, episode, t in rows[:n]], [score for score, *_ in rows[:n]]


@pytest.mark.parametrize("scoring", ["gathered", "in place"])
@pytest.mark.parametrize("pattern, start, end, n", [
    ("*", None, 6.0, 100),  # --to 0:06 over every video
    ("*", 112.0, None, 100),  # --from 1:52 over every video
    ("ep1*", None, 10.0, 50),  # --episode 'ep1*' --to 0:10: a window in a few series
])
def test_a_window_too_narrow_to_over_fetch_is_ranked_exactly_in_the_frame_matrix(pattern, start, end, n, scoring,
                                                                                     many_videos, monkeypatch):
    """Windows that used to fall back to Chroma's `where` (too few frames kept to over-fetch
    for, too many videos to read one by one) return exactly what brute force returns, whether
    the matrix gathers the kept rows or scores each video's run of them where it lies."""
    import fnmatch

    from scenegrep.pipeline import frame_matrix

    monkeypatch.setattr(frame_matrix, "SCORE_IN_PLACE_MIN_RUN", 10**9 if scoring == "gathered" else 1)
    store, _, truth, rng = many_videos
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", 500)  # scaled to this archive: the rule is under test, not the size
    videos = store.indexed_videos()
    chosen = None if pattern == "*" else [entry for entry in videos if fnmatch.fnmatchcase(entry.episode, pattern)]
    assert nearest.plan(n, videos, chosen, start, end).way == "matrix"
    spy = Spy(store, monkeypatch)
    held_matrix(store)
    episodes = {entry.episode for entry in (chosen or videos)}
    for _ in range(5):
        query = _unit(rng.standard_normal((1, DIM)))[0]
        hits = nearest_frames(store, query, n, videos, chosen, start, end, with_vectors=True)
        expected, scores = brute_force(truth, query, n, episodes, start, end)
        assert [(hit.episode, hit.t) for hit in hits] == expected
        assert np.allclose([hit.score for hit in hits], scores, atol=1e-5)
        assert all(np.allclose(hit.vector, truth[hit.episode][round(hit.t / 2)], atol=1e-6) for hit in hits)
    assert "query" not in spy.calls and "nearest" not in spy.calls


def test_a_server_answers_a_narrow_window_at_once_while_the_frame_matrix_is_built(many_videos, monkeypatch):
    """The first narrow window of a process that searches many times is answered by Chroma's
    `where` (exact, no waiting) while the matrix builds in the background; later ones by the matrix."""
    store, _, truth, rng = many_videos
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", 500)
    videos = store.indexed_videos()
    spy = Spy(store, monkeypatch)
    query = _unit(rng.standard_normal((1, DIM)))[0]
    hits = nearest_frames(store, query, 100, videos, None, None, 6.0)
    assert [(hit.episode, hit.t) for hit in hits] == brute_force(truth, query, 100, set(truth), None, 6.0)[0]
    assert "query" in spy.calls  # answered by Chroma's filter …
    wait_for_frame_matrices()
    assert "frames_of" in spy.calls and ready_frame_matrix(store, videos) is not None  # … while the matrix was built
    spy.calls.clear()
    hits = nearest_frames(store, query, 100, videos, None, None, 6.0)
    assert [(hit.episode, hit.t) for hit in hits] == brute_force(truth, query, 100, set(truth), None, 6.0)[0]
    assert spy.calls == []  # the held matrix answers alone


def _failing_frames_of(store, monkeypatch, error: Exception) -> list[int]:
    """Make `store` fail to read videos' frames with `error`; returns the list of attempts (frames asked)."""
    attempts = []

    def failing(entries):
        attempts.append(len(entries))
        raise error

    monkeypatch.setattr(store, "frames_of", failing)
    return attempts


def test_a_frame_matrix_build_that_finds_the_index_damaged_makes_searches_that_need_it_say_so(many_videos,
                                                                                              monkeypatch):
    """Found by review: the build's DamagedIndexError was swallowed and narrow windows went on to
    Chroma without a word. Now they report the damage, a reopened store too, without building again."""
    from scenegrep.pipeline.errors import DamagedIndexError

    store, _, truth, rng = many_videos
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", 500)
    attempts = _failing_frames_of(store, monkeypatch, DamagedIndexError("the index at here is damaged (a test)"))
    videos = store.indexed_videos()
    query = _unit(rng.standard_normal((1, DIM)))[0]
    hits = nearest_frames(store, query, 100, videos, None, None, 6.0)  # Chroma answers while the build runs
    assert [(hit.episode, hit.t) for hit in hits] == brute_force(truth, query, 100, set(truth), None, 6.0)[0]
    wait_for_frame_matrices()
    for searching in (store, _reopened(Location(db=str(store.where)), MODEL)):
        with pytest.raises(DamagedIndexError, match="damaged"):
            nearest_frames(searching, query, 100, searching.indexed_videos(), None, None, 6.0)
    wait_for_frame_matrices()
    assert attempts == [40]  # one read of the 40 videos, by the first build only


def test_a_frame_matrix_build_that_fails_otherwise_leaves_searches_to_chroma_once_per_opened_store(many_videos,
                                                                                                   monkeypatch):
    """A failure that is not damage ("cannot read the index yet" while a writer starts) is not
    tried again on the same store and registry, but is on a store opened again."""
    from scenegrep.pipeline.errors import ScenegrepError

    store, _, truth, rng = many_videos
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", 500)
    attempts = _failing_frames_of(store, monkeypatch, ScenegrepError("cannot read the index yet (a test)"))
    videos = store.indexed_videos()
    for _ in range(3):
        query = _unit(rng.standard_normal((1, DIM)))[0]
        hits = nearest_frames(store, query, 100, videos, None, None, 6.0)
        assert [(hit.episode, hit.t) for hit in hits] == brute_force(truth, query, 100, set(truth), None, 6.0)[0]
        wait_for_frame_matrices()
    assert len(attempts) == 1 and ready_frame_matrix(store, videos) is None
    reopened = _reopened(Location(db=str(store.where)), MODEL)
    assert ready_frame_matrix(reopened, reopened.indexed_videos()) is None  # a new store: built again, and held
    wait_for_frame_matrices()
    assert ready_frame_matrix(reopened, reopened.indexed_videos()) is not None and len(attempts) == 1


def test_a_build_on_a_store_about_to_be_closed_stops_at_its_next_read(many_videos, monkeypatch):
    """`serve` closes a store when it reopens the index and when it stops: its build must not go
    on reading from a closed client and then install its matrix."""
    import threading

    from scenegrep.pipeline import frame_matrix

    store, _, _, _ = many_videos
    monkeypatch.setattr(frame_matrix, "LOAD_GROUP_FRAMES", 60)  # one video per read: 40 reads
    reading, go_on, reads = threading.Event(), threading.Event(), []
    real_frames_of = store.frames_of

    def slow_frames_of(entries):
        reads.append(len(entries))
        reading.set()
        go_on.wait(timeout=30)
        return real_frames_of(entries)

    monkeypatch.setattr(store, "frames_of", slow_frames_of)
    videos = store.indexed_videos()
    assert ready_frame_matrix(store, videos) is None
    assert reading.wait(timeout=30)
    threading.Timer(0.2, go_on.set).start()  # the read in progress finishes; no other starts
    frame_matrix.stop_building(store)
    assert reads == [1]  # stopped before its next read
    assert ready_frame_matrix(store, videos) is None  # not taken for a failure: the next search starts it again …
    wait_for_frame_matrices()
    assert len(reads) == 40 and ready_frame_matrix(store, videos) is not None  # … reusing the video read before


def test_the_old_matrix_is_freed_before_a_rebuild_reads_the_videos_it_lacks(many_videos, monkeypatch):
    """Found by review: the caller kept the old matrix alive through the whole rebuild (2 GB per
    million frames held twice while Chroma is read)."""
    import gc
    import weakref

    from scenegrep.pipeline import frame_matrix

    store, writer, _, rng = many_videos
    held = weakref.ref(held_matrix(store).vectors)
    video = Video(path="/archive/ep3.mp4", episode="ep3", video_id=f"{3:016x}")
    writer.add_frames(video, list(np.arange(60) * 2.0), _unit(rng.standard_normal((60, DIM))))
    writer.mark_indexed(video, 60, {"size": 1, "mtime_ns": 2, "hash": "h2", "duration": 120.0})
    alive_while_reading = []
    real_frames_of = store.frames_of

    def frames_of(entries):
        gc.collect()
        alive_while_reading.append(held() is not None)
        return real_frames_of(entries)

    monkeypatch.setattr(store, "frames_of", frames_of)
    assert frame_matrix.frame_matrix(store, store.indexed_videos()) is not None
    assert alive_while_reading == [False]


def test_a_one_off_search_never_builds_the_frame_matrix(many_videos, monkeypatch):
    """`scenegrep search` searches once: building the matrix would cost more than Chroma's `where`."""
    store, writer, truth, rng = many_videos
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", 500)
    one_off = _reopened(Location(db=str(store.where)), ModelInfo(name="synthetic", fingerprint="synthetic01", dim=DIM),
                        many_searches=False)
    videos = one_off.indexed_videos()
    query = _unit(rng.standard_normal((1, DIM)))[0]
    hits = nearest_frames(one_off, query, 100, videos, None, None, 6.0)
    assert [(hit.episode, hit.t) for hit in hits] == brute_force(truth, query, 100, set(truth), None, 6.0)[0]
    wait_for_frame_matrices()
    assert ready_frame_matrix(one_off, videos) is None


def test_the_frame_matrix_follows_the_registry_and_never_serves_a_replaced_video(many_videos, monkeypatch):
    store, writer, truth, rng = many_videos
    monkeypatch.setattr(nearest, "EXACT_MAX_FRAMES", 500)
    query = _unit(rng.standard_normal((1, DIM)))[0]
    held_matrix(store)
    videos = store.indexed_videos()
    nearest_frames(store, query, 100, videos, None, None, 6.0)  # answered by the matrix
    # ep3 indexed again with other content; ep4 pruned: the next search sees both.
    replaced = _unit(np.stack([query] * 60) + 0.01 * rng.standard_normal((60, DIM)))
    video = Video(path="/archive/ep3.mp4", episode="ep3", video_id=f"{3:016x}")
    writer.add_frames(video, list(np.arange(60) * 2.0), replaced)
    writer.mark_indexed(video, 60, {"size": 1, "mtime_ns": 2, "hash": "h2", "duration": 120.0})
    writer.remove_video(f"{4:016x}")
    truth = {**truth, "ep3": replaced}
    del truth["ep4"]
    videos = store.indexed_videos()
    spy = Spy(store, monkeypatch)
    for answered_by, asked in (("Chroma's filter while the matrix is built again", "query"),
                               ("the rebuilt matrix", None)):
        spy.calls.clear()
        hits = nearest_frames(store, query, 100, videos, None, None, 6.0)
        assert [(hit.episode, hit.t) for hit in hits] == brute_force(truth, query, 100, set(truth), None, 6.0)[0]
        assert hits[0].episode == "ep3" and "ep4" not in {hit.episode for hit in hits}, answered_by
        assert (asked in spy.calls) if asked else spy.calls == [], answered_by
        wait_for_frame_matrices()
    assert ready_frame_matrix(store, videos) is not None
    assert spy.videos_read == [1]  # the rebuild read ep3 alone: the other 38 videos' rows were reused
