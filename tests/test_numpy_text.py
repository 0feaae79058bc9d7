"""The numpy text tower (cold-start path) against transformers' CLIP, token for token and vector for vector."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import SAMPLE_VIDEOS

TEXTS = [
    "a red ball bouncing",
    "A BLUE   Square!!  on\ta green field",
    "café — naïve 東京 🎬",
    "word " * 120,  # longer than 77 tokens: truncated like transformers truncates
    "x",
]


def _transformers_vectors(folder: str, texts) -> tuple[np.ndarray, list[list[int]]]:
    import torch
    from transformers import AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = [tokenizer(text, truncation=True, max_length=77)["input_ids"] for text in texts]
    with torch.inference_mode():
        tokens = tokenizer(list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt")
        out = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    features = (out if hasattr(out, "norm") else out.pooler_output).float()
    return (features / features.norm(dim=-1, keepdim=True)).numpy(), ids


@pytest.mark.parametrize("which", ["tiny", "mini"])
def test_same_tokens_and_vectors_as_transformers(which, tiny_model):
    from scenegrep.pipeline.numpy_text import NumpyTextEncoder

    folder = tiny_model if which == "tiny" else str(SAMPLE_VIDEOS / "mini_clip")
    encoder = NumpyTextEncoder.open(folder)
    assert encoder is not None
    expected, expected_ids = _transformers_vectors(folder, TEXTS)
    assert [encoder.token_ids(text) for text in TEXTS] == expected_ids
    vectors = encoder.embed_texts(TEXTS)
    assert vectors.shape == expected.shape and vectors.dtype == np.float32
    assert np.abs(vectors - expected).max() < 1e-5


@pytest.mark.parametrize("activation", ["gelu", "gelu_pytorch_tanh"])
def test_other_activations_match_transformers(activation, tiny_model, tmp_path):
    from scenegrep.pipeline.numpy_text import NumpyTextEncoder

    folder = shutil.copytree(tiny_model, tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["hidden_act"] = activation
    (folder / "config.json").write_text(json.dumps(config))
    expected, _ = _transformers_vectors(str(folder), TEXTS[:3])
    assert np.abs(NumpyTextEncoder.open(str(folder)).embed_texts(TEXTS[:3]) - expected).max() < 1e-5


def test_models_it_cannot_mirror_fall_back_to_transformers(tiny_model, tmp_path):
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.numpy_text import NumpyTextEncoder

    no_fast_tokenizer = shutil.copytree(tiny_model, tmp_path / "slow")
    os.unlink(no_fast_tokenizer / "tokenizer.json")
    odd_activation = shutil.copytree(tiny_model, tmp_path / "odd")
    config = json.loads((odd_activation / "config.json").read_text())
    config["text_config"]["hidden_act"] = "silu"
    (odd_activation / "config.json").write_text(json.dumps(config))
    for folder in (no_fast_tokenizer, odd_activation):
        assert NumpyTextEncoder.open(str(folder)) is None
        encoder = ClipEncoder(str(folder), device="cpu")
        vectors = encoder.embed_texts(["a red ball"])
        assert encoder.loaded  # the transformers path answered
        assert vectors.shape == (1, encoder.info.dim)
    assert NumpyTextEncoder.open(str(tmp_path / "no such model")) is None


@pytest.mark.parametrize("change", ["no heads", "text_config_dict", "no eos id", "legacy eos id", "heads not dividing width"])
def test_configs_with_missing_or_moved_keys_match_transformers_or_fall_back(change, tmp_path):
    """transformers fills in CLIPTextConfig defaults and prefers text_config_dict: the numpy path
    either reads the config the same way or steps aside; a text search never fails on it."""
    from scenegrep.pipeline.encode import ClipEncoder
    from scenegrep.pipeline.numpy_text import NumpyTextEncoder

    folder = shutil.copytree(SAMPLE_VIDEOS / "mini_clip", tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    text = config["text_config"]
    if change == "no heads":
        del text["num_attention_heads"]
    elif change == "text_config_dict":
        config["text_config_dict"] = {**text, "num_attention_heads": 2}
    elif change == "no eos id":
        del text["eos_token_id"]
    elif change == "legacy eos id":  # openai/clip-vit-base-patch32's config: the end of a text is its highest id
        text["eos_token_id"] = 2
    else:
        text["num_attention_heads"] = 7
    (folder / "config.json").write_text(json.dumps(config))
    try:
        expected, _ = _transformers_vectors(str(folder), TEXTS[:3])
    except Exception:  # transformers refuses the config too: then only "no crash" is asked of us
        expected = None
    encoder = NumpyTextEncoder.open(str(folder))
    if encoder is not None and expected is not None:
        assert np.abs(encoder.embed_texts(TEXTS[:3]) - expected).max() < 1e-5
    if change == "heads not dividing width":
        assert encoder is None
    else:
        assert encoder is not None
    if expected is not None:
        encoder = ClipEncoder(str(folder), device="cpu", precision="fp32")  # as transformers ran: to 1e-5
        assert np.abs(encoder.embed_texts(TEXTS[:3]) - expected).max() < 1e-5


def test_a_text_search_imports_neither_torch_nor_transformers(shared_index, tmp_path):
    """The cold-start promise: a text query runs without the heavy imports."""
    script = (
        "import sys\n"
        "from scenegrep.cli.main import cli\n"
        f"cli(['search', 'a red ball', '--json', '--db', {str(shared_index)!r}], standalone_mode=False)\n"
        "heavy = sorted(name for name in ('torch', 'transformers') if name in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) > 0
    assert "HEAVY []" in done.stderr
