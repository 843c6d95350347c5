"""The numbers docs/results.md (and the README) quote from the study benchmarks are what each
benchmark's analysis computes from its committed run (bench/results/<benchmark>/) and the committed
study (results/): the analysis is rerun here, as `python bench/<name>.py --analyse-only` runs it,
and each quoted value compared at the precision the document prints.

When a benchmark is rerun, or the committed study changes, this fails until the documents say what
the results say now.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bench_utils import bench_module

from latentgeo.analysis.regression import holm_survivors
from latentgeo.config.schema import load_params

ROOT = Path(__file__).resolve().parents[1]
RESULTS_MD = (ROOT / "docs" / "results.md").read_text()
README = (ROOT / "README.md").read_text()

pytestmark = [
    pytest.mark.slow,  # reruns four benchmarks' analyses and draws a figure (~45 s)
    pytest.mark.skipif(not (ROOT / "results" / "regression.json").is_file(),
                       reason="the committed study's results are not in this checkout"),
]


def section(title: str) -> str:
    """The paragraph of docs/results.md that starts with ``**title**`` (up to the next bold start)."""
    start = RESULTS_MD.index(f"**{title}**")
    end = RESULTS_MD.find("\n\n**", start + 1)
    return RESULTS_MD[start:end if end > 0 else None]


def quoted(text: str, pattern: str) -> tuple[str, ...]:
    """The groups of ``pattern`` in ``text``; a space in the pattern matches any run of whitespace
    (the documents wrap their lines anywhere)."""
    match = re.search(pattern.replace(" ", r"\s+"), text)
    assert match, f"the document no longer says {pattern!r}"
    return match.groups()


def signed(value: float, digits: int = 2) -> str:
    """``value`` as the documents print a signed correlation: +0.77, −0.63."""
    return f"{value:+.{digits}f}".replace("-", "−")


# --------------------------------------------------------------------------- bench/third_family.py


@pytest.fixture(scope="module")
def third_family() -> dict:
    bench = bench_module("third_family", "bench_third_family_results")
    study = bench_module("study_files")
    return bench.analyse(load_params(ROOT / "params.yaml"), study.study_files(ROOT),
                         ROOT / "bench" / "results" / "third_family", "mpnet-base")


def test_third_family_scores_are_the_quoted_ones(third_family):
    text = section("Beyond the paper: a third family, of another architecture")
    table = third_family["table"]
    mpnet = table[table["base_model"] == "mpnet-base"].sort_values(["alpha", "model"])
    first = quoted(text, r"Its suite average is ([0-9., and]+?), then ([0-9., and]+?) \(")
    values = re.findall(r"[0-9]\.[0-9]+", " ".join(first))
    assert values == [f"{v:.3f}" for v in mpnet["score_average"]]
    (n_new,) = quoted(text, r"\((\d+) models; the grid was chosen")
    assert len(values) == int(n_new) == len(third_family["new_models"])
    (n_all,) = quoted(text, r"Refitted on the three families\* \((\d+) models\)")
    assert int(n_all) == third_family["three"]["measures"]["pq_patchiness"]["n"]


def test_third_family_geometry_levels_are_the_quoted_ones(third_family):
    text = section("Beyond the paper: a third family, of another architecture")
    table = third_family["table"]
    mpnet = table[table["base_model"] == "mpnet-base"]
    low, high = quoted(text, r"acceptability MCC ([0-9.]+)–([0-9.]+) up to α = 1.5")
    mcc = mpnet.loc[mpnet["alpha"] <= 1.5, "score_wiki-acceptability"]
    assert (f"{mcc.min():.2f}", f"{mcc.max():.2f}") == (low, high)

    def span(values) -> str:
        a, b = f"{min(values):.3f}", f"{max(values):.3f}"
        return a if a == b else f"{a}–{b}"

    at = lambda column, *alphas: mpnet.loc[mpnet["alpha"].isin(alphas), column]  # noqa: E731
    assert quoted(text, r"PQ patchiness ([0-9.]+) up to α = 1 and ([0-9.–]+) at 2") == (
        span(at("pq_patchiness", 0, 0.25, 0.5, 1)), span(at("pq_patchiness", 2)))
    assert quoted(text, r"IsoScore ([0-9.]+) → ([0-9.–]+) → ([0-9.–]+)\.") == (
        span(at("spread_isoscore", 0)), span(at("spread_isoscore", 1.5)), span(at("spread_isoscore", 2)))
    (iqr,) = quoted(text, r"lower in the unperturbed MPNet \(([0-9.]+)\) than in any MiniLM below α = 4")
    assert iqr == f"{at('pq_reconstruction_iqr', 0).iloc[0]:.3f}"
    minilm = table[table["base_model"] != "mpnet-base"]
    assert minilm.loc[minilm["alpha"] < 4, "pq_reconstruction_iqr"].min() > float(iqr)
    report = third_family["report"].set_index("measure")["new family"]
    assert quoted(text, r"The reconstruction error itself \(([0-9.]+), ([0-9.]+)\) and the stitchability "
                        r"measures \(([0-9.]+)–([0-9.]+)\)") == (
        f"{report['pq_reconstruction_error']:.3f}", f"{report['lsq_reconstruction_error']:.3f}",
        f"{report.filter(like='stitch_').min():.3f}", f"{report.filter(like='stitch_').max():.3f}")


def test_no_two_family_survivor_predicts_the_third_family_better_than_alpha(third_family):
    report = third_family["report"].set_index("measure")
    survivors = holm_survivors(third_family["two"])
    assert len(survivors) == 8
    assert (report.loc[sorted(survivors), "new family"] > report.loc[sorted(survivors), "controls alone"]).all()
    text = section("Beyond the paper: a third family, of another architecture")
    (baseline,) = quoted(text, r"the MPNet models' RMSE is ([0-9.]+) with α alone")
    assert baseline == f"{report['controls alone'].iloc[0]:.3f}"
    assert quoted(text, r"PQ patchiness ([0-9.]+), `lsq_under_mu` ([0-9.]+), IsoScore ([0-9.]+):") == tuple(
        f"{report.loc[m, 'new family']:.3f}" for m in ("pq_patchiness", "lsq_under_mu", "spread_isoscore"))
    assert quoted(text, r"effective rank \(([0-9.]+)\)")[0] == f"{report.loc['spread_effective_rank', 'new family']:.3f}"
    per_dim = third_family["per_dim"]["leave_one_family_out"]["measures"]["spread_effective_rank_per_dim"]
    assert quoted(text, r"\(per dimension: ([0-9.]+)\)")[0] == f"{per_dim['per_family']['mpnet-base']['rmse']:.3f}"
    assert quoted(text, r"\(([0-9.]+) PQ, ([0-9.]+) LSQ\)") == tuple(
        f"{report.loc[f'{q}_reconstruction_iqr', 'new family']:.3f}" for q in ("pq", "lsq"))
    assert "none of the eight does for a third family" in " ".join(README.split())


def test_third_family_before_its_last_grid_point_is_the_quoted_one(tmp_path):
    """The text also quotes the analysis before α = 1.75 was added: the same analysis on the
    committed runs without those models."""
    import shutil

    text = section("Beyond the paper: a third family, of another architecture")
    committed = ROOT / "bench" / "results" / "third_family"
    earlier = tmp_path / "third_family"
    for path in committed.rglob("*.json"):
        if "a1.75-" not in str(path.relative_to(committed)) and not path.name.startswith("cost-"):
            (earlier / path.relative_to(committed)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, earlier / path.relative_to(committed))
    bench = bench_module("third_family", "bench_third_family_results")
    result = bench.analyse(load_params(ROOT / "params.yaml"), bench_module("study_files").study_files(ROOT),
                           earlier, "mpnet-base")
    report = result["report"].set_index("measure")
    (n_models,) = quoted(text, r"\*Before α = 1.75 was added\* \((\d+) models\)")
    assert len(result["new_models"]) == int(n_models)
    assert quoted(text, r"α alone ([0-9.]+) against PQ patchiness ([0-9.]+), `lsq_under_mu` ([0-9.]+), "
                        r"IsoScore ([0-9.]+) and effective rank ([0-9.]+);") == (
        f"{report['controls alone'].iloc[0]:.3f}",
        *(f"{report.loc[m, 'new family']:.3f}" for m in ("pq_patchiness", "lsq_under_mu", "spread_isoscore",
                                                          "spread_effective_rank")))
    (n_fit,) = quoted(text, r"the same three Holm survivors on (\d+) models")
    assert int(n_fit) == result["three"]["measures"]["pq_patchiness"]["n"]
    assert holm_survivors(result["three"]) == {"spread_effective_rank", "pq_reconstruction_iqr", "pq_centroids"}


def test_three_family_refit_is_the_quoted_one(third_family):
    text = section("Beyond the paper: a third family, of another architecture")
    three = third_family["three"]
    partial = {name: entry["partial_r"] for name, entry in three["measures"].items()}
    assert not holm_survivors(third_family["two"]) & holm_survivors(three)
    assert holm_survivors(three) == {"spread_effective_rank", "pq_reconstruction_iqr", "pq_centroids"}
    assert quoted(text, r"PQ patchiness partial r ([+−]?[0-9.]+), IsoScore ([+−][0-9.]+)\)") == (
        signed(partial["pq_patchiness"]), signed(partial["spread_isoscore"]))
    assert quoted(text, r"effective rank \(([+−][0-9.]+)\), the PQ reconstruction errors' IQR "
                        r"\(([+−][0-9.]+); LSQ's ([+−][0-9.]+), Holm ([0-9.]+)\) and PQ `centroids` \(([+−][0-9.]+),") == (
        signed(partial["spread_effective_rank"]), signed(partial["pq_reconstruction_iqr"]),
        signed(partial["lsq_reconstruction_iqr"]),
        f"{three['measures']['lsq_reconstruction_iqr']['partial_p_holm']:.2f}", signed(partial["pq_centroids"]))
    lofo = three["leave_one_family_out"]
    rmse = {name: entry["rmse"] for name, entry in lofo["measures"].items()}
    assert quoted(text, r"α alone gives RMSE ([0-9.]+); the PQ IQR and effective rank ([0-9.]+) and ([0-9.]+), "
                        r"LSQ's IQR ([0-9.]+), IsoScore ([0-9.]+) and PQ patchiness ([0-9.]+)") == (
        f"{lofo['baseline']['rmse']:.3f}", f"{rmse['pq_reconstruction_iqr']:.3f}", f"{rmse['spread_effective_rank']:.3f}",
        f"{rmse['lsq_reconstruction_iqr']:.3f}", f"{rmse['spread_isoscore']:.3f}", f"{rmse['pq_patchiness']:.3f}")


def test_third_family_cost_is_the_quoted_one(third_family):
    cost = bench_module("study_jobs").mean_cost(ROOT / "bench" / "results" / "third_family")
    text = section("Beyond the paper: a third family, of another architecture")
    assert quoted(text, r"\(embedding ([0-9]+), measures ([0-9]+), fine-tuning ([0-9]+) per task\)") == tuple(
        f"{cost[step]:.0f}" for step in ("embed", "measure", "finetune"))
    (total,) = quoted(text, r"~([0-9,]+) CPU-s per MPNet model")
    per_model = cost["perturb"] + cost["embed"] + cost["measure"] + 2 * cost["finetune"]
    assert abs(per_model - float(total.replace(",", ""))) < 10


def test_third_family_figure_is_the_committed_one(third_family, tmp_path):
    """The benchmark's figure, drawn again from the committed runs, has the committed bytes (the
    project's figures are byte-stable under the pinned environment): a change to the analysis or
    the drawing shows up as a stale figure here."""
    bench = bench_module("third_family", "bench_third_family_results")
    params = load_params(ROOT / "params.yaml")
    drawn = [bench.plot_out_of_family(third_family, params.regression, tmp_path / f"{i}.png",
                                      profile=params.profile, suite=params.finetune.suite) for i in (1, 2)]
    assert drawn[0].read_bytes() == drawn[1].read_bytes()
    committed = ROOT / "bench" / "results" / "third_family" / bench.FIGURE
    assert drawn[0].read_bytes() == committed.read_bytes(), \
        "stale figure: run python bench/third_family.py --analyse-only"


# --------------------------------------------------------------------------- bench/sample_size.py


@pytest.fixture(scope="module")
def sample_size(tmp_path_factory) -> dict:
    bench = bench_module("sample_size", "bench_sample_size_results")
    study = bench_module("study_files")
    results = ROOT / "bench" / "results" / "sample_size"
    out = bench.analyse(load_params(ROOT / "params.yaml"), study.study_files(ROOT), results / "measures",
                        tmp_path_factory.mktemp("sample_size"))
    out["cost"] = bench_module("study_jobs").mean_cost(results)
    return out


def test_sample_size_keeps_the_survivors_and_quoted_fits(sample_size):
    text = section("Beyond the paper: the paper's sample size")
    new, old = sample_size["stage"].regression, sample_size["old_regression"]
    assert holm_survivors(new) == holm_survivors(old) and len(holm_survivors(new)) == 8
    assert "The same eight measures survive Holm" in " ".join(text.split())
    (n,) = quoted(text, r"5,000 sequences give ([0-9,]+) token vectors per model")
    assert sample_size["n_vectors"] == [int(n.replace(",", ""))]
    report = sample_size["report"].set_index("measure")

    def pair(name: str, digits: int = 3) -> tuple[str, str]:
        return f"{report.loc[name, 'r']:.{digits}f}", f"{report.loc[name, 'partial_r']:.{digits}f}"

    assert quoted(text, r"PQ patchiness has r = ([0-9.]+) and partial r ([0-9.]+) \(([0-9.]+) and ([0-9.]+) at 3,300\)") == (
        *pair("pq_patchiness"), f"{report.loc['pq_patchiness', 'r_profile']:.3f}",
        f"{report.loc['pq_patchiness', 'partial_r_profile']:.3f}")
    assert quoted(text, r"IsoScore ([0-9.]+) and ([0-9.]+) \(unchanged\) with leave-one-family-out RMSE ([0-9.]+)") == (
        *pair("spread_isoscore"), f"{report.loc['spread_isoscore', 'lofo_rmse']:.3f}")
    assert quoted(text, r"LSQ patchiness r = ([0-9.]+) and partial ([0-9.]+) \(Holm ([0-9.]+)\)") == (
        *pair("lsq_patchiness", 2), f"{report.loc['lsq_patchiness', 'partial_p_holm']:.0f}")


def test_sample_size_moves_the_models_values_as_quoted(sample_size):
    text = section("Beyond the paper: the paper's sample size")
    report = sample_size["report"].set_index("measure")
    spearman = report["spearman_vs_profile"]
    floor, odd, odd_value = quoted(text, r"≥ ([0-9.]+) for every measure but `(\w+)`, ([0-9.]+),")
    assert spearman.idxmin() == odd and f"{spearman.min():.2f}" == odd_value
    assert f"{spearman.drop(odd).min():.2f}" == floor
    (shift,) = quoted(text, r"mean change at most ([0-9.]+) of their spread")
    assert f"{report['shift_in_sd'].abs().max():.2f}" == shift
    moved = quoted(text, r"PQ patchiness ([0-9.]+) → ([0-9.]+) and `lsq_under_mu` ([0-9.]+) → ([0-9.]+), against ([0-9.]+)")
    assert moved == (*(f"{report.loc[m, k]:.3f}" for m in ("pq_patchiness", "lsq_under_mu")
                       for k in ("lofo_rmse_profile", "lofo_rmse")),
                     f"{sample_size['stage'].regression['leave_one_family_out']['baseline']['rmse']:.3f}")


def test_sample_size_sweep_and_cost_are_the_quoted_ones(sample_size):
    text = section("Beyond the paper: the paper's sample size")
    sweep = sample_size["stage"].sweep
    bins = sweep[sweep["n_sequences"] == "whole"]
    assert quoted(text, r"The bins sweep on the larger sample: r = ([0-9.]+)–([0-9.]+), partial ([0-9.]+)–([0-9.]+)\.") == (
        f"{bins['r'].min():.2f}", f"{bins['r'].max():.2f}", f"{bins['partial_r'].min():.2f}", f"{bins['partial_r'].max():.2f}")
    assert quoted(text, r"([0-9]+) CPU-s per model to embed and ([0-9]+) to measure") == (
        f"{sample_size['cost']['embed']:.0f}", f"{sample_size['cost']['measure']:.0f}")


# --------------------------------------------------------------------------- bench/finetune_seed.py


@pytest.fixture(scope="module")
def finetune_seed() -> dict:
    bench = bench_module("finetune_seed", "bench_finetune_seed_results")
    study = bench_module("study_files")
    return bench.analyse(load_params(ROOT / "params.yaml"), study.study_files(ROOT),
                         ROOT / "bench" / "results" / "finetune_seed", [1])


def test_finetune_seed_noise_is_the_quoted_one(finetune_seed):
    text = section("Beyond the paper: the fine-tuning seed")
    noise = finetune_seed["noise"].set_index("score")
    sd = lambda score, column: f"{noise.loc[score, column]:.3f}"  # noqa: E731
    assert quoted(text, r"is ([0-9.]+) for bbc-topic against ([0-9.]+) across models and ([0-9.]+) for "
                        r"acceptability \(([0-9.]+)\), so ([0-9.]+) for the suite average against ([0-9.]+) across "
                        r"models \(([0-9.]+) against ([0-9.]+) chance-normalised\)") == (
        sd("score_bbc-topic", "run_sd"), sd("score_bbc-topic", "model_sd"),
        sd("score_wiki-acceptability", "run_sd"), sd("score_wiki-acceptability", "model_sd"),
        sd("score_average", "run_sd"), sd("score_average", "model_sd"),
        sd("score_normalised", "run_sd"), sd("score_normalised", "model_sd"))
    (r,) = quoted(text, r"the models' averages correlate r = ([0-9.]+) between the two seeds")
    assert r == f"{noise.loc['score_average', 'r_between_seeds_min']:.2f}"


def test_finetune_seed_keeps_the_survivors_and_quoted_transfer(finetune_seed):
    text = section("Beyond the paper: the fine-tuning seed")
    fits = finetune_seed["regressions"]
    order = ("seed 0", "seed 1", "mean")
    base = holm_survivors(fits["seed 0"])
    assert len(base) == 8 and holm_survivors(fits["mean"]) == base
    assert holm_survivors(fits["seed 1"]) == base | {"spread_effective_rank"}
    assert quoted(text, r"\(with effective rank, Holm ([0-9.]+)\)")[0] == \
        f"{fits['seed 1']['measures']['spread_effective_rank']['partial_p_holm']:.2f}"

    def partial(name: str) -> tuple[str, ...]:
        return tuple(f"{fits[f]['measures'][name]['partial_r']:.2f}" for f in ("seed 1", "mean", "seed 0"))

    assert quoted(text, r"PQ patchiness has partial r ([0-9.]+) and ([0-9.]+) \(([0-9.]+) at seed 0\)") == partial("pq_patchiness")
    assert quoted(text, r"IsoScore ([0-9.]+) and ([0-9.]+) \(([0-9.]+)\), `lsq_under_mu`") == partial("spread_isoscore")
    assert quoted(text, r"`lsq_under_mu` ([0-9.]+) and ([0-9.]+) \(([0-9.]+)\); LSQ") == partial("lsq_under_mu")

    def lofo(name: str | None, key: str = "rmse") -> tuple[str, ...]:
        entries = [fits[f]["leave_one_family_out"] for f in order]
        picked = [e["baseline"] if name is None else e["measures"][name] for e in entries]
        if key == "rmse":
            return tuple(f"{p[key]:.3f}" for p in picked)
        if key == "sign_test_p":  # a p of 1 is printed as 1
            return tuple("1" if p[key] == 1 else f"{p[key]:.2f}" for p in picked)
        return tuple(str(p[key]) for p in picked)

    assert quoted(text, r"RMSE ([0-9.]+) at seed 0, ([0-9.]+) at seed 1 and ([0-9.]+) on the mean") == lofo(None)
    assert quoted(text, r"IsoScore beats it by a third at each \(([0-9.]+), ([0-9.]+), ([0-9.]+)\)") == lofo("spread_isoscore")
    assert quoted(text, r"on the mean \(([0-9.]+), ([0-9.]+), ([0-9.]+)\), and PQ") == lofo("lsq_under_mu")
    assert quoted(text, r"PQ patchiness at none by much \(([0-9.]+), ([0-9.]+), ([0-9.]+)\)") == lofo("pq_patchiness")
    counted = r"(\d+), (\d+) and (\d+)"
    pvalues = r"p = ([0-9.]+), ([0-9.]+), ([0-9.]+)\)"
    for pattern, name in ((rf"IsoScore predicts {counted} of the 18 left-out models closer than α alone "
                           rf"\(seed 0, seed 1, mean; sign test {pvalues}", "spread_isoscore"),
                          (rf"`lsq_under_mu` {counted} \({pvalues}", "lsq_under_mu"),
                          (rf"PQ patchiness {counted} \({pvalues}", "pq_patchiness")):
        assert quoted(text, pattern) == lofo(name, "better") + lofo(name, "sign_test_p"), name


# --------------------------------------------------------------------------- bench/quantizer_train_size.py

SIZES = {"10,240": 10240, "16,384": 16384, "32,768": 32768, "all": "all"}


@pytest.fixture(scope="module")
def train_size() -> dict:
    bench = bench_module("quantizer_train_size", "bench_quantizer_train_size_results")
    study = bench_module("study_files")
    params = load_params(ROOT / "params.yaml")
    rows = bench.read_rows(ROOT / "bench" / "results" / "quantizer_train_size", params.perturb.model_ids())
    return {"rows": rows, **bench.analyse_rows(params, study.study_files(ROOT), rows)}


def test_train_size_runs_reproduce_the_committed_pq_values(train_size):
    assert train_size["check"] and max(train_size["check"]) == 0.0


def test_train_size_pq_conclusions_are_the_quoted_ones(train_size):
    text = section("Beyond the paper: the quantizers' training set")
    base = {r["size"]: r["values"]["patchiness"] for r in train_size["rows"]
            if r["model"] == "minilm-l6-a0-s1" and r["quantizer"] == "pq"}
    levels = quoted(text, r"PQ patchiness of the base L6 model ([0-9.]+), ([0-9.]+), ([0-9.]+), ([0-9.]+) at")
    assert levels == tuple(f"{base[s]:.3f}" for s in SIZES.values())
    report = train_size["report"]
    pq = report[report["measure"] == "pq_patchiness"].set_index("size")
    order = [str(s) for s in SIZES.values()]
    assert quoted(text, r"patchiness r = ([0-9.]+), ([0-9.]+), ([0-9.]+), ([0-9.]+) and partial r "
                        r"([0-9.]+), ([0-9.]+), ([0-9.]+), ([0-9.]+),") == (
        *(f"{pq.loc[s, 'r']:.3f}" for s in order), *(f"{pq.loc[s, 'partial_r']:.3f}" for s in order))
    (floor,) = quoted(text, r"≥ ([0-9.]+) for every patchiness and point-count measure")
    counts = report[report["measure"].str.contains("patchiness|point_count")]
    assert counts["spearman_vs_profile"].min() >= float(floor)
    pq_rows = report[report["measure"].str.startswith("pq_")]
    survivors = {size: set(group.loc[group["partial_p_holm"] < 0.05, "measure"]) for size, group in pq_rows.groupby("size")}
    assert "the same six PQ measures survive Holm" in " ".join(text.split())
    assert all(s == survivors[str(16384)] and len(s) == 6 for s in survivors.values())


def test_train_size_lsq_drift_is_the_quoted_one(train_size):
    text = section("Beyond the paper: the quantizers' training set")
    report = train_size["report"]
    lsq = report[report["measure"] == "lsq_patchiness"].set_index("size")
    profile = lsq.iloc[0]  # the committed fit at the profile's size (16,384) sits beside every row
    r = (lsq.loc["10240", "r"], profile["r_profile"], lsq.loc["32768", "r"])
    partial = (lsq.loc["10240", "partial_r"], profile["partial_r_profile"], lsq.loc["32768", "partial_r"])
    holm = (lsq.loc["10240", "partial_p_holm"], profile["partial_p_holm_profile"], lsq.loc["32768", "partial_p_holm"])
    assert quoted(text, r"r = ([0-9.]+), ([0-9.]+), ([0-9.]+) and partial r ([0-9.]+), ([0-9.]+), ([0-9.]+) at "
                        r"10,240, 16,384 and 32,768 training vectors \(Holm ([0-9.]+), ([0-9.]+), ([0-9.]+)\)") == (
        *(f"{v:.3f}" for v in r), *(f"{v:.2f}" for v in partial), *("1" if v == 1 else f"{v:.2f}" for v in holm))
    low, high, baseline = quoted(text, r"\(([0-9.]+)–([0-9.]+) against ([0-9.]+)\)")
    lofo = [lsq.loc["10240", "lofo_rmse"], profile["lofo_rmse_profile"], lsq.loc["32768", "lofo_rmse"]]
    assert (f"{min(lofo):.3f}", f"{max(lofo):.3f}", f"{train_size['controls_lofo_rmse']:.3f}") == (low, high, baseline)
    under = report[report["measure"] == "lsq_under_mu"].set_index("size")
    assert (under["partial_p_holm"] < 0.05).all() and under.iloc[0]["partial_p_holm_profile"] < 0.05
    assert quoted(text, r"`lsq_under_mu` survives Holm at each size \(partial ([0-9.]+), ([0-9.]+), ([0-9.]+)\)") == (
        f"{under.loc['10240', 'partial_r']:.2f}", f"{under.iloc[0]['partial_r_profile']:.2f}",
        f"{under.loc['32768', 'partial_r']:.2f}")


def test_finetune_seed_rerun_at_the_committed_seed_is_the_committed_score():
    """The benchmark's first runs repeat the committed seed on the first model: its scores must be
    the finetune stage's, or the runs are not the stage's own."""
    import json

    text = section("Beyond the paper: the fine-tuning seed")
    assert "the base L6 model's scores come out exactly as committed" in " ".join(text.split())
    params = load_params(ROOT / "params.yaml")
    rerun = ROOT / "bench" / "results" / "finetune_seed" / f"seed-{params.finetune.seed}" / "minilm-l6-a0-s1"
    for task in params.finetune.tasks:
        committed = json.loads((ROOT / "results" / "finetune" / "minilm-l6-a0-s1" / f"{task}.json").read_text())
        assert json.loads((rerun / f"{task}.json").read_text())["score"] == committed["score"], task
