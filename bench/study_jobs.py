"""The study's steps as worker jobs, and the pool the study benchmarks run them in.

Each job runs one model through one step with the stage's own function and the profile's
settings (``job["params"]``: the profile file), and returns the CPU seconds it took:
:func:`embed_job` (the embed stage's sample), :func:`measure_job` (every measure of the measures
stage), :func:`finetune_job` (one task, as the finetune stage runs it). :func:`run_pool` runs them
in fresh processes of one thread each, as the stages run; :func:`record_cost` keeps their CPU
seconds with a run's results and :func:`mean_cost` sums them up. Used by ``sample_size``,
``finetune_seed`` and ``third_family``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def embed_job(job: dict) -> dict:
    """One model's latent sample: ``job`` has model, params, model_dir, sequences, out and
    optionally n_sequences (default: the profile's ``data.corpus.n_sequences``)."""
    from latentgeo.config.schema import load_params
    from latentgeo.stages.embed import embed_file

    params = load_params(job["params"])
    settings = params.embed
    start = time.process_time()
    result = embed_file(job["model_dir"], job["sequences"], job["out"],
                        n_sequences=job.get("n_sequences", params.data.corpus.n_sequences),
                        layer=settings.layer, batch_size=settings.batch_size,
                        max_tokens_per_batch=settings.max_tokens_per_batch, progress=False)
    return {"model": job["model"], "cpu_s": time.process_time() - start, "n": result.n_tokens}


def measure_job(job: dict) -> dict:
    """Every measure of one model's sample: ``job`` has model, params, embeddings, reference (the
    family base's sample, for stitchability) and out."""
    from latentgeo.config.schema import load_params
    from latentgeo.stages.measures import measures_arguments, measures_file

    settings = load_params(job["params"]).measures
    start = time.process_time()
    measures_file(job["embeddings"], job["out"], reference=job["reference"], progress=False,
                  **measures_arguments(settings))
    return {"model": job["model"], "cpu_s": time.process_time() - start}


def finetune_job(job: dict) -> dict:
    """One model fine-tuned on one task: ``job`` has model, task, params, model_dir, data_dir, out
    and optionally seed (default: the profile's ``finetune.seed``)."""
    import datasets
    import transformers

    from latentgeo.config.schema import load_params
    from latentgeo.downstream.finetune import FinetuneSettings
    from latentgeo.stages.finetune import finetune_task

    datasets.disable_progress_bars()  # one line per run in the benchmark's output, not the stage's bars
    transformers.logging.set_verbosity_error()
    profile = load_params(job["params"]).finetune
    settings = FinetuneSettings.from_params(profile, seed=job.get("seed", profile.seed))
    start = time.process_time()
    result = finetune_task(job["model_dir"], job["task"], job["data_dir"], job["out"], settings,
                           show_progress=False)
    return {"model": job["model"], "task": job["task"], "seed": settings.seed, "score": result["score"],
            "cpu_s": time.process_time() - start}


def run_pool(task, jobs: list[dict], workers: int, step: str) -> list[dict]:
    """``task`` on every job in ``workers`` fresh processes of one thread each (spawned, so that
    they start with the stage launcher's allocator settings, as the stages do); one line per
    finished job. Returns the jobs' rows, each with ``step``."""
    from latentgeo.run_notebook import set_kernel_malloc_env

    if not jobs:
        return []
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # read by the workers' libraries
    set_kernel_malloc_env()  # read by glibc when each worker process starts
    start, done = time.perf_counter(), []
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for i, row in enumerate(pool.map(task, jobs), 1):
            done.append({**row, "step": step})
            what = " ".join(str(row[k]) for k in ("model", "task") if k in row)
            seed = f" seed {row['seed']}" if "seed" in row else ""
            score = f" score {row['score']:.4f}" if "score" in row else ""
            print(f"  {step:8s} [{i:3d}/{len(jobs)}] {what:55s} {row['cpu_s']:6.0f} CPU-s "
                  f"{time.perf_counter() - start:6.0f} s{seed}{score}", flush=True)
    return done


def record_cost(rows: list[dict], results: Path) -> None:
    """Keep a run's rows (:func:`run_pool`'s) in ``results/cost-<unix time>.json``; none: nothing."""
    if rows:
        results.mkdir(parents=True, exist_ok=True)
        (results / f"cost-{int(time.time())}.json").write_text(json.dumps(rows, indent=1))


def mean_cost(results: Path) -> "pd.Series":
    """CPU seconds of one job of each step (mean over the jobs), from every run's cost file in
    ``results``; where a job (step, model, task) ran twice, its last run counts."""
    import pandas as pd

    last = {}
    for path in sorted(results.glob("cost-*.json"), key=lambda p: int(p.stem.split("-")[1])):
        for row in json.loads(path.read_text()):
            last[(row["step"], row["model"], row.get("task"))] = row["cpu_s"]
    frame = pd.DataFrame([{"step": step, "cpu_s": cpu} for (step, _, _), cpu in last.items()])
    return frame.groupby("step", sort=False)["cpu_s"].mean()
