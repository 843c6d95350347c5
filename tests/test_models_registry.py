"""The model registry: packaged, local and hub names; offline hub ids fail fast."""

from __future__ import annotations

import time

import pytest

from latentgeo.models import registry as models
from latentgeo.errors import LatentgeoError, OfflineError


@pytest.mark.slow  # real packaged weights
def test_packaged_minilm_resolves_and_loads():
    ref = models.resolve_model("minilm-l6")
    assert ref.kind == "packaged"
    model = models.load_encoder("minilm-l6")
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    assert not model.training
    tok = models.load_tokenizer("minilm-l6")
    assert tok("hello world")["input_ids"][0] == tok.cls_token_id
    assert tok.convert_ids_to_tokens(tok("hello")["input_ids"])[1] == "hello"  # not [UNK]


def test_local_folder_needs_config_and_safetensors(tmp_path):
    with pytest.raises(LatentgeoError, match="unknown model"):
        models.resolve_model(str(tmp_path / "missing"))
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(LatentgeoError, match="safetensors"):
        models.resolve_model(str(tmp_path))
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")  # never read: safetensors only
    with pytest.raises(LatentgeoError, match="safetensors"):
        models.resolve_model(str(tmp_path))


@pytest.mark.parametrize("name", ["prajjwal1/bert-small", "bert-base-uncased", "roberta-base"])
def test_hub_id_offline_fails_fast(name, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(OfflineError, match="offline mode"):
        models.load_encoder(name)
    assert time.monotonic() - start < 2


def test_hub_id_without_network_fails_fast(monkeypatch):
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    from latentgeo.models import hub

    hub._hub_reachable.cache_clear()
    monkeypatch.setattr(hub, "HUB_HOST", "hub.invalid")  # RFC 2606: never resolves
    start = time.monotonic()
    with pytest.raises(OfflineError, match="cannot be reached"):
        models.resolve_model("prajjwal1/bert-small")
    assert time.monotonic() - start < 5
    hub._hub_reachable.cache_clear()


@pytest.mark.parametrize("name", ["minilm-l7", "bert", ""])
def test_unknown_names_are_refused(name):
    with pytest.raises(LatentgeoError, match="unknown model"):
        models.check_model_name(name)
