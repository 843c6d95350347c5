"""Batched token-vector extraction against the paper's one-sequence-at-a-time loop.

Tiny random BERT and RoBERTa models (max_position_embeddings 32 / 34, so the truncation limit is
29 / 31 tokens) with minilm-l6's tokenizer keep this fast while exercising truncation.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from latentgeo.cli import main
from latentgeo.geometry.embed import cpu_threads, embed_texts, pick_device, plan_batches
from latentgeo.stages.embed import embed_file
from latentgeo.errors import LatentgeoError
from latentgeo.models.registry import load_tokenizer

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)

WORDS = "the market rose sharply after the bank said rates would stay low for another year".split()


def _texts(n: int = 23, seed: int = 0) -> list[str]:
    """Mixed lengths, from 1 word to well past a tiny model's limit."""
    rng = np.random.default_rng(seed)
    lengths = [1, 2, 60, 3, 40, 28, 27, 26, 5] + list(rng.integers(1, 45, size=n - 9))
    return [" ".join(rng.choice(WORDS, size=k)) for k in lengths]


def _save(folder, kind: str):
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    torch.manual_seed(1)
    if kind == "bert":
        model = BertModel(BertConfig(vocab_size=30522, max_position_embeddings=32, **TINY))
    else:  # RoBERTa counts positions from padding_idx + 1: 34 positions hold 31 tokens + margin
        model = RobertaModel(RobertaConfig(vocab_size=30522, max_position_embeddings=34, pad_token_id=0, **TINY))
    model.save_pretrained(folder)
    load_tokenizer("minilm-l6").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["bert", "roberta"])
def tiny(request, tmp_path_factory):
    return _save(tmp_path_factory.mktemp("emb") / f"tiny-{request.param}", request.param)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return _save(tmp_path_factory.mktemp("emb") / "tiny-bert", "bert")


def _one_at_a_time(folder, texts, layer=-1):
    """The paper's loop: each text alone, no padding, truncated to max_position_embeddings − 3."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    limit = model.config.max_position_embeddings - 3
    out = []
    with torch.no_grad():
        for text in texts:
            enc = tok(text, truncation=True, max_length=limit, return_tensors="pt")
            states = model(**enc, output_hidden_states=True).hidden_states[layer]
            out.append(states[0].double().numpy())
    return out, limit


@pytest.mark.parametrize("budget", [(4, 64), (32, 8192)])
def test_batched_equals_one_at_a_time(tiny, budget):
    texts = _texts()
    ref, limit = _one_at_a_time(tiny, texts)
    res = embed_texts(tiny, texts, batch_size=budget[0], max_tokens_per_batch=budget[1], progress=False)
    assert res.vectors.dtype == np.float32 and res.vectors.ndim == 2
    assert res.offsets.dtype == np.int64 and len(res.offsets) == len(texts) + 1
    assert res.truncation_limit == limit
    for i, rows in enumerate(ref):
        got = res.rows_of(i)
        assert got.shape == rows.shape
        assert np.abs(got - rows).max() <= 1e-4
    assert res.n_tokens == sum(len(r) for r in ref) == len(res.vectors)


def test_truncation_at_limit(tiny_bert):
    tok = load_tokenizer("minilm-l6")
    texts = ["word " * 100, "word " * 26, "word " * 27, "word " * 28]
    res = embed_texts(tiny_bert, texts, progress=False)
    assert res.truncation_limit == 29
    # 26 words + CLS + SEP = 28; 27 words fit exactly; more are cut, SEP kept at the end.
    assert res.lengths.tolist() == [29, 28, 29, 29]
    assert res.n_at_limit == 3
    assert tok("word " * 100, truncation=True, max_length=29)["input_ids"][-1] == tok.sep_token_id


@pytest.mark.slow  # runs the encoder once per layer
def test_layers(tiny_bert):
    texts = _texts(12)
    for layer in (0, 1, -2):
        ref, _ = _one_at_a_time(tiny_bert, texts, layer=layer)
        res = embed_texts(tiny_bert, texts, layer=layer, batch_size=5, progress=False)
        assert np.abs(res.vectors - np.concatenate(ref)).max() <= 1e-4
    with pytest.raises(LatentgeoError, match="layer = 3"):
        embed_texts(tiny_bert, texts, layer=3, progress=False)


def test_mean_pooling(tiny):
    texts = _texts(15)
    ref, _ = _one_at_a_time(tiny, texts)
    res = embed_texts(tiny, texts, pooling="mean", batch_size=4, progress=False)
    assert res.vectors.shape == (len(texts), 32)
    assert res.offsets.tolist() == list(range(len(texts) + 1))
    expected = np.stack([r.mean(axis=0) for r in ref])
    assert np.abs(res.vectors - expected).max() <= 1e-4
    assert res.n_tokens == sum(len(r) for r in ref)


@pytest.mark.parametrize("batch_size, budget", [(1, 10), (3, 50), (8, 100), (100, 10_000)])
def test_plan_batches(batch_size, budget):
    lengths = np.random.default_rng(2).integers(2, 40, size=57)
    batches = plan_batches(lengths, batch_size, budget)
    assert sorted(np.concatenate(batches).tolist()) == list(range(57))
    for b in batches:
        assert len(b) <= batch_size
        assert len(b) == 1 or len(b) * lengths[b].max() <= budget
    widths = [lengths[b].max() for b in batches]
    assert widths == sorted(widths, reverse=True)


def test_empty_sequence_is_named(tiny_bert):
    with pytest.raises(LatentgeoError, match=r"sequence 2 \('\\u200b'\)"):
        embed_texts(tiny_bert, ["fine", "also fine", "\u200b"], progress=False)


def test_embed_file_and_sidecar(tiny_bert, tmp_path):
    from latentgeo.io import write_json, write_jsonl

    record = {"model_id": "tiny-bert-a5-s1", "family": "perturbed", "alpha": 5.0}
    write_json(tiny_bert / "latentgeo.json", record)
    try:
        texts = _texts(20)
        seqs = tmp_path / "sequences.jsonl"
        write_jsonl(seqs, [{"text": t, "source": "test"} for t in texts])
        out = tmp_path / "emb" / "X.npy"
        res = embed_file(tiny_bert, seqs, out, n_sequences=17, batch_size=4, progress=False)
    finally:
        (tiny_bert / "latentgeo.json").unlink()
    X = np.load(out)
    side = json.loads((tmp_path / "emb" / "X.json").read_text())
    ref, limit = _one_at_a_time(tiny_bert, texts[:17])
    assert X.dtype == np.float32 and X.shape == (sum(len(r) for r in ref), 32)
    assert side["model"] == record
    assert side["n_sequences"] == 17 and side["n_tokens"] == len(X) == res.n_tokens
    assert side["offsets"][0] == 0 and side["offsets"][-1] == len(X)
    for i, rows in enumerate(ref):
        a, b = side["offsets"][i], side["offsets"][i + 1]
        assert np.abs(X[a:b] - rows).max() <= 1e-4
    assert (side["layer"], side["pooling"], side["truncation_limit"]) == (-1, "none", limit)
    assert side["sequences_sha256"] == hashlib.sha256(seqs.read_bytes()).hexdigest()
    assert side["sequences_file"] == str(seqs)


def test_cli_embed_plain_text(tiny_bert, tmp_path, capsys):
    seqs = tmp_path / "s.txt"
    seqs.write_text("first line\n\nsecond one here\nthird\n")
    out = tmp_path / "X.npy"
    assert main(["embed", "--model", str(tiny_bert), "--sequences", str(seqs), "--out", str(out),
                 "--pooling", "mean", "--quiet"]) == 0
    assert "3 sequences" in capsys.readouterr().out
    assert np.load(out).shape == (3, 32)
    assert json.loads(out.with_suffix(".json").read_text())["model"]["model_id"] == "tiny-bert"


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "sequences file not found"),
        ("empty", "holds no sequences"),
        ("special-only", "sequence 1 ('\\u200b') tokenizes to nothing"),
        ("too-many", "holds only 2 sequences"),
        ("layer", "layer = 7"),
        ("unknown-model", "unknown model 'nope'"),
        ("not-npy", "must end in .npy"),
        ("exists", "already exists"),
    ],
)
def test_cli_embed_bad_inputs(tiny_bert, tmp_path, capsys, case, message):
    seqs = tmp_path / "s.txt"
    seqs.write_text({"empty": "\n\n", "special-only": "ok\n\u200b\n"}.get(case, "one\ntwo\n"))
    if case == "missing":
        seqs.unlink()
    out = tmp_path / ("X.txt" if case == "not-npy" else "X.npy")
    if case == "exists":
        out.write_bytes(b"someone else's")
    args = ["embed", "--model", "nope" if case == "unknown-model" else str(tiny_bert),
            "--sequences", str(seqs), "--out", str(out), "--quiet"]
    args += {"too-many": ["--limit", "5"], "layer": ["--layer", "7"]}.get(case, [])
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    if case == "exists":
        assert out.read_bytes() == b"someone else's"


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), ("", None), ("0", None), ("two", None)])
def test_cpu_threads_follow_omp_num_threads(monkeypatch, value, expected):
    """A parallel runner's worker sets OMP_NUM_THREADS to its share of the cores; embedding must
    not widen torch back to every core (two workers would oversubscribe the machine)."""
    import os

    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert cpu_threads() == (expected or os.cpu_count())
    before = torch.get_num_threads()
    try:
        assert pick_device("cpu") == "cpu"
        assert torch.get_num_threads() == (expected or os.cpu_count())
    finally:
        torch.set_num_threads(before)
