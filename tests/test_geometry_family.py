"""The model family of a profile (geometry/family.py): kinds, checks, model ids, the member grid."""

from __future__ import annotations

import pytest

from latentgeo.errors import LatentgeoError
from latentgeo.geometry.family import (
    BUILDABLE_KINDS,
    HUB_NONSTANDARD,
    KINDS,
    NONSTANDARD_KINDS,
    PERTURBED,
    SCOPES,
    check_alpha,
    check_kind,
    check_scope,
    check_seed,
    family_model_id,
    profile_members,
    rule_text,
)


def test_kinds_are_the_buildable_ones_then_the_hub_ones():
    assert BUILDABLE_KINDS == (PERTURBED, *NONSTANDARD_KINDS)
    assert KINDS == BUILDABLE_KINDS + tuple(HUB_NONSTANDARD)
    assert len(set(KINDS)) == len(KINDS)


@pytest.mark.parametrize("base, kind, alpha, seed, scope, expected", [
    ("minilm-l6", PERTURBED, 5, 1, "encoder-weights", "minilm-l6-a5-s1"),
    ("minilm-l6", PERTURBED, 0.25, 2, "encoder-weights", "minilm-l6-a0.25-s2"),
    ("minilm-l6", PERTURBED, 5.0, 1, "all-weights", "minilm-l6-a5-s1-allw"),
    ("minilm-l6", "untrained", None, 1, "encoder-weights", "minilm-l6-untrained-s1"),
    ("minilm-l6", "shuffled-embeddings", None, 3, "all-weights", "minilm-l6-shuffled-embeddings-s3"),
    ("ignored", "bert-rand", None, 7, "encoder-weights", "bert-rand"),
])
def test_family_model_id(base, kind, alpha, seed, scope, expected):
    assert family_model_id(base, kind, alpha, seed, scope) == expected


def test_profile_members_grid():
    """Per base model: the noise-free base once (first seed), each α > 0 × seed, each offline
    non-standard kind once (first seed); every member points at its family's base."""
    members = profile_members(["minilm-l6", "paraphrase-minilm-l3"], [0, 2, 8], [1, 2],
                              nonstandard=["untrained"])
    l6 = [m for m in members if m.startswith("minilm-l6")]
    assert l6 == ["minilm-l6-a0-s1", "minilm-l6-a2-s1", "minilm-l6-a2-s2", "minilm-l6-a8-s1",
                  "minilm-l6-a8-s2", "minilm-l6-untrained-s1"]
    assert len(members) == 2 * len(l6)
    base = members["minilm-l6-a0-s1"]
    assert (base.kind, base.alpha, base.seed, base.reference) == (PERTURBED, 0.0, 1, "minilm-l6-a0-s1")
    untrained = members["paraphrase-minilm-l3-untrained-s1"]
    assert (untrained.kind, untrained.alpha, untrained.reference) == ("untrained", 0.0, "paraphrase-minilm-l3-a0-s1")
    assert members["minilm-l6-a2-s2"].as_entry() == {
        "base_model": "minilm-l6", "kind": PERTURBED, "alpha": 2, "seed": 2, "reference": "minilm-l6-a0-s1"}
    assert members["minilm-l6-a2-s2"].model_id == "minilm-l6-a2-s2"


def test_profile_members_all_weights_scope_names_every_id():
    members = profile_members(["minilm-l6"], [5], [1], scope="all-weights")
    assert list(members) == ["minilm-l6-a0-s1-allw", "minilm-l6-a5-s1-allw"]
    assert members["minilm-l6-a5-s1-allw"].reference == "minilm-l6-a0-s1-allw"


@pytest.mark.parametrize("value", [-0.1, 100.5, float("nan"), float("inf"), "x", None])
def test_check_alpha_refuses(value):
    with pytest.raises(LatentgeoError, match="alpha"):
        check_alpha(value)


def test_checks_accept_and_return_the_value():
    assert check_alpha("2.5") == 2.5 and check_alpha(0) == 0.0 and check_alpha(100) == 100.0
    assert check_seed(0) == 0 and check_seed(2**32 - 1) == 2**32 - 1
    assert check_scope(SCOPES[1]) == SCOPES[1] and check_kind("bert-fc") == "bert-fc"


@pytest.mark.parametrize("check, value", [
    (check_seed, -1), (check_seed, 2**32), (check_seed, True), (check_seed, 1.0),
    (check_scope, "decoder-weights"), (check_kind, "half-trained"),
])
def test_checks_refuse_with_the_allowed_values(check, value):
    with pytest.raises(LatentgeoError, match="allowed"):
        check(value)


def test_rule_text_names_the_scope_and_each_kind():
    assert "every encoder parameter" in rule_text(PERTURBED, "encoder-weights", None)
    assert "every model parameter" in rule_text(PERTURBED, "all-weights", None)
    assert "duplicates rows" in rule_text("shuffled-embeddings-paper", "encoder-weights", None)
    spec = HUB_NONSTANDARD["german-bert-english-embeddings"]
    assert "input embeddings and tokenizer from bert-base-uncased" in rule_text(
        "german-bert-english-embeddings", "encoder-weights", spec)
