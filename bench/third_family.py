"""Benchmark: a third family of models, of another architecture, predicted from the first two.

The default study has two families, both MiniLM (BERT, d = 384), and its leave-one-family-out
test predicts one from the other: a thin base. This script builds a third family from another
packaged encoder (default all-mpnet-base-v2: MPNet, 12 layers, d = 768) with the profile's noise
rule at the grid points given (``--alphas``, ``--seeds``), and runs each member through the
stages' own functions and the profile's settings:

1. perturb: :func:`latentgeo.stages.perturb.build_family_member` (the profile's scope);
2. embed: :func:`latentgeo.stages.embed.embed_file`, the profile's first ``n_sequences``;
3. measure: :func:`latentgeo.stages.measures.measures_file` (both quantizers, three seeds, the
   sweep, stitchability onto the new family's base);
4. fine-tune: :func:`latentgeo.stages.finetune.finetune_task` on the profile's tasks.

Then, on the committed models and the new family together (``base_model`` tells them apart):

* the out-of-architecture test: per measure, the new family's perturbed models predicted by
  ``score ~ controls + measure`` fitted on the committed families alone, its RMSE against that of
  ``score ~ controls`` (the leave-one-family-out fold that leaves the new family out,
  :func:`latentgeo.analysis.lofo.leave_one_family_out`);
* the regression refitted on all three families (:func:`latentgeo.analysis.regression.regress`):
  r, partial r given the controls, Holm-adjusted partial p, beside the committed two-family fit;
  and the leave-one-family-out RMSE over the three folds.

and draws the figure ``out_of_family.png`` into the results folder (:func:`plot_out_of_family`).

Models and token vectors go to ``--work-dir``; the per-model measures and scores (JSON) to
``--results``, by default ``bench/results/third_family``, where the run docs/results.md quotes is
committed: ``--analyse-only`` reruns its analysis from them in seconds. Resumable: a step whose
output exists is not redone (``--analyse-only`` runs none). Each step runs in ``--workers``
processes of one thread. The analysis takes every model of the base model in ``--results``: grids
run one after another add up (``--alphas 0,1.5,2 --seeds 1,2`` after the default adds α = 1.5 and
a second noise seed where the score falls).

    python bench/third_family.py [--params params.yaml] [--study .] [--base-model mpnet-base]
        [--alphas 0,0.25,0.5,1,2] [--seeds 1] [--workers 2] [--work-dir bench-out/third_family]
        [--results bench/results/third_family] [--csv REPORT] [--analyse-only]

Needs the profile's corpus and task data (``latentgeo data get``; not for ``--analyse-only``) and
its committed results (scores, measures, regression), where ``--study``'s dvc.yaml puts them
(:mod:`study_files`). The work directory holds ~310 MB of token vectors and ~440 MB of weights per
mpnet member.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from types import SimpleNamespace

from latentgeo.analysis.statistics import SIGNIFICANCE  # the study's level for Holm-adjusted p

from study_files import add_results_argument, add_study_arguments, parse_study_arguments
from study_jobs import embed_job, finetune_job, mean_cost, measure_job, record_cost, run_pool

COMPARED = ("r", "partial_r", "partial_p_holm")
FIGURE = "out_of_family.png"  # in the results folder, beside the runs it is drawn from


# --------------------------------------------------------------------------- the steps, one model each


def perturb_job(job: dict) -> dict:
    """In a worker: build one member of the new family, as the perturb stage does."""
    from latentgeo.stages.perturb import build_family_member

    start = time.process_time()
    build_family_member(job["base_model"], job["kind"], job["alpha"], job["seed"], job["scope"], job["out"])
    return {"model": job["model"], "cpu_s": time.process_time() - start}


def build_family(params, params_file: str, members: dict, files, work: Path, results_dir: Path,
                 workers: int) -> list[dict]:
    """Steps 1–4 for every member of the new family, each step skipping what is there already:
    models and token vectors in ``work``, measures and scores in ``results_dir``."""
    models, emb = work / "models", work / "embeddings"
    meas, ft = results_dir / "measures", results_dir / "finetune"
    tasks = list(params.finetune.tasks)

    def measured(m: str) -> bool:
        return (meas / f"{m}.json").is_file()

    def scored(m: str) -> bool:
        return all((ft / m / f"{t}.json").is_file() for t in tasks)

    # What is still needed, so that a run resumes after the work folder was emptied: token vectors
    # for every model left to measure and for its reference (stitchability), a model for every
    # sample left to embed and every score left to fine-tune.
    to_measure = [m for m in members if not measured(m)]
    need_vectors = set(to_measure) | {members[m].reference for m in to_measure}
    need_model = {m for m in need_vectors if not (emb / f"{m}.json").is_file()}
    need_model |= {m for m in members if not scored(m)}
    cost = []
    jobs = [{"model": m, "base_model": v.base_model, "kind": v.kind, "alpha": v.alpha, "seed": v.seed,
             "scope": params.perturb.scope, "out": str(models / m)}
            for m, v in members.items() if m in need_model and not (models / m / "latentgeo.json").is_file()]
    cost += run_pool(perturb_job, jobs, workers, "perturb")
    jobs = [{"model": m, "params": params_file, "model_dir": str(models / m),
             "sequences": str(files.sequences), "out": str(emb / f"{m}.npy")}
            for m in members if m in need_vectors and not (emb / f"{m}.json").is_file()]
    cost += run_pool(embed_job, jobs, workers, "embed")
    jobs = [{"model": m, "params": params_file, "embeddings": str(emb / f"{m}.npy"),
             "reference": str(emb / f"{v.reference}.npy"), "out": str(meas / f"{m}.json")}
            for m, v in members.items() if m in to_measure]
    cost += run_pool(measure_job, jobs, workers, "measure")
    jobs = [{"model": m, "task": t, "params": params_file, "model_dir": str(models / m),
             "data_dir": str(files.tasks), "out": str(ft / m / f"{t}.json")}
            for m in members for t in tasks if not (ft / m / f"{t}.json").is_file()]
    cost += run_pool(finetune_job, jobs, workers, "finetune")
    return cost


# --------------------------------------------------------------------------- the analysis


def refit(table, settings) -> dict:
    """The regression of ``settings.score`` on every measure of ``table``, as the regression stage
    fits it (``settings``: the profile's ``regression`` section), with its leave-one-family-out
    result under ``leave_one_family_out``."""
    from latentgeo.analysis.lofo import leave_one_family_out
    from latentgeo.analysis.regression import regress

    fit = regress(table, settings.score, measures=settings.measures, group=settings.group,
                  controls=settings.controls)
    fit["leave_one_family_out"] = leave_one_family_out(table, settings.score, list(fit["measures"]),
                                                       controls=settings.controls)
    return fit


def out_of_family_report(two: dict, three: dict, new_family: str) -> list[dict]:
    """One row per measure of the committed regression ``two``: its r and partial r there, the same
    on the three-family fit ``three`` (with Holm-adjusted p), the leave-one-family-out RMSE over the
    three folds, and the fold that leaves ``new_family`` out (RMSE with the measure, and with the
    controls alone on the same rows)."""
    lofo = three["leave_one_family_out"]["measures"]
    rows = []
    for name in two["ranking"]:
        old, new = two["measures"][name], three["measures"].get(name, {})
        fold = ((lofo.get(name) or {}).get("per_family") or {}).get(new_family, {})
        rows.append({
            "measure": name,
            **{f"{k} (2)": old.get(k) for k in ("r", "partial_r")},
            **{f"{k} (3)": new.get(k) for k in COMPARED},
            "lofo (3)": (lofo.get(name) or {}).get("rmse"),
            "new family": fold.get("rmse"),
            "controls alone": fold.get("baseline_rmse"),
        })
    return rows


# Measures whose range grows with the width d of the vectors (a count of dimensions): across
# architectures of other widths their level says as much about d as about the geometry.
WIDTH_BOUND = ("spread_effective_rank", "spread_twonn_id")


def with_per_dimension(table, widths: dict[str, int]) -> "pd.DataFrame":
    """``table`` with ``<measure>_per_dim`` = measure / d for each measure of :data:`WIDTH_BOUND`
    it has; ``widths``: d per ``base_model``."""
    out = table.copy()
    d = out["base_model"].map(widths).astype(float)
    for name in WIDTH_BOUND:
        if name in out.columns:
            out[f"{name}_per_dim"] = out[name] / d
    return out


def family_in(table, base_model: str) -> "pd.DataFrame":
    """The rows of ``table`` perturbed from ``base_model`` (every grid run into the work folder)."""
    return table[table["base_model"] == base_model].reset_index(drop=True)


def family_scores(table, score: str) -> "pd.DataFrame":
    """Each family's score per noise level (perturbed models; mean over noise seeds)."""
    swept = table[table["alpha"].notna()]
    return swept.pivot_table(index="alpha", columns="base_model", values=score, aggfunc="mean")


def family_widths(parts) -> dict[str, int]:
    """d of each family's token vectors, from its models' measures (``inputs.d``). ``parts``:
    (measures folder, results table) pairs; the models of one family must agree."""
    widths: dict[str, set[int]] = {}
    for folder, table in parts:
        for model, base in zip(table["model"], table["base_model"], strict=True):
            d = json.loads((Path(folder) / f"{model}.json").read_text())["inputs"]["d"]
            widths.setdefault(base, set()).add(int(d))
    mixed = {base: sorted(ds) for base, ds in widths.items() if len(ds) > 1}
    if mixed:
        raise SystemExit(f"models of one family have vectors of different widths: {mixed}")
    return {base: ds.pop() for base, ds in widths.items()}


def analyse(params, files, results_dir: Path, base_model: str, expected: list[str] = ()) -> dict:
    """The analysis of the new family in ``results_dir`` (every model of ``base_model`` there, which
    must include ``expected``) with the committed study of ``files``: a dict of the combined
    ``table``, the families' ``scores`` per α, ``widths``, the committed fit ``two``, the refit
    ``three``, ``per_dim`` (the width-bound measures per dimension, fitted apart), the per-measure
    ``report`` (:func:`out_of_family_report`) and the ``new_family``'s name."""
    import pandas as pd

    from latentgeo.analysis.table import build_results_table

    tasks = list(params.finetune.tasks)
    committed = build_results_table(files.finetune, files.measures, params.perturb.model_ids(), tasks)
    new = family_in(build_results_table(results_dir / "finetune", results_dir / "measures", None, tasks), base_model)
    if new.empty or (missing := sorted(set(expected) - set(new["model"]))):
        raise SystemExit(f"no results for {list(expected) if new.empty else missing} of {base_model} "
                         f"in {results_dir}: run without --analyse-only")
    widths = family_widths([(files.measures, committed), (results_dir / "measures", new)])
    table = pd.concat([committed, new], ignore_index=True)
    settings = params.regression
    two = json.loads(files.regression.read_text())
    three = refit(table, settings)
    width_free = SimpleNamespace(**{**settings.model_dump(), "measures": [f"{m}_per_dim" for m in WIDTH_BOUND]})
    per_dim = refit(with_per_dimension(table, widths), width_free)  # apart: not in three's Holm family
    new_family = new["base_model"].iloc[0]
    return {
        "table": table, "new_models": list(new["model"]), "scores": family_scores(table, settings.score),
        "widths": widths, "two": two, "three": three, "per_dim": per_dim, "new_family": new_family,
        "report": pd.DataFrame(out_of_family_report(two, three, new_family)),
    }


def plot_out_of_family(result: dict, settings, path: Path, *, profile: str, suite: str) -> Path:
    """The benchmark's figure, written to ``path`` (PNG, the project's fixed style): left, each
    family's ``settings.score`` against log(1 + α) (perturbed models, one point per noise seed,
    a line through the means); right, per measure, the RMSE of the new family's models predicted
    from the committed families alone, against log(1 + α) alone (dashed), the committed study's
    Holm survivors filled."""
    import numpy as np
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator

    from latentgeo.analysis.regression import holm_survivors
    from latentgeo.plotting import figure_style, new_figure, provenance, save_figure

    table, new_family = result["table"], result["new_family"]
    swept = table[table["alpha"].notna()]
    report = result["report"].sort_values("new family", ascending=False)
    survivors = holm_survivors(result["two"])
    baseline = float(report["controls alone"].iloc[0])
    families = list(dict.fromkeys(swept["base_model"]))
    with figure_style():
        import seaborn as sns

        colours = dict(zip(families, sns.color_palette("tab10", len(families)), strict=True))
        fig = new_figure(11.0, 0.9 + 0.19 * len(report))
        left, right = fig.subplots(1, 2, width_ratios=[1.0, 1.25])
        for family in families:
            rows = swept[swept["base_model"] == family]
            x = np.log1p(rows["alpha"].to_numpy(float))
            left.scatter(x, rows[settings.score], s=14, color=colours[family], alpha=0.7)
            means = rows.groupby("alpha")[settings.score].mean()
            left.plot(np.log1p(means.index.to_numpy(float)), means.to_numpy(), color=colours[family],
                      label=f"{family} ({len(rows)} models)")
        ticks = sorted(set(swept["alpha"]))
        left.xaxis.set_major_locator(FixedLocator(np.log1p(ticks)))
        left.set_xticklabels([f"{a:g}" for a in ticks], rotation=90)
        left.set_xlabel("noise level α (%), on a log(1 + α) axis")
        left.set_ylabel(settings.score)
        left.set_title("each family's score against the noise level")
        left.legend(loc="upper right")
        y = np.arange(len(report))
        filled = [colours[new_family] if m in survivors else "0.75" for m in report["measure"]]
        right.barh(y, report["new family"], color=filled)
        right.axvline(baseline, color="black", linestyle="--", linewidth=1,
                      label=f"{' + '.join(settings.controls)} alone: {baseline:.3f}")
        right.set_yticks(y, report["measure"])
        right.set_ylim(-0.6, len(report) - 0.4)
        right.set_xlabel(f"RMSE of {new_family}'s {settings.score}, predicted by fits on the other families")
        right.set_title(f"{new_family} predicted from the other {len(families) - 1} families, per measure")
        # below the panels (constrained layout makes room): the bars reach every corner
        fig.legend(handles=[*right.get_legend_handles_labels()[0],
                            Patch(color=colours[new_family], label="a Holm survivor of the committed study")],
                   loc="outside lower right", ncol=2)
        fig.suptitle(f"A family of another architecture predicted from the study's families\n"
                     f"{provenance(suite, profile, 'bench/third_family.py')}")
        return save_figure(fig, path)


def print_analysis(result: dict, settings) -> None:
    """What :func:`analyse` found, as the benchmark prints it."""
    import pandas as pd

    from latentgeo.analysis.regression import holm_survivors

    new_family, report, three = result["new_family"], result["report"], result["three"]
    pd.set_option("display.width", 220)
    print(f"\n{new_family}'s models (this grid's and any built before): {result['new_models']}")
    print(f"\n{settings.score} per noise level and family (perturbed models, mean over noise seeds):")
    print(result["scores"].round(3).to_string())
    baseline = three["leave_one_family_out"]["baseline"]
    print(f"\nPer measure (score {settings.score}, controls {settings.controls}): (2) the committed "
          f"two-family regression, (3) refitted with {new_family}'s {len(result['new_models'])} models; "
          f"lofo (3): leave-one-family-out RMSE over the three folds; new family: RMSE of its models "
          f"predicted by fits on the committed families alone; controls alone: the same fold without "
          f"the measure")
    print(report.round(3).to_string(index=False))
    beats = report[report["new family"] < report["controls alone"]]
    print(f"\ncontrols alone, leave one family out: RMSE {baseline['rmse']:.3f} over the three folds; "
          f"{new_family} fold {baseline['per_family'][new_family]['rmse']:.3f}")
    print(f"measures predicting {new_family} better than the controls alone: {sorted(beats['measure'])}")
    per_dim = result["per_dim"]
    print(f"\nper dimension (d: {result['widths']}), the measures whose range grows with d:")
    for name, fit in per_dim["leave_one_family_out"]["measures"].items():
        print(f"  {name}: r {per_dim['measures'][name]['r']:.3f}, partial r "
              f"{per_dim['measures'][name]['partial_r']:.3f}, lofo {fit['rmse']:.3f}, "
              f"{new_family} fold {fit['per_family'][new_family]['rmse']:.3f}")
    now, before = holm_survivors(three), holm_survivors(result["two"])
    print(f"partial r surviving Holm at {SIGNIFICANCE} with three families: {sorted(now)}")
    print(f"  gained {sorted(now - before)}, lost {sorted(before - now)} against the committed two-family set")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--base-model", default="mpnet-base", help="the new family's base model")
    # MPNet fine-tunes to chance at α = 2 already (12 layers compound the noise): a finer grid
    parser.add_argument("--alphas", default="0,0.25,0.5,1,2", help="noise levels (percent), comma-separated")
    parser.add_argument("--seeds", default="1", help="noise seeds, comma-separated")
    parser.add_argument("--work-dir", default="bench-out/third_family", help="models and token vectors")
    add_results_argument(parser, "third_family")
    args, files = parse_study_arguments(parser)

    from latentgeo.config.schema import load_params
    from latentgeo.geometry.family import profile_members

    params = load_params(args.params)
    if args.base_model in params.perturb.base_models:
        raise SystemExit(f"{args.base_model} is already a family of the profile: name another base model")
    start = time.perf_counter()
    results_dir = Path(args.results)
    if args.analyse_only:
        print(f"profile {params.profile}: the {args.base_model} family in {results_dir}")
        expected = []
    else:
        alphas = [float(a) for a in args.alphas.split(",") if a.strip()]
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        if 0.0 not in alphas or not seeds:
            raise SystemExit("--alphas must include 0 (the family's base) and --seeds name one or more seeds")
        members = profile_members([args.base_model], alphas, seeds, [], params.perturb.scope)
        work = Path(args.work_dir)
        print(f"profile {params.profile}: a third family from {args.base_model}, {len(members)} models "
              f"({list(members)}) x {len(params.finetune.tasks)} tasks; {args.workers} workers of one "
              f"thread; work dir {work}, results {results_dir}")
        record_cost(build_family(params, args.params, members, files, work, results_dir, args.workers), results_dir)
        expected = list(members)
    if any(results_dir.glob("cost-*.json")):
        print(f"\nCPU seconds per job (mean over the jobs of every run in {results_dir}):")
        print(mean_cost(results_dir).round(1).to_string())

    result = analyse(params, files, results_dir, args.base_model, expected)
    print_analysis(result, params.regression)
    figure = plot_out_of_family(result, params.regression, results_dir / FIGURE,
                                profile=params.profile, suite=params.finetune.suite)
    print(f"figure: {figure}")
    if args.csv:
        result["report"].to_csv(args.csv, index=False)
    print(f"\nwall {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
