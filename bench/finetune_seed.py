"""Benchmark: how much of the downstream score is the fine-tuning seed, and what it does to the study.

The default profile fine-tunes each model once per task (``finetune.seed``: 0). The seed picks
the 400 training examples, the classification head's initial weights and the batch order, and
(through ``seed + 1``) the 200 scored validation examples. This script fine-tunes every model of
the profile on every task again at other seeds, with the stage's own function
(:func:`latentgeo.stages.finetune.finetune_task`, the profile's settings but the seed), and asks:

1. how far one model's score moves between seeds, against how far the models are apart: per task
   and for the suite averages, the SD of a single run (pooled over models: the root mean square
   of the seed-to-seed differences over √2) against the SD across the swept models, and the
   correlation of the models' scores between seeds;
2. what that does to the regression (:func:`latentgeo.analysis.regression.regress`, the profile's
   score, controls and grouping, on the committed measures): per measure r, partial r given the
   controls, Holm-adjusted partial p and leave-one-family-out RMSE at the committed seed, at each
   other seed, and on the mean score over all the seeds.

First it reruns the first model's tasks at the committed seed: the scores must come out as
committed (same machine, same code), which shows the runs are the stage's own.

The scores (one JSON per run, ``seed-<seed>/<model>/<task>.json``) go to ``--results``, by default
``bench/results/finetune_seed``, where the run docs/results.md quotes is committed:
``--analyse-only`` reruns the analysis from them in seconds. Resumable: a run whose JSON exists is
not redone (``--analyse-only`` runs none).

    python bench/finetune_seed.py [--params params.yaml] [--study .] [--seeds 1] [--workers 2]
        [--results bench/results/finetune_seed] [--csv REPORT] [--analyse-only]

Needs the profile's models (``latentgeo repro perturb``) and task data (``latentgeo data get``;
neither for ``--analyse-only``) and its committed results (scores, measures, regression), where
``--study``'s dvc.yaml puts them (:mod:`study_files`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from latentgeo.analysis.statistics import SIGNIFICANCE  # the study's level for Holm-adjusted p

from study_files import add_results_argument, add_study_arguments, parse_study_arguments
from study_jobs import finetune_job, run_pool

COMPARED = ("r", "partial_r", "partial_p_holm")


def score_noise(tables: dict[int, "pd.DataFrame"], scores: list[str]) -> "pd.DataFrame":
    """``tables``: the results table per fine-tuning seed, the committed seed first. Per score column: the SD of a single run (pooled over the swept models: RMS of the
    differences between two seeds / √2, averaged over the seed pairs), the SD across the swept
    models at the committed seed, their ratio, and the smallest Pearson r of the models' scores
    between two seeds."""
    import itertools

    import pandas as pd

    seeds = list(tables)  # the committed seed first
    swept = {s: t[t["alpha"].notna()].set_index("model") for s, t in tables.items()}
    models = list(swept[seeds[0]].index)
    rows = []
    for score in scores:
        values = {s: swept[s].loc[models, score].to_numpy(float) for s in seeds}
        pairs = list(itertools.combinations(seeds, 2))
        run_sd = float(np.mean([np.sqrt(np.mean((values[a] - values[b]) ** 2) / 2) for a, b in pairs]))
        model_sd = float(values[seeds[0]].std(ddof=1))
        r_min = min(float(np.corrcoef(values[a], values[b])[0, 1]) for a, b in pairs)
        rows.append({"score": score, "run_sd": run_sd, "model_sd": model_sd,
                     "ratio": run_sd / model_sd if model_sd > 0 else float("nan"),
                     "r_between_seeds_min": r_min,
                     "largest_change": float(max(np.abs(values[a] - values[b]).max() for a, b in pairs))})
    return pd.DataFrame(rows)


def mean_table(tables: dict[int, "pd.DataFrame"], scores: list[str]) -> "pd.DataFrame":
    """``tables`` as for :func:`score_noise`. The committed seed's table with every score column replaced by its mean over the seeds."""
    seeds = list(tables)  # the committed seed first
    base = tables[seeds[0]].set_index("model")
    out = base.copy()
    for score in scores:
        out[score] = np.mean([tables[s].set_index("model").loc[base.index, score].to_numpy(float)
                              for s in seeds], axis=0)
    return out.reset_index()


def analyse(params, files, results_dir: Path, seeds: list[int], measures_dir: Path | None = None) -> dict:
    """The study at the committed fine-tuning seed, at each of ``seeds`` (scores in
    ``results_dir/seed-<seed>``) and on the mean score over all of them, on the measures in
    ``measures_dir`` (default: the committed ones): a dict of the per-seed results ``tables``, the
    ``noise`` frame (:func:`score_noise`), the ``regressions`` (``seed <s>`` and ``mean``, each with
    its ``leave_one_family_out``; the committed seed's must be the committed regression) and the
    per-measure ``report``."""
    import pandas as pd

    from latentgeo.analysis.lofo import leave_one_family_out
    from latentgeo.analysis.regression import regress
    from latentgeo.analysis.table import SCORE_AVERAGE, SCORE_NORMALISED, build_results_table, score_columns

    committed_seed = params.finetune.seed
    models, tasks = params.perturb.model_ids(), list(params.finetune.tasks)
    measures_dir = measures_dir or files.measures
    tables = {committed_seed: build_results_table(files.finetune, measures_dir, models, tasks)}
    for seed in seeds:
        tables[seed] = build_results_table(results_dir / f"seed-{seed}", measures_dir, models, tasks)
    scores = [f"score_{t}" for t in tasks] + [c for c in (SCORE_AVERAGE, SCORE_NORMALISED)
                                                if c in score_columns(tables[committed_seed])]
    settings = params.regression
    fits = {f"seed {s}": tables[s] for s in sorted(tables)}
    fits["mean"] = mean_table(tables, scores)
    regressions = {}
    for name, table in fits.items():  # as the regression stage fits them
        regression = regress(table, settings.score, measures=settings.measures, group=settings.group,
                             controls=settings.controls)
        regression["leave_one_family_out"] = leave_one_family_out(
            table, settings.score, list(regression["measures"]), controls=settings.controls)
        regressions[name] = regression
    committed = json.loads(files.regression.read_text())
    reference = regressions[f"seed {committed_seed}"]
    for key in COMPARED:  # the committed seed's fit must be the committed regression
        for name, entry in committed["measures"].items():
            a, b = entry.get(key), reference["measures"][name].get(key)
            if a is not None and b is not None and not np.isclose(a, b, rtol=1e-9, atol=1e-12):
                raise SystemExit(f"the committed seed's regression differs from {files.regression}: "
                                 f"{name} {key} {a} vs {b}")
    rows = []
    for name in committed["ranking"]:
        row = {"measure": name}
        for fit, regression in regressions.items():
            entry = regression["measures"].get(name, {})
            lofo = regression["leave_one_family_out"]["measures"].get(name, {})
            row.update({f"{k} ({fit})": entry.get(k) for k in ("r", "partial_r")})
            row[f"holm ({fit})"] = entry.get("partial_p_holm")
            row[f"lofo ({fit})"] = lofo.get("rmse")
            row[f"closer ({fit})"] = lofo.get("better")
        rows.append(row)
    return {"tables": tables, "noise": score_noise(tables, scores), "regressions": regressions,
            "report": pd.DataFrame(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--seeds", default="1", help="other fine-tuning seeds, comma-separated")
    add_results_argument(parser, "finetune_seed")
    parser.add_argument("--measures-dir", help="the measures to refit on (default: the study's committed ones)")
    args, files = parse_study_arguments(parser)

    import pandas as pd

    from latentgeo.analysis.regression import holm_survivors
    from latentgeo.config.schema import load_params

    params = load_params(args.params)
    committed_seed = params.finetune.seed
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if committed_seed in seeds or not seeds:
        raise SystemExit(f"--seeds must name seeds other than the committed one ({committed_seed})")
    models, tasks = params.perturb.model_ids(), list(params.finetune.tasks)
    missing = [m for m in models if not (files.models / m).is_dir()]
    if missing and not args.analyse_only:
        raise SystemExit(f"models missing: {missing}: run `latentgeo repro perturb` first")
    results_dir = Path(args.results)
    print(f"profile {params.profile}: {len(models)} models x {len(tasks)} tasks at fine-tuning seeds "
          f"{seeds} (committed: {committed_seed}); {args.workers} workers of one thread; results {results_dir}")
    start = time.perf_counter()

    def job(model: str, task: str, seed: int) -> dict:
        return {"model": model, "task": task, "seed": seed, "params": args.params,
                "model_dir": str(files.models / model), "data_dir": str(files.tasks),
                "out": str(results_dir / f"seed-{seed}" / model / f"{task}.json")}

    check = [job(models[0], task, committed_seed) for task in tasks]
    jobs = check + [job(m, t, s) for s in seeds for m in models for t in tasks]
    todo = [j for j in jobs if not Path(j["out"]).is_file()]
    if not args.analyse_only:
        cost = run_pool(finetune_job, todo, args.workers, "finetune")
        if cost:
            cpu = pd.DataFrame(cost).groupby("task")["cpu_s"].agg(["mean", "min", "max"]).round(1)
            print(f"\nCPU seconds per run (mean, min, max):\n{cpu.to_string()}")
    same = []
    for j in check:
        if Path(j["out"]).is_file():
            new = json.loads(Path(j["out"]).read_text())["score"]
            old = json.loads((files.finetune / j["model"] / f"{j['task']}.json").read_text())["score"]
            same.append((j["task"], old, new))
    if same:
        verdict = "identical" if all(a == b for _, a, b in same) else "NOT identical (another machine?)"
        print(f"\n{models[0]} rerun at the committed seed {committed_seed}: {verdict} (committed vs rerun: "
              + "; ".join(f"{t} {a:.6f} vs {b:.6f}" for t, a, b in same) + ")")

    result = analyse(params, files, results_dir, seeds, Path(args.measures_dir) if args.measures_dir else None)
    pd.set_option("display.width", 220)
    print(f"\nHow much of the score is the fine-tuning seed (swept models; run_sd: the SD of one run, "
          f"model_sd: the SD across models at seed {committed_seed}):")
    print(result["noise"].round(4).to_string(index=False))
    settings = params.regression
    print(f"\nThe regression of {settings.score} on each measure at each fine-tuning seed and on the "
          f"mean over seeds (controls {settings.controls}; holm: Holm-adjusted partial p; lofo: "
          "leave-one-family-out RMSE; closer: of its left-out models, how many it predicts closer than the "
          "controls alone do):")
    print(result["report"].round(3).to_string(index=False))
    for fit, regression in result["regressions"].items():
        lofo = regression["leave_one_family_out"]["baseline"]["rmse"]
        control = regression.get("controls", {})
        r2 = control.get("r2") if isinstance(control, dict) else None
        print(f"{fit:>8}: partial r surviving Holm at {SIGNIFICANCE}: {sorted(holm_survivors(regression))}; "
              f"controls alone: R² {r2 if r2 is None else round(r2, 3)}, LOFO RMSE {lofo:.3f}")
    if args.csv:
        result["report"].to_csv(args.csv, index=False)
    print(f"\nwall {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
