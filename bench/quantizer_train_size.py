"""Benchmark: what the quantizers' training-set size costs, and what it changes in the study.

The measures stage trains every quantizer on a seeded subsample of each model's token vectors
(``measures.train_size``; the paper trained on all of them) and encodes every vector. Training LSQ
is the largest single cost of the default run and grows with the training set, and the level of
every cell measure moves with it. What matters for the study is whether its *conclusions* move:
each measure's r with the suite score, its partial r given the noise level, which measures
survive Holm, how well each predicts the other family. This script measures both sides on the
profile's own embeddings:

- for each model, quantizer and training-set size: the code-only cell measures (all but
  point_dist, computed as the sweep computes them:
  :func:`latentgeo.geometry.measures.sweep.measure_point`), means over the profile's quantizer
  seeds, and the CPU seconds that training, encoding and measuring took;
- for each (quantizer, size): the regression stage's analysis (:func:`regress` and
  :func:`leave_one_family_out`, with the profile's score and controls) on the committed results
  table with that quantizer's columns replaced by the values at this size (point_dist stays the
  committed one), beside the committed regression's numbers; and how the models' values moved
  (their rank correlation with the committed ones, the mean shift in units of their spread).

At the profile's own size the recomputed PQ values must equal the committed ones when the
embeddings are the pipeline's: the script prints the largest difference, and how many embedding
files match the hashes of the committed dvc.lock. LSQ at the profile's size is not retrained
unless listed (three LSQ trainings cost ~2 CPU-minutes per model): the committed values stand.

Each run writes every model's measured values and costs to ``--results`` (``rows-<time>.json``),
by default ``bench/results/quantizer_train_size``, where the runs docs/results.md quotes are
committed; ``--analyse-only`` reanalyses every rows file there in seconds (runs add up: the
profile's size, measured by each, is the check).

    python bench/quantizer_train_size.py [--params params.yaml] [--study .] [--pq-sizes 10240,16384,32768,all]
        [--lsq-sizes 10240] [--models ID ...] [--workers 2] [--csv REPORT]
        [--results bench/results/quantizer_train_size] [--analyse-only]

Needs the profile's embeddings (``latentgeo repro embed``; not for ``--analyse-only``) and its
committed results (table, measures), where ``--study``'s dvc.yaml puts them (:mod:`study_files`). ``all``: every vector (PQ's k-means still samples
256 per centroid itself, 65,536 at k = 256, as FAISS does by default).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from latentgeo.analysis.statistics import SIGNIFICANCE  # the study's level for Holm-adjusted p

from study_files import add_results_argument, add_study_arguments, parse_study_arguments

SIZE_ALL = "all"


def parse_sizes(text: str) -> list[int | str]:
    """'10240,16384,all' -> [10240, 16384, 'all'] (empty string: no sizes)."""
    out: list[int | str] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        out.append(SIZE_ALL if part == SIZE_ALL else int(part))
    return out


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def committed_md5s(root: Path) -> dict[str, str]:
    """Every output path → md5 recorded in the committed dvc.lock of the checkout at ``root``
    (HEAD's: a run of the pipeline on this machine rewrites the working copy's)."""
    import subprocess

    import yaml

    shown = subprocess.run(["git", "-C", str(root), "show", "HEAD:dvc.lock"], capture_output=True, text=True)
    lock = yaml.safe_load(shown.stdout if shown.returncode == 0 else (root / "dvc.lock").read_text())
    out = {}
    for stage in lock.get("stages", {}).values():
        for entry in stage.get("outs", []) or []:
            out[entry["path"]] = entry.get("md5")
    return out


def measure_model(job: dict) -> dict:
    """In a worker: the code-only cell measures of one model's sample for every (quantizer, size)
    of ``job["runs"]``, with the CPU seconds each took (one FAISS thread: OMP_NUM_THREADS=1)."""
    from latentgeo.geometry.measures.sweep import SweepPoint, measure_point

    X = np.load(job["embeddings"]).astype(np.float32, copy=False)
    point = SweepPoint(job["m"], job["nbits"])
    rows = []
    for kind, size in job["runs"]:
        start = time.process_time()
        values = measure_point(X, point, kind=kind, train_size=size, seeds=job["seeds"])
        rows.append({"model": job["model"], "quantizer": kind, "size": size,
                     "cpu_s": time.process_time() - start, "values": values})
    return {"model": job["model"], "rows": rows}


def measure_models(models, runs, embeddings_dir, m, nbits, seeds, workers) -> list[dict]:
    """:func:`measure_model` for every model, in ``workers`` processes of one FAISS thread."""
    os.environ["OMP_NUM_THREADS"] = "1"  # read by the workers' OpenMP at their FAISS import
    jobs = [{"model": model, "embeddings": str(Path(embeddings_dir) / f"{model}.npy"), "m": m,
             "nbits": nbits, "seeds": seeds, "runs": runs} for model in models]
    start = time.perf_counter()
    rows = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for i, done in enumerate(pool.map(measure_model, jobs), 1):
            rows += done["rows"]
            print(f"  [{i:2d}/{len(jobs)}] {done['model']:45s} {time.perf_counter() - start:7.0f} s",
                  flush=True)
    return rows


def variant_table(table, kind: str, values_by_model: dict[str, dict], names):
    """The results table with ``kind``'s code-only measure columns replaced by other values."""
    out = table.copy()
    for name in names:
        column = f"{kind}_{name}"
        out[column] = [values_by_model[m][name] for m in out["model"]]
    return out


def analyse(table, settings, measures: list[str]) -> dict:
    """The regression stage's per-measure numbers on ``table``: r, partial r, Holm-adjusted
    partial p, and the leave-one-family-out RMSE (with the controls alone beside it)."""
    from latentgeo.analysis.lofo import leave_one_family_out
    from latentgeo.analysis.regression import regress

    result = regress(table, settings.score, measures=settings.measures, group=settings.group,
                     controls=settings.controls)
    lofo = leave_one_family_out(table, settings.score, list(result["measures"]),
                                controls=settings.controls)
    out = {}
    for name in measures:
        entry = result["measures"][name]
        out[name] = {"r": entry["r"], "partial_r": entry.get("partial_r"),
                     "partial_p_holm": entry.get("partial_p_holm"),
                     "lofo_rmse": _lofo_rmse(lofo, name)}
    out["_controls_lofo_rmse"] = _lofo_rmse(lofo, None)
    return out


def _lofo_rmse(lofo: dict, measure: str | None) -> float | None:
    """A measure's leave-one-family-out RMSE (None: the controls-only baseline's)."""
    entry = lofo.get("baseline") if measure is None else (lofo.get("measures") or {}).get(measure)
    value = (entry or {}).get("rmse")
    return None if value is None else float(value)


def relative_difference(new: float, old: float) -> float:
    return abs(new - old) / max(1e-12, abs(old))


def study_report(table, settings, models: list[str], committed: dict, rows: list[dict]) -> list[dict]:
    """One row per (quantizer, size, code-only measure): the measure's r, partial r, Holm-adjusted
    partial p and leave-one-family-out RMSE with the values at this size, the committed
    regression's beside them (``*_profile``), and how the models' values moved against the
    committed ones (rank correlation; mean shift in units of their SD across models)."""
    from scipy import stats

    from latentgeo.geometry.measures.sweep import SWEEP_MEASURES

    names = list(SWEEP_MEASURES)
    keys = ("r", "partial_r", "partial_p_holm", "lofo_rmse")
    reference = analyse(table, settings, [f"{k}_{n}" for k in ("pq", "lsq") for n in names])
    out = []
    for kind, size in dict.fromkeys((r["quantizer"], r["size"]) for r in rows):
        by_model = {r["model"]: r["values"] for r in rows
                    if r["quantizer"] == kind and r["size"] == size}
        variant = analyse(variant_table(table, kind, by_model, names), settings,
                          [f"{kind}_{n}" for n in names])
        for n in names:
            col = f"{kind}_{n}"
            new = np.array([by_model[m][n] for m in models])
            old = np.array([committed[m][kind][n] for m in models])
            out.append({
                "measure": col, "size": str(size),
                "spearman_vs_profile": float(stats.spearmanr(new, old).statistic),
                "shift_in_sd": float((new - old).mean() / old.std(ddof=1)),
                **{k: variant[col][k] for k in keys},
                **{f"{k}_profile": reference[col][k] for k in keys},
            })
    return out


def read_rows(results_dir: Path, models: list[str]) -> list[dict]:
    """Every row of the ``rows-*.json`` files in ``results_dir`` (oldest first) for ``models``."""
    paths = sorted(results_dir.glob("rows-*.json"))
    if not paths:
        raise SystemExit(f"no rows-*.json in {results_dir}: run without --analyse-only")
    return [row for path in paths for row in json.loads(path.read_text()) if row["model"] in models]


def check_point(rows: list[dict], committed: dict, profile_size: int) -> list[float]:
    """Relative differences between the PQ values recomputed at the profile's training size and
    the committed measures (every code-only measure of every model measured there)."""
    from latentgeo.geometry.measures.sweep import SWEEP_MEASURES

    return [relative_difference(r["values"][n], committed[r["model"]]["pq"][n])
            for r in rows if r["quantizer"] == "pq" and r["size"] == profile_size
            for n in SWEEP_MEASURES]


def cost_by_size(rows: list[dict]) -> "pd.Series":
    """CPU seconds per model (training, encoding and code measures, all quantizer seeds), mean over
    the models, per (quantizer, size)."""
    import pandas as pd

    cost = pd.DataFrame([{k: r[k] for k in ("quantizer", "size", "cpu_s")} for r in rows])
    cost["size"] = cost["size"].astype(str)
    return cost.groupby(["quantizer", "size"], sort=False)["cpu_s"].mean()


def analyse_rows(params, files, rows: list[dict]) -> dict:
    """The study at each (quantizer, size) of ``rows`` (every model of the profile): a dict of the
    per-measure ``report`` (:func:`study_report`), ``cost`` (:func:`cost_by_size`), the ``check``
    differences (:func:`check_point`) and ``controls_lofo_rmse``."""
    import pandas as pd

    from latentgeo.analysis.regression import read_table

    models = params.perturb.model_ids()
    committed = {m: json.loads((files.measures / f"{m}.json").read_text()) for m in models}
    table = read_table(files.table)
    settings = params.regression
    return {
        "report": pd.DataFrame(study_report(table, settings, models, committed, rows)),
        "cost": cost_by_size(rows),
        "check": check_point(rows, committed, params.measures.train_size),
        "controls_lofo_rmse": analyse(table, settings, [])["_controls_lofo_rmse"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_study_arguments(parser)
    parser.add_argument("--pq-sizes", default="10240,16384,32768,all")
    parser.add_argument("--lsq-sizes", default="10240")
    parser.add_argument("--models", nargs="*", help="model ids (default: every member)")
    add_results_argument(parser, "quantizer_train_size")
    args, files = parse_study_arguments(parser)

    import pandas as pd

    from latentgeo.config.schema import load_params
    from latentgeo.geometry.measures.compute import quantizer_seed_list

    params = load_params(args.params)
    ms = params.measures
    profile_size = ms.train_size
    seeds = quantizer_seed_list(ms.seed, ms.quantizer_seeds)
    models = args.models or params.perturb.model_ids()
    results_dir = Path(args.results)
    print(f"profile {params.profile}: {len(models)} models, m = {ms.m}, nbits = {ms.nbits}, "
          f"quantizer seeds {seeds}, profile train_size = {profile_size}; results {results_dir}")
    start = time.perf_counter()
    if args.analyse_only:
        rows = read_rows(results_dir, models)
    else:
        missing = [m for m in models if not (files.embeddings / f"{m}.npy").is_file()]
        if missing:
            raise SystemExit(f"embeddings missing for {missing}: run `latentgeo repro embed` first")
        lock = committed_md5s(files.root)
        same = [file_md5(files.embeddings / f"{m}.npy") == lock.get(files.lock_key(files.embeddings / f"{m}.npy"))
                for m in models]
        print(f"embeddings identical to dvc.lock's: {sum(same)} of {len(models)}")
        sizes = {"pq": parse_sizes(args.pq_sizes), "lsq": parse_sizes(args.lsq_sizes)}
        sizes["pq"] = list(dict.fromkeys([profile_size, *sizes["pq"]]))  # the check point first
        runs = [(kind, size) for kind in ("pq", "lsq") for size in sizes[kind]]
        print(f"runs per model: {runs}; {args.workers} worker processes, one FAISS thread each")
        rows = measure_models(models, runs, files.embeddings, ms.m, ms.nbits, seeds, args.workers)
        results_dir.mkdir(parents=True, exist_ok=True)
        (results_dir / f"rows-{int(time.time())}.json").write_text(json.dumps(rows, indent=1))

    if set(models) != set(params.perturb.model_ids()):
        print(f"\nCPU seconds per model, mean over models:\n{cost_by_size(rows).round(1).to_string()}")
        print("\n--models is a subset of the profile's models: the study's analysis needs them all")
        return
    result = analyse_rows(params, files, rows)
    print("\nCPU seconds per model (training, encoding and code measures, all quantizer seeds), "
          "mean over models:")
    print(result["cost"].round(1).to_string())
    if result["check"]:
        print(f"\nPQ at the profile's size against the committed measures: largest relative "
              f"difference {max(result['check']):.2e}")
    settings = params.regression
    report = result["report"]
    pd.set_option("display.width", 200)
    print(f"\nThe study at each training-set size (score {settings.score}, controls "
          f"{settings.controls}; *_profile: the committed regression at train_size = "
          f"{profile_size}; spearman_vs_profile: rank correlation of the models' values with "
          "the committed ones; shift_in_sd: mean change over the committed values' SD across "
          "models):")
    print(report.round(3).to_string(index=False))
    survives = report.assign(holm=report["partial_p_holm"] < SIGNIFICANCE,
                             holm_profile=report["partial_p_holm_profile"] < SIGNIFICANCE)
    print(f"\nmeasures whose partial r survives Holm at {SIGNIFICANCE}, per quantizer and size:")
    quantizer = survives["measure"].str.split("_").str[0]
    for (kind, size), group in survives.groupby([quantizer, "size"], sort=False):
        now = set(group.loc[group["holm"], "measure"])
        before = set(group.loc[group["holm_profile"], "measure"])
        change = "the committed set" if now == before else (
            f"committed: {sorted(before)}; gained {sorted(now - before)}, lost {sorted(before - now)}")
        print(f"  {kind} {size:>6}: {sorted(now)} ({change})")
    if args.csv:
        report.to_csv(args.csv, index=False)
    print(f"\nleave-one-family-out RMSE of {settings.controls} alone: {result['controls_lofo_rmse']:.3f}")
    print(f"wall {time.perf_counter() - start:.0f} s; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
