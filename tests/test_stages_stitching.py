"""The stitching stage end to end on tiny stand-in encoders: outputs, consistency, determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from latentgeo.stages import stitching as stitching_stage
from latentgeo.config.schema import load_params, validate_params
from latentgeo.errors import LatentgeoError
from latentgeo.io import write_jsonl
from latentgeo.stages.stitching import load_corpus_texts, load_task_texts, run_stitching_stage
from latentgeo.translation.stitch import stitch
from latentgeo.translation.methods import METHOD_FITS, TRANSLATION_METHODS

N_TEXTS = 60
WORDS = {0: "market shares profit bank", 1: "film music star award", 2: "match goal team coach"}


@pytest.fixture
def tasks_dir(tmp_path):
    """A tiny BBC-topic layout: train.jsonl then validation.jsonl with text and label."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(N_TEXTS + 10):
        label = int(rng.integers(0, 3))
        words = rng.choice(WORDS[label].split() + "the a of and in".split(), size=8)
        rows.append({"text": " ".join(words) + f" item{i}", "label": label})
    folder = tmp_path / "tasks" / "bbc-topic"
    write_jsonl(folder / "train.jsonl", rows[:40])
    write_jsonl(folder / "validation.jsonl", rows[40:])
    return tmp_path / "tasks"


N_CORPUS = 40


@pytest.fixture
def corpus_file(tmp_path):
    """Unlabelled sentences in the corpus layout (JSON Lines with id, source, text)."""
    rng = np.random.default_rng(1)
    vocabulary = " ".join(WORDS.values()).split() + "the a of and in river city".split()
    rows = [{"id": f"s{i}", "source": "test", "text": " ".join(rng.choice(vocabulary, size=6)) + f" line{i}"}
            for i in range(N_CORPUS + 5)]
    path = tmp_path / "corpus" / "sequences.jsonl"
    write_jsonl(path, rows)
    return path


def fake_sentence_embeddings(name, texts, **_):
    """Deterministic bag-of-words encoders of different widths, one random word table each."""
    dim = {"minilm-l6": 12, "wordllama": 8, "spacy-md": 10}[name]
    rng = np.random.default_rng(dim)
    table = {}
    out = np.zeros((len(texts), dim), np.float32)
    for i, text in enumerate(texts):
        for w in text.split():
            if w not in table:
                table[w] = rng.normal(size=dim)
            out[i] += np.tanh(table[w]) if name == "spacy-md" else table[w]
    return out / 8


@pytest.fixture
def params():
    base = load_params("profiles/smoke.yaml")
    stitching = base.stitching.model_copy(update={
        "encoders": ["minilm-l6", "wordllama", "spacy-md"],
        "methods": ["ortho", "affine", "affine-ridge"],  # the MLP is covered in test_translation_translate
        "n_sentences": N_TEXTS, "anchors": 30, "anchor_sweep": [15, 30],
        "corpus_sentences": N_CORPUS,
    })
    return base.model_copy(update={"stitching": stitching})


def test_load_task_texts_reads_train_then_validation(tasks_dir):
    texts, labels = load_task_texts(tasks_dir, 45)
    assert len(texts) == 45 and texts[40].endswith("item40") and labels.shape == (45,)
    with pytest.raises(LatentgeoError, match="asks for 100"):
        load_task_texts(tasks_dir, 100)
    with pytest.raises(LatentgeoError, match="not found"):
        load_task_texts(tasks_dir / "nowhere", 10)


def test_load_corpus_texts_takes_the_first_sentences(corpus_file, tmp_path):
    texts = load_corpus_texts(corpus_file, 10)
    assert len(texts) == 10 and texts[0].endswith("line0") and texts[9].endswith("line9")
    with pytest.raises(LatentgeoError, match="corpus_sentences asks for 99"):
        load_corpus_texts(corpus_file, 99)
    with pytest.raises(LatentgeoError, match="not found"):
        load_corpus_texts(tmp_path / "none.jsonl", 3)
    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [{"text": "fine"}, {"text": "  "}])
    with pytest.raises(LatentgeoError, match="sequence 2 is blank"):
        load_corpus_texts(bad, 2)


@pytest.mark.slow  # runs the stitching stage twice
def test_stage_outputs_are_consistent_and_deterministic(tasks_dir, corpus_file, params, tmp_path, monkeypatch):
    monkeypatch.setattr(stitching_stage, "sentence_embeddings", fake_sentence_embeddings)
    runs = [tmp_path / "a", tmp_path / "b"]
    for run in runs:
        result = run_stitching_stage(
            params, tasks_dir, run / "out", run / "fig", corpus_file, progress=False
        )

    out = runs[0] / "out"
    grid = pd.read_csv(out / "grid.csv")
    assert len(grid) == 3 * 2 * 3 * 2  # ordered pairs × methods × pre-processing
    assert set(grid["source"]) == {"minilm-l6", "wordllama", "spacy-md"}
    # a row of the grid is exactly what `stitch` gives on the saved embeddings
    src, tgt = np.load(out / "embeddings" / "wordllama.npy"), np.load(out / "embeddings" / "spacy-md.npy")
    labels = np.load(out / "labels.npy")
    want, _ = stitch(src, tgt, 30, "affine", "l2", labels, 0)
    row = grid[(grid.source == "wordllama") & (grid.target == "spacy-md") & (grid.method == "affine") & (grid.preprocess == "l2")]
    assert row["stitched_accuracy"].item() == pytest.approx(want["stitched_accuracy"])
    assert row["r2"].item() == pytest.approx(want["r2"])

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pairs"]["wordllama"]["spacy-md"]["affine"]["l2"]["r2"] == pytest.approx(want["r2"])
    assert set(metrics["summary"]) == {"ortho", "affine", "affine-ridge"}
    # every table says how each method is fitted; only the ridge rows hold a chosen λ
    assert metrics["methods"] == {m: METHOD_FITS[m] for m in ("ortho", "affine", "affine-ridge")}
    assert (grid["fitted_by"] == grid["method"].map(METHOD_FITS)).all()
    ridge_rows = grid["method"] == "affine-ridge"
    assert (grid.loc[ridge_rows, "ridge_lambda"] > 0).all() and grid.loc[~ridge_rows, "ridge_lambda"].isna().all()
    want_ridge, _ = stitch(src, tgt, 30, "affine-ridge", "l2", labels, 0)
    got_ridge = metrics["pairs"]["wordllama"]["spacy-md"]["affine-ridge"]["l2"]
    assert got_ridge["ridge_lambda"] == pytest.approx(want_ridge["ridge_lambda"])
    assert not any(k.startswith("ridge_") for k in metrics["pairs"]["wordllama"]["spacy-md"]["affine"]["l2"])
    assert "fitted_by" not in got_ridge  # once, in metrics["methods"], not in every record
    assert list(result.summary["fitted_by"]) == [METHOD_FITS[m] for m in result.summary["method"]]
    assert metrics["dims"] == {"minilm-l6": 12, "wordllama": 8, "spacy-md": 10}
    sweep = pd.read_csv(out / "sweep.csv")
    assert sorted(sweep["n_anchors"].unique()) == [15, 30] and (sweep["n_eval"] == N_TEXTS - 30).all()
    assert len(pd.read_csv(out / "similarity.csv")) == 3
    assert set(result.figures) == {
        "accuracy", "relative_mse", "anchor_sweep", "cka_vs_r2", "corpus_relative_mse"
    }

    # The corpus sentences: no labels, so reconstruction and retrieval only, again equal to
    # `stitch` on the saved embeddings.
    corpus = pd.read_csv(out / "corpus" / "grid.csv")
    assert len(corpus) == 3 * 2 * 3 * 2 and "stitched_accuracy" not in corpus.columns
    assert (corpus["n_eval"] == N_CORPUS - 30).all()
    src = np.load(out / "corpus" / "embeddings" / "minilm-l6.npy")
    tgt = np.load(out / "corpus" / "embeddings" / "wordllama.npy")
    assert src.shape == (N_CORPUS, 12) and tgt.shape == (N_CORPUS, 8)
    want, _ = stitch(src, tgt, 30, "ortho", "standard", None, 0)
    row = corpus[(corpus.source == "minilm-l6") & (corpus.target == "wordllama")
                 & (corpus.method == "ortho") & (corpus.preprocess == "standard")]
    assert row["mse_rel_mean"].item() == pytest.approx(want["mse_rel_mean"])
    assert metrics["corpus"]["n_sentences"] == N_CORPUS
    assert metrics["corpus"]["pairs"]["minilm-l6"]["wordllama"]["ortho"]["standard"]["top1"] == pytest.approx(want["top1"])
    assert set(metrics["corpus"]["summary"]["ortho"]["standard"]) == {"r2", "mse_rel_mean", "cosine", "top1"}

    # same inputs, same bytes: metrics, tables and figures (seeded bands, no PNG metadata)
    for path in sorted(p for p in runs[0].rglob("*") if p.is_file()):
        twin = runs[1] / path.relative_to(runs[0])
        assert path.read_bytes() == twin.read_bytes(), path.name


def test_stage_refuses_too_few_texts(tasks_dir, corpus_file, params, tmp_path):
    small = params.model_copy(update={"stitching": params.stitching.model_copy(update={"n_sentences": 500})})
    with pytest.raises(LatentgeoError, match="n_sentences asks for 500"):
        run_stitching_stage(small, tasks_dir, tmp_path / "out", tmp_path / "fig",
                            corpus_file, progress=False)
    many = params.model_copy(update={"stitching": params.stitching.model_copy(update={"corpus_sentences": 500})})
    with pytest.raises(LatentgeoError, match="corpus_sentences asks for 500"):
        run_stitching_stage(many, tasks_dir, tmp_path / "out", tmp_path / "fig",
                            corpus_file, progress=False)
    with pytest.raises(LatentgeoError, match="sequences file not found"):
        run_stitching_stage(params, tasks_dir, tmp_path / "out", tmp_path / "fig",
                            tmp_path / "missing.jsonl", progress=False)
    assert not (tmp_path / "out").exists()



# ----------------------------------------------------------------- the profile's stitching section


def _stitching_raw(**changes) -> dict:
    import yaml

    raw = yaml.safe_load(open("params.yaml", encoding="utf-8"))
    raw["stitching"].update(changes)
    return raw


@pytest.mark.parametrize("change,fragment", [
    ({"methods": ["ortho", "affine-ridge", "ortho"]}, "stitching.methods"),
    ({"encoders": ["minilm-l6", "wordllama", "minilm-l6"]}, "stitching.encoders"),
    ({"preprocess": ["l2", "l2"]}, "stitching.preprocess"),
    ({"anchor_sweep": [25, 50, 25]}, "stitching.anchor_sweep"),
    ({"methods": ["affine-ridge"], "anchor_sweep": [4, 500]}, "too few"),
    ({"methods": ["mlp"], "anchor_sweep": [8, 500]}, "'mlp': 10"),
    ({"methods": ["ridge"]}, "stitching.methods.0"),
])
def test_schema_refuses_what_would_fail_mid_stage(change, fragment):
    with pytest.raises(LatentgeoError, match="invalid parameters") as err:
        validate_params(_stitching_raw(**change))
    assert fragment in str(err.value)


def test_every_method_and_profile_passes_the_schema():
    validate_params(_stitching_raw(methods=list(TRANSLATION_METHODS)))
    for path in ("params.yaml", "profiles/smoke.yaml", "profiles/paper.yaml"):
        cfg = load_params(path).stitching
        assert set(cfg.methods) <= set(TRANSLATION_METHODS)


def test_single_label_anchors_are_refused_before_any_embedding(tasks_dir, corpus_file, params, tmp_path, monkeypatch):
    def no_embedding(*_, **__):
        raise AssertionError("embedded before the labels were checked")

    monkeypatch.setattr(stitching_stage, "sentence_embeddings", no_embedding)
    texts, labels = load_task_texts(tasks_dir, N_TEXTS)
    from latentgeo.stages.stitching import run_stitching_study

    one_label = np.where(np.arange(N_TEXTS) < 15, 0, labels)  # the sweep's first 15 anchors: one class
    with pytest.raises(LatentgeoError, match="first 15 texts"):
        run_stitching_study(params, texts, one_label, tmp_path / "out", tmp_path / "fig",
                            load_corpus_texts(corpus_file, N_CORPUS), progress=False)
    assert not (tmp_path / "out").exists()
