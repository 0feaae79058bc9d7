"""`scenegrep doctor`: device, a model that tells inputs apart, a consistent index."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import SAMPLE_VIDEOS, Backend


def broken_copy(tiny_model: str, folder, value: float) -> str:
    """The tiny model with both projection matrices filled with `value`: every
    input then maps to one direction (or, for 0, to a zero vector)."""
    import torch
    from transformers import CLIPModel

    shutil.copytree(tiny_model, folder)
    model = CLIPModel.from_pretrained(tiny_model)
    with torch.no_grad():
        model.visual_projection.weight.fill_(value)
        model.text_projection.weight.fill_(value)
    model.save_pretrained(str(folder))
    return str(folder)


def checks_of(result) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for check in json.loads(result.stdout)["checks"]:
        found.setdefault(check["name"], []).append(check)
    return found


DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""How the device check names each --precision (torch's dtype names)."""

AUTO_CHOICES = {("cuda", "float16"), ("mps", "float32"), ("cpu", "float32"), ("cpu", "bfloat16")}
"""Every (device, dtype) `--device auto --precision auto` may pick, machine by machine."""


def reported_device(result) -> tuple[str, str]:
    """(device kind, dtype) of the doctor's device check, e.g. ("cuda", "float16") from "cuda:0, float16, …"."""
    device, dtype = checks_of(result)["device"][0]["detail"].split(", ")[:2]
    return device.split(":")[0], dtype


def test_a_healthy_setup_passes_and_reports_the_device(shared_on, run_cli):
    """The sample videos indexed by the CLI (the session's shared index; doctor leaves an index as it found it)."""
    from scenegrep.pipeline.encode import pick_device, pick_precision

    result = run_cli("doctor", "--json", *shared_on.args)
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["ok"]
    checks = checks_of(result)
    # What this machine's auto choice is (CUDA → fp16; a CPU with fast bf16 → bf16; …), as the weights really are.
    chosen = pick_device("auto")
    assert reported_device(result) in AUTO_CHOICES
    assert reported_device(result) == (chosen, DTYPES[pick_precision("auto", chosen)])
    assert checks["device"][0]["status"] == "ok"
    assert checks["text embeddings"][0]["status"] == "ok" and checks["image embeddings"][0]["status"] == "ok"
    (index,) = [c for name, cs in checks.items() if name.startswith("index") for c in cs]
    assert index["status"] == "ok" and "3 videos" in index["detail"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_an_explicit_device_and_precision_are_the_ones_reported(precision, tiny_model, tmp_path, run_cli):
    import torch

    result = run_cli("doctor", "--model", tiny_model, "--db", tmp_path / "db", "--device", "cpu",
                     "--precision", precision, "--json")
    assert result.exit_code == 0, result.stdout
    assert reported_device(result) == ("cpu", DTYPES[precision])
    # Asked for the CPU where a GPU is visible: reported, with a pointer to --device.
    assert checks_of(result)["device"][0]["status"] == ("warning" if torch.cuda.is_available() else "ok")


def test_a_precision_the_device_cannot_run_is_a_problem(tiny_model, tmp_path, run_cli):
    result = run_cli("doctor", "--model", tiny_model, "--db", tmp_path / "db", "--device", "cpu", "--precision", "fp16")
    assert result.exit_code == 1
    assert "PROBLEM  model: --precision fp16 is for GPUs" in result.stdout


@pytest.mark.parametrize("value, message", [(0.05, "every input maps to the same vector"), (0.0, "zero vectors")])
def test_a_collapsed_model_is_a_problem(value, message, tiny_model, tmp_path, run_cli):
    broken = broken_copy(tiny_model, tmp_path / "broken", value)
    result = run_cli("doctor", "--model", broken, "--db", tmp_path / "db")
    assert result.exit_code == 1
    problems = [line for line in result.stdout.splitlines() if line.startswith("PROBLEM")]
    assert len(problems) == 2 and all(message in line for line in problems)  # text and image side
    assert "2 problem(s) found" in result.stdout


def test_orphan_frames_and_wrong_counts_are_problems_until_repaired(tmp_path, tiny_model, run_cli):
    import numpy as np

    from scenegrep.pipeline.files import video_for

    backend = Backend("embedded", db=str(tmp_path / "db"))
    assert run_cli("index", SAMPLE_VIDEOS, "--model", tiny_model, *backend.args).exit_code == 0
    store = backend.store()
    # What a killed run leaves: frames of a video that never made it into the registry…
    store.add_frames(video_for(tmp_path / "half_done.mp4"), [0.0, 2.0], np.eye(2, store.info.dim, dtype=np.float32))
    # …and a registered video missing a frame.
    victim = video_for(SAMPLE_VIDEOS / "episode_01.mp4")
    store.frames.delete(ids=[f"{victim.video_id}:0"])

    result = run_cli("doctor", "--json", *backend.args)
    assert result.exit_code == 1
    problems = [c["detail"] for c in json.loads(result.stdout)["checks"] if c["status"] == "problem"]
    assert any("2 orphan frame(s) of 1 unregistered video(s)" in p for p in problems)
    assert any("episode_01.mp4: registry says" in p for p in problems)

    repaired = run_cli("prune", *backend.args)  # --repair is the default on a --db folder
    assert repaired.exit_code == 0, repaired.stderr
    assert "1 incomplete video(s) and 2 orphan frame(s)" in repaired.stdout
    again = run_cli("index", SAMPLE_VIDEOS, "--model", tiny_model, "--json", *backend.args)
    assert [v["status"] for v in json.loads(again.stdout)["videos"]] == ["indexed", "unchanged", "unchanged"]
    assert run_cli("doctor", *backend.args).exit_code == 0


def test_a_running_index_turns_mismatches_into_warnings(tmp_path, tiny_model, run_cli):
    from scenegrep.pipeline.lock import IndexLock

    db = tmp_path / "db"
    assert run_cli("index", SAMPLE_VIDEOS / "episode_01.mp4", "--model", tiny_model, "--db", db).exit_code == 0
    store = Backend("embedded", db=str(db)).store()
    store.registry.remove(store.indexed_videos()[0].video_id)  # as mid-video: frames, no registry entry
    with IndexLock(str(db)):  # as a running `scenegrep index` holds it
        busy = run_cli("doctor", "--db", db, "--model", tiny_model, "--json")
    assert busy.exit_code == 0, busy.stdout
    statuses = {c["status"] for c in json.loads(busy.stdout)["checks"] if c["name"].startswith("index")}
    assert "problem" not in statuses and "warning" in statuses
    idle = run_cli("doctor", "--db", db, "--model", tiny_model, "--json")
    assert idle.exit_code == 1  # the same orphans with nobody writing: a problem
