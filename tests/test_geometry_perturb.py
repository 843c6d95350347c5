"""The noise rule, the non-standard builders and the ``latentgeo perturb`` command.

Tiny random BERT/RoBERTa models (built from configs, minilm-l6's tokenizer) keep this fast.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from scipy import stats

from latentgeo.cli import main
from latentgeo.errors import LatentgeoError, OfflineError
from latentgeo.models.registry import load_tokenizer
from latentgeo.geometry.family import HUB_NONSTANDARD
from latentgeo.geometry.perturb import (
    embedding_permutation,
    load_hub_nonstandard,
    paper_shuffle_source_rows,
    perturb_model_,
    recovered_noise,
    relative_changes,
    selected_parameter_names,
    transplant_input_embeddings_,
)
from latentgeo.stages.perturb import build_family_member

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            max_position_embeddings=32)


def _save_tiny(folder, kind: str, vocab_size: int = 30522):
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaModel

    torch.manual_seed(0)
    if kind == "bert":
        model = BertModel(BertConfig(vocab_size=vocab_size, **TINY))
    else:
        cfg = dict(TINY, max_position_embeddings=34)
        model = RobertaModel(RobertaConfig(vocab_size=vocab_size, pad_token_id=0, **cfg))
    model.save_pretrained(folder)
    load_tokenizer("minilm-l6").save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return _save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-bert", "bert")


@pytest.fixture(scope="module")
def tiny_roberta(tmp_path_factory):
    return _save_tiny(tmp_path_factory.mktemp("tiny") / "tiny-roberta", "roberta")


def _params(folder) -> dict[str, torch.Tensor]:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _paper_selection(names) -> set[str]:
    """The paper's rule, written plainly: encoder parameters whose name ends in 'weight'."""
    return {n for n in names if n.startswith("encoder.") and n.endswith("weight")}


@pytest.fixture(scope="module")
def perturbed10(tiny_bert, tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "a10-s3"
    record = build_family_member(tiny_bert, "perturbed", 10.0, 3, "encoder-weights", out)
    return out, record


# ------------------------------------------------------------------------------------ the rule


def test_recovered_noise_is_standard_normal(tiny_bert, perturbed10):
    out, _ = perturbed10
    eps = recovered_noise(tiny_bert, out, 10.0)
    base = _params(tiny_bert)
    assert eps.size == sum(base[n].numel() for n in _paper_selection(base))
    # ~16K draws: mean within 5 standard errors of 0, std within 2 % of 1 (not 0.1: the scale
    # is alpha/100 applied to N(0, 1), not N(0, alpha/100) noise scaled again).
    assert abs(eps.mean()) < 5 / math.sqrt(eps.size)
    assert abs(eps.std() - 1.0) < 0.02
    assert stats.kstest(eps, "norm").pvalue > 1e-3


def test_rule_matches_plain_reference(tiny_bert, perturbed10):
    """W' = (1 − a)·W + a·ε with ε drawn from the seeded generator in sorted-name order."""
    out, _ = perturbed10
    base, new = _params(tiny_bert), _params(out)
    gen = torch.Generator().manual_seed(3)
    for name in sorted(_paper_selection(base)):
        eps = torch.randn(base[name].shape, generator=gen, dtype=torch.float32).double().numpy()
        ref = 0.9 * base[name].double().numpy() + 0.1 * eps
        np.testing.assert_allclose(new[name].double().numpy(), ref, atol=1e-6, rtol=0)


def test_untouched_parameters_identical(tiny_bert, perturbed10):
    out, record = perturbed10
    base, new = _params(tiny_bert), _params(out)
    selected = _paper_selection(base)
    assert any("LayerNorm.weight" in n for n in selected)  # LayerNorm weights are included
    assert record["n_parameters_changed"] == len(selected)
    for name in base:
        if name in selected:
            assert not torch.equal(base[name], new[name]), name
        else:  # biases, embeddings, pooler
            assert torch.equal(base[name], new[name]), name


def test_selection_is_the_papers(tiny_bert, tiny_roberta):
    from transformers import AutoModel

    for folder in (tiny_bert, tiny_roberta):
        model = AutoModel.from_pretrained(folder)
        names = [n for n, _ in model.named_parameters()]
        assert set(selected_parameter_names(model)) == _paper_selection(names)
        everything = {n for n in names if n.endswith("weight")}
        assert set(selected_parameter_names(model, "all-weights")) == everything


def test_alpha_zero_is_bit_identical(tiny_bert, tmp_path):
    record = build_family_member(tiny_bert, "perturbed", 0.0, 1, "encoder-weights", tmp_path / "a0")
    base, new = _params(tiny_bert), _params(tmp_path / "a0")
    assert base.keys() == new.keys()
    assert all(torch.equal(base[n], new[n]) for n in base)
    assert record["family"] == "base" and record["model_id"] == "tiny-bert-a0-s1"


def test_alpha_hundred_is_pure_noise(tiny_bert):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert)
    perturb_model_(model, 100.0, seed=5)
    gen = torch.Generator().manual_seed(5)
    params = dict(model.named_parameters())
    for name in selected_parameter_names(model):
        assert torch.equal(params[name].detach(), torch.randn(params[name].shape, generator=gen))


def test_same_seed_same_bits_other_seed_other_bits(tiny_bert, perturbed10, tmp_path):
    out, _ = perturbed10
    build_family_member(tiny_bert, "perturbed", 10.0, 3, "encoder-weights", tmp_path / "again")
    build_family_member(tiny_bert, "perturbed", 10.0, 4, "encoder-weights", tmp_path / "other")
    first, again, other = _params(out), _params(tmp_path / "again"), _params(tmp_path / "other")
    selected = _paper_selection(first)
    assert all(torch.equal(first[n], again[n]) for n in first)
    assert all(not torch.equal(first[n], other[n]) for n in selected)


def test_all_weights_scope_reaches_embeddings(tiny_bert, tmp_path):
    record = build_family_member(tiny_bert, "perturbed", 1.0, 1, "all-weights", tmp_path / "all")
    base, new = _params(tiny_bert), _params(tmp_path / "all")
    assert not torch.equal(base["embeddings.word_embeddings.weight"], new["embeddings.word_embeddings.weight"])
    assert not torch.equal(base["pooler.dense.weight"], new["pooler.dense.weight"])
    assert all(torch.equal(base[n], new[n]) for n in base if n.endswith("bias"))
    assert record["model_id"] == "tiny-bert-a1-s1-allw" and record["scope"] == "all-weights"


def test_output_folder_loads_and_carries_record(tiny_roberta, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    out = tmp_path / "rob"
    build_family_member(tiny_roberta, "perturbed", 0.25, 2, "encoder-weights", out)
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert AutoModel.from_pretrained(out).config.model_type == "roberta"
    assert AutoTokenizer.from_pretrained(out)("hello")["input_ids"][0] == 101
    record = json.loads((out / "latentgeo.json").read_text())
    assert set(record) >= {"model_id", "base_model", "family", "kind", "alpha", "seed", "scope",
                           "rule", "latentgeo_version"}
    assert record["model_id"] == "tiny-roberta-a0.25-s2"
    assert (record["family"], record["kind"], record["alpha"]) == ("perturbed", "perturbed", 0.25)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_perturbing_a_folder_with_a_record_names_it_by_its_id(perturbed10, tmp_path):
    out, _ = perturbed10
    record = build_family_member(out, "perturbed", 5, 1, "encoder-weights", tmp_path / "twice")
    assert record["base_model"] == "tiny-bert-a10-s3"
    assert record["model_id"] == "tiny-bert-a10-s3-a5-s1"


def test_relative_changes_table(tiny_bert, perturbed10):
    out, _ = perturbed10
    table = relative_changes(tiny_bert, out)
    changed = set(table.loc[table["changed"], "parameter"])
    assert changed == _paper_selection(table["parameter"])
    assert (table.loc[~table["changed"], "relative_change"] == 0).all()


# -------------------------------------------------------------------------- non-standard models


def test_untrained_is_seeded_random_init(tiny_bert, tmp_path):
    rec = build_family_member(tiny_bert, "untrained", None, 7, "encoder-weights", tmp_path / "u7")
    build_family_member(tiny_bert, "untrained", 0, 7, "encoder-weights", tmp_path / "u7b")
    build_family_member(tiny_bert, "untrained", None, 8, "encoder-weights", tmp_path / "u8")
    base, u7, u7b, u8 = (_params(p) for p in (tiny_bert, tmp_path / "u7", tmp_path / "u7b", tmp_path / "u8"))
    assert u7.keys() == base.keys()
    assert all(u7[n].shape == base[n].shape for n in base)
    assert all(torch.equal(u7[n], u7b[n]) for n in u7)
    q = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(u7[q], base[q]) and not torch.equal(u7[q], u8[q])
    # transformers' BERT init: N(0, initializer_range = 0.02)
    assert abs(u7[q].std().item() - 0.02) < 0.004
    assert rec["model_id"] == "tiny-bert-untrained-s7"
    assert (rec["family"], rec["kind"], rec["alpha"], rec["scope"]) == ("non-standard", "untrained", None, None)


def test_shuffled_embeddings_permute_rows(tiny_bert, tmp_path):
    rec = build_family_member(tiny_bert, "shuffled-embeddings", 0.0, 4, "encoder-weights", tmp_path / "sh")
    base, new = _params(tiny_bert), _params(tmp_path / "sh")
    key = "embeddings.word_embeddings.weight"
    old_rows, new_rows = base[key].numpy(), new[key].numpy()
    # Find each new row among the old ones (plain lookup), independent of the implementation.
    where = {row.tobytes(): i for i, row in enumerate(old_rows)}
    perm = np.array([where[row.tobytes()] for row in new_rows])
    assert sorted(perm) == list(range(len(old_rows)))
    assert (perm != np.arange(len(perm))).mean() > 0.99
    np.testing.assert_array_equal(perm, embedding_permutation(len(old_rows), 4).numpy())
    assert all(torch.equal(base[n], new[n]) for n in base if n != key)
    assert rec["model_id"] == "tiny-bert-shuffled-embeddings-s4" and rec["family"] == "non-standard"


def _rows_as_source_indices(old_rows: np.ndarray, new_rows: np.ndarray) -> np.ndarray:
    """For each new row, the index of the (unique) old row equal to it (plain lookup)."""
    where = {row.tobytes(): i for i, row in enumerate(old_rows)}
    assert len(where) == len(old_rows), "reference rows must be distinct"
    return np.array([where[row.tobytes()] for row in new_rows])


@pytest.mark.parametrize("n_rows, seed", [(2, 0), (7, 1), (50, 3), (1000, 11)])
def test_paper_shuffle_equals_random_shuffle_on_a_2d_array(n_rows, seed):
    # Reference: the paper's own call, random.shuffle on a 2-D NumPy array, with a seeded
    # random.Random (the paper used the unseeded module-level generator).
    matrix = np.arange(n_rows * 3, dtype=np.float64).reshape(n_rows, 3)
    reference = matrix.copy()
    random.Random(seed).shuffle(reference)
    src = paper_shuffle_source_rows(n_rows, seed)
    np.testing.assert_array_equal(matrix[src], reference)
    np.testing.assert_array_equal(_rows_as_source_indices(matrix, reference), src)
    if n_rows >= 50:  # rows duplicated, others lost: not a permutation
        assert len(np.unique(src)) < n_rows


def test_paper_shuffle_copies_rows_forward_only():
    # Step i copies row j <= i onto row i and leaves rows below i untouched, so row 0 is kept
    # and every output row i holds an input row src[i] <= i.
    src = paper_shuffle_source_rows(5000, 2)
    assert src[0] == 0 and np.all(src <= np.arange(5000))
    assert 0.4 < len(np.unique(src)) / 5000 < 0.6
    np.testing.assert_array_equal(src, paper_shuffle_source_rows(5000, 2))
    assert not np.array_equal(src, paper_shuffle_source_rows(5000, 3))


def test_shuffled_embeddings_paper_duplicates_rows(tiny_bert, tmp_path):
    rec = build_family_member(tiny_bert, "shuffled-embeddings-paper", 0.0, 4, "encoder-weights",
                              tmp_path / "shp")
    build_family_member(tiny_bert, "shuffled-embeddings", 0.0, 4, "encoder-weights", tmp_path / "sh")
    base, paper, correct = (_params(p) for p in (tiny_bert, tmp_path / "shp", tmp_path / "sh"))
    key = "embeddings.word_embeddings.weight"
    old_rows = base[key].numpy()
    reference = old_rows.copy()
    random.Random(4).shuffle(reference)  # the paper's call on the same matrix, same seed
    np.testing.assert_array_equal(paper[key].numpy(), reference)
    src = _rows_as_source_indices(old_rows, paper[key].numpy())
    assert len(np.unique(src)) < 0.6 * len(old_rows)  # ~half the rows survive
    perm = _rows_as_source_indices(old_rows, correct[key].numpy())
    assert sorted(perm) == list(range(len(old_rows)))  # ours: a true permutation
    assert all(torch.equal(base[n], paper[n]) for n in base if n != key)
    assert rec["model_id"] == "tiny-bert-shuffled-embeddings-paper-s4"
    assert (rec["family"], rec["kind"], rec["alpha"]) == ("non-standard", "shuffled-embeddings-paper", None)
    assert "random.shuffle" in rec["rule"]


def test_transplant_input_embeddings(tmp_path):
    from transformers import BertConfig, BertModel

    body = BertModel(BertConfig(vocab_size=50, **TINY))
    donor = BertModel(BertConfig(vocab_size=80, **TINY))
    transplant_input_embeddings_(body, donor)
    assert body.config.vocab_size == 80
    assert torch.equal(body.get_input_embeddings().weight, donor.get_input_embeddings().weight)
    wide = BertModel(BertConfig(vocab_size=80, **dict(TINY, hidden_size=64, intermediate_size=64)))
    with pytest.raises(LatentgeoError, match="width"):
        transplant_input_embeddings_(body, wide)


def test_hub_nonstandard_fail_fast_offline():
    with pytest.raises(OfflineError, match="aajrami/bert-rand-base"):
        load_hub_nonstandard("bert-rand")
    with pytest.raises(LatentgeoError, match="fairseq"):
        load_hub_nonstandard("roberta-shuffle-n1")
    assert all(spec.hub_id or spec.source.startswith("https://") for spec in HUB_NONSTANDARD.values())


# ------------------------------------------------------------------------------------- the CLI


def test_cli_builds_a_folder(tiny_bert, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["perturb", "--model", str(tiny_bert), "--alpha", "2", "--seed", "1", "--out", str(out)]) == 0
    assert "tiny-bert-a2-s1" in capsys.readouterr().out
    assert json.loads((out / "latentgeo.json").read_text())["alpha"] == 2.0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--alpha", "-1"], "alpha"),
        (["--alpha", "100.5"], "alpha"),
        (["--alpha", "nan"], "alpha"),
        ([], "--alpha is required"),
        (["--alpha", "5", "--kind", "untrained"], "applies only to kind 'perturbed'"),
    ],
)
def test_cli_bad_alpha(tiny_bert, tmp_path, capsys, extra, message):
    out = tmp_path / "bad"
    assert main(["perturb", "--model", str(tiny_bert), "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_unknown_model(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["perturb", "--model", "no-such-model", "--alpha", "1", "--out", str(out)]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert not out.exists()


def test_cli_hub_model_offline(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["perturb", "--model", "prajjwal1/bert-small", "--alpha", "1", "--out", str(out)]) == 2
    assert "offline" in capsys.readouterr().err
    assert main(["perturb", "--kind", "german-bert-english-embeddings", "--out", str(out)]) == 2
    assert "dbmdz/bert-base-german-uncased" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_existing_output(tiny_bert, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["perturb", "--model", str(tiny_bert), "--alpha", "1", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main(["perturb", "--model", str(tiny_bert), "--alpha", "1", "--out", str(out), "--overwrite"]) == 0
    assert (out / "latentgeo.json").is_file() and not (out / "keep.txt").exists()
