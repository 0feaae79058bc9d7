"""Indexing overlapped and in fast arithmetic gives the same index as before."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import SAMPLE_VIDEOS

from scenegrep.pipeline.encode import ClipEncoder
from scenegrep.pipeline.files import find_videos
from scenegrep.pipeline.indexer import index_videos
from scenegrep.pipeline.sample import sample_video
from scenegrep.pipeline.query import Query, query_vector
from scenegrep.pipeline.search import search
from scenegrep.pipeline.index_access import Location, open_index


def writable_store(db, model_info, every=2.0):
    """The model's index in folder `db`, opened for writing as `scenegrep index` opens it."""
    with open_index(Location(db=str(db)), write=True) as opened:
        return opened.for_writing(model_info, every)


def build_index(db, model, precision="fp32", workers=1):
    encoder = ClipEncoder(model, device="cpu", precision=precision)
    store = writable_store(db, encoder.info)
    videos, _ = find_videos([SAMPLE_VIDEOS])
    results = list(index_videos(videos, encoder, store, workers=workers))
    return encoder, store, results


@pytest.fixture(scope="module")
def serial_index(tmp_path_factory, tiny_model):
    """The sample videos indexed with the tiny model, decoding one at a time: (folder, encoder, store, results)."""
    db = tmp_path_factory.mktemp("serial") / "db"
    return db, *build_index(db, tiny_model, workers=1)


def test_unchanged_videos_do_not_load_the_model(serial_index, tmp_path, tiny_model):
    built, first, _, results = serial_index
    assert first.loaded and [r.status for r in results] == ["indexed"] * 3
    shutil.copytree(built, tmp_path / "db")  # a private copy: indexing again must not touch the shared one
    again, _, results = build_index(tmp_path / "db", tiny_model)
    assert [r.status for r in results] == ["unchanged"] * 3
    assert not again.loaded


def test_parallel_decoding_yields_results_in_input_order_with_the_same_frames(serial_index, tmp_path, tiny_model):
    _, _, one, serial = serial_index
    _, three, parallel = build_index(tmp_path / "three", tiny_model, workers=3)
    assert [r.video.episode for r in parallel] == [r.video.episode for r in serial] == ["episode_01", "episode_02", "episode_03"]
    assert [r.frames for r in parallel] == [r.frames for r in serial]
    assert one.frame_count() == three.frame_count() == sum(r.frames for r in serial)
    assert {v.video_id for v in three.indexed_videos()} == {r.video.video_id for r in serial}


def test_a_failed_write_leaves_the_video_unregistered(tmp_path, tiny_model):
    encoder = ClipEncoder(tiny_model, device="cpu", precision="fp32")
    store = writable_store(tmp_path / "db", encoder.info)
    videos, _ = find_videos([SAMPLE_VIDEOS])
    calls = []
    real_add = store.add_frames

    def add_frames(video, times, embeddings):  # the disk fills up during the second video
        calls.append(video.episode)
        if video.episode == "episode_02":
            raise OSError("No space left on device")
        real_add(video, times, embeddings)

    store.add_frames = add_frames
    done = []
    with pytest.raises(OSError, match="No space"):
        for result in index_videos(videos, encoder, store):
            done.append(result.video.episode)
    registered = {entry.episode for entry in store.indexed_videos()}
    assert "episode_02" not in registered and "episode_03" not in registered
    assert set(done) <= registered


MINI_CLIP = str(SAMPLE_VIDEOS / "mini_clip")

BF16_SCORE_TOLERANCE = 0.02
"""How far a bf16 score may stray from fp32's: bf16 keeps 8 significant bits, which moves
mini_clip's cosines by at most 0.004 (measured on the sample videos); the best clip of
every query below leads the next by at least 0.17, so the ranking cannot flip within it."""


def test_bf16_finds_the_same_clips_as_fp32(tmp_path, annotations):
    # The trained miniature CLIP: its scores separate the scenes, so the comparison means
    # something (the random tiny model sees all frames as near ties that rounding reorders).
    fp32, store32, _ = build_index(tmp_path / "fp32", MINI_CLIP, "fp32")
    bf16, store16, _ = build_index(tmp_path / "bf16", MINI_CLIP, "bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")

    # Embeddings of the same frames point the same way.
    video = find_videos([SAMPLE_VIDEOS / "episode_01.mp4"])[0][0]
    pixels = [frame.pixels for frame in sample_video(video, 2)]
    cosines = np.sum(fp32.embed_images(pixels) * bf16.embed_images(pixels), axis=1)
    assert cosines.min() >= 0.999

    # Every annotated caption, and sampled frames as image queries: the same best clip, and
    # the top three scores the same up to rounding (near ties further down may swap).
    captions = [scene["caption"] for entry in annotations["videos"] for scene in entry["scenes"]]
    queries = [("text", caption, caption) for caption in captions]
    queries += [("image", f"episode_01 at {2 * i} s", pixels[i]) for i in range(0, len(pixels), 3)]
    for kind, label, query in queries:
        clips = {}
        for name, encoder, store in [("fp32", fp32, store32), ("bf16", bf16, store16)]:
            vector = query_vector(encoder, Query.parse([query])) if kind == "text" else encoder.embed_images([query])[0]
            clips[name] = search(store, vector, k=5)
        best32, best16 = clips["fp32"][0], clips["bf16"][0]
        # The same scene: an edge may move by a sample whose score sits at the clip-split threshold.
        assert best16.episode == best32.episode and best16.start < best32.end and best32.start < best16.end, label
        scores32, scores16 = ([clip.score for clip in clips[name][:3]] for name in ("fp32", "bf16"))
        assert np.abs(np.subtract(scores16, scores32)).max() < BF16_SCORE_TOLERANCE, label
        assert scores32[0] - scores32[1] > 2 * BF16_SCORE_TOLERANCE, label  # the margin the docstring counts on


def test_raw_frames_are_preprocessed_in_bounded_groups_with_the_same_embeddings(tmp_path, tiny_model, monkeypatch):
    """The GPU path (raw RGB frames preprocessed next to the model) on this CPU:
    a batch never holds more than about RAW_BYTES_PER_PREPROCESS of raw frames,
    and the embeddings equal those of the CPU path."""
    from scenegrep.pipeline import indexer

    _, cpu_path, _ = build_index(tmp_path / "cpu", tiny_model)
    import av

    with av.open(str(SAMPLE_VIDEOS / "episode_01.mp4")) as container:
        stream = container.streams.video[0]
        frame_bytes = stream.width * stream.height * 3  # all three sample videos share the size
    monkeypatch.setattr(indexer, "RAW_BYTES_PER_PREPROCESS", 3 * frame_bytes)
    monkeypatch.setattr(ClipEncoder, "preprocess_in_loader", property(lambda self: False))
    groups = []
    real_preprocess = ClipEncoder.preprocess

    def preprocess(self, images):
        groups.append(sum(image.nbytes for image in images))
        return real_preprocess(self, images)

    monkeypatch.setattr(ClipEncoder, "preprocess", preprocess)
    _, raw_path, results = build_index(tmp_path / "raw", tiny_model)
    assert [r.status for r in results] == ["indexed"] * 3
    assert groups and max(groups) <= 3 * frame_bytes and len(groups) > len(results)

    def vectors(store):
        found = store.frames.get(include=["embeddings"])
        return dict(zip(found["ids"], np.asarray(found["embeddings"])))

    expected, got = vectors(cpu_path), vectors(raw_path)
    assert got.keys() == expected.keys()
    assert max(np.abs(got[key] - expected[key]).max() for key in expected) < 1e-5


def test_int8_on_a_cpu_keeps_the_sample_evaluation_unchanged(tmp_path, run_cli):
    """--precision int8 (the image tower quantised): the sample annotations score exactly as in fp32."""
    model = str(SAMPLE_VIDEOS / "mini_clip")
    reports = {}
    for precision in ("fp32", "int8"):
        db = str(tmp_path / precision)
        indexed = run_cli("index", str(SAMPLE_VIDEOS), "--model", model, "--db", db, "--precision", precision, "--json")
        assert indexed.exit_code == 0, indexed.stderr
        assert json.loads(indexed.stdout)["precision"] == precision
        evaluated = run_cli("eval", "videos", str(SAMPLE_VIDEOS / "annotations.json"), "--model", model, "--db", db,
                            "--json")
        assert evaluated.exit_code == 0, evaluated.stderr
        reports[precision] = json.loads(evaluated.stdout)
    assert reports["int8"] == reports["fp32"]
    assert reports["fp32"]["recall_at_1"] == 1.0  # a model whose answers mean something: a real comparison


def test_int8_is_refused_on_a_gpu_with_one_line():
    from scenegrep.pipeline.encode import pick_precision
    from scenegrep.pipeline.errors import ScenegrepError

    with pytest.raises(ScenegrepError, match="int8 is for CPUs"):
        pick_precision("int8", "cuda")


def test_vectors_waited_for_in_the_writer_thread_as_on_a_gpu_give_the_same_index(tmp_path, tiny_model, monkeypatch):
    """On CUDA encoded batches are copied back in the writer thread (so batches overlap); forced here on a CPU."""
    encoder, direct_store, direct = build_index(tmp_path / "direct", tiny_model)
    monkeypatch.setattr(ClipEncoder, "embeds_asynchronously", property(lambda self: True))
    _, store, deferred = build_index(tmp_path / "deferred", tiny_model)
    assert [(r.status, r.frames) for r in deferred] == [(r.status, r.frames) for r in direct]
    assert store.frame_count() == sum(r.frames for r in direct)
    vector = query_vector(encoder, Query.parse(["a red circle"]))
    found = [[(c.episode, c.start, round(c.score, 6)) for c in search(s, vector, k=5)] for s in (direct_store, store)]
    assert found[0] == found[1] and found[0]
