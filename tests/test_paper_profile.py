"""The paper profile as the paper ran it: its grid, its data source, MNLI scored on the matched split.

Nothing here needs the network: the profile is validated offline, and MNLI is fine-tuned on a
few rows this test writes in GLUE's layout (a tiny random BERT, through the GLUE loader's seam).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from latentgeo.config.schema import NONSTANDARD_KINDS, load_params
from latentgeo.downstream.finetune import FinetuneSettings
from latentgeo.downstream.tasks import GLUE_TASKS
from latentgeo.stages.finetune import finetune_task

from test_downstream_finetune import tiny_model  # noqa: F401  (a fixture)
from test_downstream_datasets_io import glue_fixture_loader, write_glue

ROOT = Path(__file__).resolve().parents[1]


def test_paper_grid_is_three_runs_per_level_with_the_unperturbed_reference():
    params = load_params(ROOT / "profiles" / "paper.yaml")
    alphas = params.perturb.alphas
    assert alphas[0] == 0 and alphas == sorted(alphas) and len(set(alphas)) == len(alphas)
    assert all(a * 2 == int(a * 2) for a in alphas)  # the published levels are whole or half percents
    assert params.perturb.seeds == [1, 2, 3]  # the paper's runs 1-3
    assert params.perturb.base_models == ["prajjwal1/bert-small"]
    paper_kinds = {"untrained", "shuffled-embeddings", "shuffled-embeddings-paper"}
    assert paper_kinds <= set(params.perturb.nonstandard) <= set(NONSTANDARD_KINDS)
    ids = params.perturb.model_ids()
    # The noise-free base once (seeds would change nothing), every α > 0 × 3 seeds, and each
    # non-standard kind once, as the paper built its non-standard models.
    assert len(ids) == len(set(ids)) == 1 + 3 * (len(alphas) - 1) + len(params.perturb.nonstandard)
    assert "bert-small-a35-s3" in ids and "bert-small-shuffled-embeddings-paper-s1" in ids


def test_paper_profile_reads_the_papers_sequences_and_scores_glue():
    params = load_params(ROOT / "profiles" / "paper.yaml")
    assert params.data.source == "paper-sequences"
    assert params.data.corpus.n_sequences == 5000  # all of the paper's sample
    assert params.finetune.suite == "glue" and set(params.finetune.tasks) == set(GLUE_TASKS)
    assert params.finetune.seed == 42  # run_glue.py's default seed


def test_offline_profiles_need_no_network():
    for path in (ROOT / "params.yaml", ROOT / "profiles" / "smoke.yaml"):
        params = load_params(path)
        assert params.data.source == "packaged" and params.finetune.suite == "offline", path.name


@pytest.mark.slow  # fine-tunes a model on GLUE-shaped stand-ins
def test_mnli_score_is_the_matched_accuracy(tiny_model, tmp_path):  # noqa: F811
    # Matched and mismatched hold the same pairs with different gold labels (0 vs 1) and the
    # training set teaches label 0, so the two accuracies differ: the score must be the matched
    # one (the paper's eval_accuracy), not the mismatched one or the mean of both.
    pair = {"premise": "A man is eating an apple.", "hypothesis": "Someone eats fruit."}
    rows = lambda label, n: [{**pair, "label": label, "idx": i} for i in range(n)]  # noqa: E731
    root = tmp_path / "glue"
    write_glue(root, "mnli", {"train": rows(0, 16), "validation_matched": rows(0, 4),
                              "validation_mismatched": rows(1, 4)})
    settings = FinetuneSettings(learning_rate=1e-2, epochs=2, batch_size=8, max_length=16, seed=0)
    result = finetune_task(tiny_model, "mnli", None, tmp_path / "mnli.json", settings,
                           loader=glue_fixture_loader(root, tmp_path / "cache"), show_progress=False)
    matched = result["metrics"]["validation_matched"]["accuracy"]
    mismatched = result["metrics"]["validation_mismatched"]["accuracy"]
    assert matched != mismatched  # the premise of this test
    assert result["score"] == matched
    assert result["score_split"] == "validation_matched"
    assert result["eval_size"] == 8  # both splits evaluated and recorded
