"""Benchmark: the study at the paper's sample size, and what it would cost.

The default profile samples each model's latent space with the first 3,300 sequences of the corpus
(``data.corpus.n_sequences``: ~102K token vectors); the paper used 5,000 (~150K). This script
reruns the latent-space half of the study at another size, with the stages' own functions:

1. embed: every model of the profile on the first ``--n-sequences`` sequences
   (:func:`latentgeo.stages.embed.embed_file`, the profile's embed settings), one torch thread per
   worker; the first 3,300 sequences' vectors are compared with the committed embeddings (batches
   of other lengths pad differently, so they agree to float32 rounding, not bit for bit);
2. measure: every measure of the profile (:func:`latentgeo.stages.measures.measures_file` with
   :func:`~latentgeo.stages.measures.measures_arguments`: both quantizers, three quantizer seeds,
   the bins and sample-size sweep, stitchability onto the family's base model);
3. analyse: the regression stage itself (:func:`latentgeo.stages.regression.run_regression_stage`)
   on the committed fine-tuning scores and the new measures, into ``--work-dir``; then, per
   measure, r, partial r given the controls, Holm-adjusted partial p and leave-one-family-out RMSE
   beside the committed regression's, and how the models' values moved (rank correlation with the
   committed ones; mean change in units of their spread across models).

It prints the CPU seconds per model of embedding and measuring at this size: what the profile
would cost with it. Token vectors go to ``--work-dir`` (with the analysis's table, fits and
figures), the measures and costs (JSON) to ``--results``, by default ``bench/results/sample_size``,
where the run docs/results.md quotes is committed: ``--analyse-only`` reruns the analysis from them.
Embedding and measuring are resumable: a model whose output exists is not redone
(``--analyse-only`` skips both).

    python bench/sample_size.py [--params params.yaml] [--study .] [--n-sequences 5000] [--workers 2]
        [--work-dir bench-out/sample_size] [--results bench/results/sample_size] [--csv REPORT]
        [--analyse-only]

Needs the profile's models (``latentgeo repro perturb``) and corpus (not for ``--analyse-only``)
and its committed results (scores, table, regression), where ``--study``'s dvc.yaml puts them
(:mod:`study_files`). The work directory holds ~230 MB of token vectors per model at 5,000
sequences.
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
from study_jobs import embed_job, mean_cost, measure_job, record_cost, run_pool

COMPARED = ("r", "partial_r", "partial_p_holm")


def prefix_difference(new_npy: Path, committed_npy: Path) -> tuple[float, bool]:
    """Largest |difference| between the committed sample and the same sequences' rows of the new
    one (the committed sample is a prefix of the corpus order), and whether they are identical."""
    old = np.load(committed_npy, mmap_mode="r")
    new = np.load(new_npy, mmap_mode="r")[: old.shape[0]]
    return float(np.abs(np.asarray(new, np.float64) - old).max()), bool(np.array_equal(new, old))


def study_report(old_table, new_table, old_regression: dict, new_regression: dict) -> list[dict]:
    """One row per measure of the committed regression: r, partial r and Holm-adjusted partial p at
    both sizes, leave-one-family-out RMSE at both, the models' rank correlation between the sizes
    and their mean change in units of the committed values' SD across models."""
    from scipy import stats

    models = list(old_table["model"])
    new_table = new_table.set_index("model").loc[models]
    old_lofo = old_regression["leave_one_family_out"]["measures"]
    new_lofo = new_regression["leave_one_family_out"]["measures"]
    rows = []
    for name in old_regression["ranking"]:
        old, new = old_regression["measures"][name], new_regression["measures"].get(name, {})
        a = old_table[name].to_numpy(float)
        b = new_table[name].to_numpy(float)
        ok = np.isfinite(a) & np.isfinite(b)
        sd = a[ok].std(ddof=1)
        rows.append({
            "measure": name,
            **{f"{k}_profile": old.get(k) for k in COMPARED},
            **{k: new.get(k) for k in COMPARED},
            "lofo_rmse_profile": old_lofo.get(name, {}).get("rmse"),
            "lofo_rmse": new_lofo.get(name, {}).get("rmse"),
            "spearman_vs_profile": float(stats.spearmanr(a[ok], b[ok]).statistic),
            "shift_in_sd": float((b[ok] - a[ok]).mean() / sd) if sd > 0 else float("nan"),
        })
    return rows



def analyse(params, files, measures_dir: Path, out_dir: Path) -> dict:
    """The regression stage on the committed scores and the measures in ``measures_dir`` (its table,
    fits and figures written under ``out_dir``), beside the committed study: a dict of the ``stage``
    result, the committed ``old_regression``, the per-measure ``report`` (:func:`study_report`) and
    ``n_vectors``, the samples' sizes (token vectors per model)."""
    import pandas as pd

    from latentgeo.analysis.regression import read_table
    from latentgeo.stages.regression import run_regression_stage

    stage = run_regression_stage(params, files.finetune, measures_dir, out_dir / "table.csv",
                                 out_dir / "regression.json", out_dir / "plots", out_dir / "figures",
                                 out_dir / "patchiness_sweep.csv")
    old_regression = json.loads(files.regression.read_text())
    report = pd.DataFrame(study_report(read_table(files.table), stage.table, old_regression, stage.regression))
    sizes: dict[str, set[int]] = {}  # token vectors per sample, per family (one tokenizer each)
    for path in measures_dir.glob("*.json"):
        record = json.loads(path.read_text())
        sizes.setdefault(record["model"]["base_model"], set()).add(record["inputs"]["n"])
    if mixed := {family: sorted(n) for family, n in sizes.items() if len(n) > 1}:
        raise SystemExit(f"{measures_dir} mixes sample sizes {mixed} (runs at other --n-sequences?): "
                         "give each size its own --results")
    n_vectors = sorted(set().union(*sizes.values()))
    return {"stage": stage, "old_regression": old_regression, "report": report, "n_vectors": n_vectors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--n-sequences", type=int, default=5000)
    parser.add_argument("--work-dir", default="bench-out/sample_size",
                        help="token vectors, and the analysis's table, fits and figures")
    add_results_argument(parser, "sample_size")
    args, files = parse_study_arguments(parser)

    import pandas as pd

    from latentgeo.analysis.regression import holm_survivors
    from latentgeo.config.schema import load_params

    params = load_params(args.params)
    members = params.perturb.members()
    profile_n = params.data.corpus.n_sequences
    work, results_dir = Path(args.work_dir), Path(args.results)
    emb_dir, meas_dir = work / "embeddings", results_dir / "measures"
    missing = [m for m in members if not (files.models / m).is_dir()]
    if missing and not args.analyse_only:
        raise SystemExit(f"models missing: {missing}: run `latentgeo repro perturb` first")
    print(f"profile {params.profile}: {len(members)} models at {args.n_sequences} sequences "
          f"(the profile's: {profile_n}); {args.workers} workers of one thread; work dir {work}, "
          f"results {results_dir}")
    start = time.perf_counter()
    if not args.analyse_only:
        emb_dir.mkdir(parents=True, exist_ok=True)
        meas_dir.mkdir(parents=True, exist_ok=True)
        to_measure = [m for m in members if not (meas_dir / f"{m}.json").is_file()]
        need_vectors = set(to_measure) | {members[m].reference for m in to_measure}
        jobs = [{"model": m, "params": args.params, "model_dir": str(files.models / m),
                 "sequences": str(files.sequences), "out": str(emb_dir / f"{m}.npy"),
                 "n_sequences": args.n_sequences}
                for m in members if m in need_vectors and not (emb_dir / f"{m}.json").is_file()]
        cost = run_pool(embed_job, jobs, args.workers, "embed")
        jobs = [{"model": m, "params": args.params, "embeddings": str(emb_dir / f"{m}.npy"),
                 "reference": str(emb_dir / f"{members[m].reference}.npy"),
                 "out": str(meas_dir / f"{m}.json")}
                for m in to_measure]
        cost += run_pool(measure_job, jobs, args.workers, "measure")
        record_cost(cost, results_dir)
    if any(results_dir.glob("cost-*.json")):
        print(f"\nCPU seconds per model at {args.n_sequences} sequences (mean over models, every run in {results_dir}):")
        print(mean_cost(results_dir).round(1).to_string())

    diffs = {m: prefix_difference(emb_dir / f"{m}.npy", files.embeddings / f"{m}.npy")
             for m in members
             if (files.embeddings / f"{m}.npy").is_file() and (emb_dir / f"{m}.npy").is_file()}
    if diffs:
        worst = max(diffs, key=lambda m: diffs[m][0])
        print(f"\nthe committed {profile_n} sequences' vectors within the new samples: "
              f"{sum(same for _, same in diffs.values())} of {len(diffs)} identical, largest "
              f"|difference| {diffs[worst][0]:.2e} ({worst})")

    result = analyse(params, files, meas_dir, work)
    stage, old_regression, report = result["stage"], result["old_regression"], result["report"]
    print(f"token vectors per model: {result['n_vectors'][0]:,}-{result['n_vectors'][-1]:,}")
    pd.set_option("display.width", 220)
    settings = params.regression
    print(f"\nThe study at {args.n_sequences} sequences (score {settings.score}, controls "
          f"{settings.controls}; *_profile: the committed regression at {profile_n}; "
          "spearman_vs_profile: rank correlation of the models' values between the sizes; "
          "shift_in_sd: mean change over the committed values' SD across models):")
    print(report.round(3).to_string(index=False))
    now, before = holm_survivors(stage.regression), holm_survivors(old_regression)
    print(f"\npartial r surviving Holm at {SIGNIFICANCE}: {sorted(now)}")
    print(f"  gained {sorted(now - before)}, lost {sorted(before - now)} against the committed set")
    lofo_new = stage.regression["leave_one_family_out"]["baseline"]["rmse"]
    lofo_old = old_regression["leave_one_family_out"]["baseline"]["rmse"]
    print(f"leave-one-family-out RMSE of {settings.controls} alone: {lofo_new:.3f} "
          f"(committed {lofo_old:.3f}: the same scores, so it must not move)")
    print(f"\nsweep relations at {args.n_sequences} sequences:")
    print(stage.sweep.round(3).to_string(index=False))
    if args.csv:
        report.to_csv(args.csv, index=False)
    print(f"\nwall {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
