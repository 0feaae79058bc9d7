"""A search process keeps the registry in memory and still sees every video another process indexes or prunes."""

from __future__ import annotations

import os

from conftest import write_video

from scenegrep.pipeline import registry
from scenegrep.pipeline.registry import Registry


def test_the_kept_registry_sees_videos_indexed_and_pruned_by_other_processes(backend, tmp_path, tiny_model, run_cli,
                                                                              run_subprocess, sample_copy, monkeypatch):
    for name in ("episode_01.mp4", "episode_03.mp4"):
        os.remove(sample_copy / name)
    assert run_cli("index", sample_copy, "--model", tiny_model, *backend.args).exit_code == 0
    store = backend.store()  # this process: a long-lived reader, as `scenegrep serve` is
    reads = []
    real_all = Registry.all
    monkeypatch.setattr(Registry, "all", lambda self: reads.append(1) or real_all(self))

    def paths():
        return [os.path.basename(entry.path) for entry in store.indexed_videos()]

    assert paths() == ["episode_02.mp4"]
    assert paths() == ["episode_02.mp4"] and len(reads) == 1  # kept: no second read of the entries

    def in_another_process(*args):
        process = run_subprocess(*args, *backend.args)
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err

    write_video(sample_copy / "new.mp4", range(50), rate=25)
    in_another_process("index", sample_copy, "--model", tiny_model)
    assert paths() == ["episode_02.mp4", "new.mp4"] and len(reads) == 2

    os.remove(sample_copy / "episode_02.mp4")
    in_another_process("prune", sample_copy)
    assert paths() == ["new.mp4"] and len(reads) == 3
    assert paths() == ["new.mp4"] and len(reads) == 3


def test_a_registry_written_before_versions_is_read_every_time(tmp_path):
    """An index no version-writing `index` has touched yet has no token: never kept, always read."""
    import chromadb

    client = chromadb.PersistentClient(str(tmp_path / "db"))
    collection = client.get_or_create_collection("reg", embedding_function=None)
    collection.upsert(ids=["a"], embeddings=[[1.0]], metadatas=[{"episode": "a", "path": "/a.mp4", "frames": 1}])
    cache = registry.RegistryCache()
    assert [entry.video_id for entry in cache.entries(client, "here", "reg")] == ["a"]
    collection.upsert(ids=["b"], embeddings=[[1.0]], metadatas=[{"episode": "b", "path": "/b.mp4", "frames": 1}])
    assert [entry.video_id for entry in cache.entries(client, "here", "reg")] == ["a", "b"]
    assert cache.entries(client, "here", "missing") == []
