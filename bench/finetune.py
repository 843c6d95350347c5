"""Benchmark: the fine-tuning stage's training loop vs. padding to the maximum length.

Same model (minilm-l6), same examples, same settings (the profile's ``finetune`` section), one
process, one after the other per task:

* **stage**: what ``latentgeo finetune`` runs: dynamic padding per batch + length-grouped batches,
  in the profile's ``precision`` (the default profile: bf16 mixed precision);
* **baseline**: the plain ``run_glue.py`` loop: every sequence padded to ``max_length``, batches
  in uniform random order, float32;
* **stage fp32** (only when the profile's precision is not fp32): the stage's batches in float32,
  which splits the ratio into what padding/grouping and what the precision contribute.

Both run with the allocator settings the stages' notebook kernels get from the launcher
(``latentgeo.run_notebook.KERNEL_MALLOC_ENV``; the script restarts itself once to apply them).

Prints training examples/s of each and the ratio stage/baseline (target ≥ 1.5×), then estimates
the whole fine-tuning grid of the profile (models × tasks, with its train/eval sizes and epochs)
from the measured rates and per-run overheads.

Data: the offline suite (``--data-dir``, default: the finetune stage's, from dvc.yaml) if it exists, else
stand-ins of the same three shapes made from gensim's packaged Lee news corpus (80-word leads,
single sentences, consecutive sentence pairs).

    python bench/finetune.py [--params params.yaml] [--data-dir DIR] [--train-examples 192]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from latentgeo.run_notebook import set_kernel_malloc_env

from study_files import study_files

# The stages' kernels start with the launcher's allocator settings; glibc reads them at process
# start, so this benchmark restarts itself once with them (unless they are set already).
if set_kernel_malloc_env():
    os.execv(sys.executable, [sys.executable, *sys.argv])

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_t0 = time.perf_counter()
import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from latentgeo.config.schema import load_params  # noqa: E402
from latentgeo.downstream.datasets_io import TaskData, read_offline_task, subsample  # noqa: E402
from latentgeo.downstream.finetune import (  # noqa: E402
    FinetuneSettings,
    build_trainer,
    load_classifier,
    tokenize_split,
)
from latentgeo.models.registry import load_tokenizer  # noqa: E402
from latentgeo.downstream.tasks import get_task  # noqa: E402

IMPORT_S = time.perf_counter() - _t0
datasets.disable_progress_bars()  # the tables below are the output
transformers.logging.set_verbosity_error()  # no load reports for the new classification heads
MODEL = "minilm-l6"
PAPERMILL_START_S = 3.0  # per notebook run from the command line (see the offline facts)


def lee_standins(n: int, seed: int = 0) -> dict[str, TaskData]:
    """Three tasks shaped like the offline suite, from the Lee news corpus (gensim's test data)."""
    import gensim

    path = Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
    docs = [d.strip() for d in path.read_text(encoding="latin-1").splitlines() if d.strip()]
    sentences = [[s for s in re.split(r"(?<=[.!?])\s+", d) if len(s.split()) >= 5] for d in docs]
    leads = [" ".join(d.split()[:80]) for d in docs]
    singles = [s for doc in sentences for s in doc]
    pairs = [(a, b) for doc in sentences for a, b in zip(doc[::2], doc[1::2])]
    rng = np.random.default_rng(seed)

    def make(task: str, columns: dict[str, list[str]], num_labels: int) -> TaskData:
        size = len(next(iter(columns.values())))
        idx = rng.permutation(size)[: 2 * n]
        n_train = min(n, len(idx) * 2 // 3)  # only 300 leads: keep a third for evaluation
        cols = {k: [v[i] for i in idx] for k, v in columns.items()}
        cols["label"] = [int(i) % num_labels for i in idx]  # labels do not affect throughput
        ds = datasets.Dataset.from_dict(cols)
        return TaskData(get_task(task), ds.select(range(n_train)),
                        {"validation": ds.select(range(n_train, len(ds)))})

    return {
        "bbc-topic": make("bbc-topic", {"text": leads}, 5),
        "wiki-acceptability": make("wiki-acceptability", {"sentence": singles}, 2),
        "wiki-adjacency": make("wiki-adjacency", {"sentence1": [a for a, _ in pairs],
                                                  "sentence2": [b for _, b in pairs]}, 2),
    }


def measure(data: TaskData, settings: FinetuneSettings, *, stage_loop: bool) -> dict[str, float]:
    """Set-up, training and evaluation times of one run: the stage's batches (dynamic padding,
    length grouping) or padded, ungrouped ones, in ``settings.precision``."""
    task = data.task
    start = time.perf_counter()
    tokenizer = load_tokenizer(MODEL)
    pad = not stage_loop
    train = tokenize_split(data.train, tokenizer, task, settings.max_length, pad_to_max_length=pad)
    evaluation = tokenize_split(data.validation["validation"], tokenizer, task, settings.max_length,
                                pad_to_max_length=pad)
    classifier = load_classifier(MODEL, task, settings.seed)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = build_trainer(classifier, tokenizer, train, task, settings, scratch,
                                group_by_length=stage_loop, show_progress=False)
        setup_s = time.perf_counter() - start
        t = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        trainer.evaluate(eval_dataset=evaluation)
        eval_s = time.perf_counter() - t
    lengths = [sum(m) for m in train["attention_mask"]]
    return {
        "setup_s": setup_s,
        "train_ex_per_s": len(train) * settings.epochs / train_s,
        "eval_ex_per_s": len(evaluation) / eval_s,
        "mean_tokens": float(np.mean(lengths)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data-dir", default=str(study_files().tasks))
    parser.add_argument("--train-examples", type=int, default=None,
                        help="training examples per timed run, one epoch (default: the profile's "
                             "train_size; length grouping works on groups of 4 batches and more, so "
                             "fewer examples understate it)")
    parser.add_argument("--max-length", type=int, default=None,
                        help="override the profile's max_length (e.g. 128, the paper's)")
    parser.add_argument("--precision", default=None,
                        help="override the profile's finetune.precision for the stage's loop")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's own). On a 2-core machine shared "
                             "with other jobs, 1 thread avoids OpenMP threads stalling each other")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    params = load_params(args.params)
    ft = params.finetune
    n_timed = args.train_examples or ft.train_size or 600
    length = {"max_length": args.max_length} if args.max_length else {}
    precision = {"precision": args.precision} if args.precision else {}
    timed = FinetuneSettings.from_params(ft, epochs=1, train_size=n_timed, eval_size=n_timed,
                                         **length, **precision)
    timed_fp32 = dataclasses.replace(timed, precision="fp32")
    offline = Path(args.data_dir)
    if offline.is_dir():
        source = f"offline suite in {offline}"
        suite = {name: subsample(read_offline_task(get_task(name), offline), timed.train_size,
                                 timed.eval_size, timed.seed) for name in ft.tasks}
    else:
        source = "Lee-corpus stand-ins (no offline suite found)"
        suite = {name: d for name, d in lee_standins(n_timed).items() if name in ft.tasks}
    print(f"model {MODEL}, {source}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"transformers {transformers.__version__}; load average {os.getloadavg()[0]:.1f}; "
          f"MALLOC_MMAP_MAX_={os.environ.get('MALLOC_MMAP_MAX_')} (the stages' allocator settings)")
    print(f"settings: batch {timed.batch_size}, max_length {timed.max_length}, "
          f"stage precision {timed.precision} (baseline fp32), "
          f"{n_timed} training examples, 1 epoch per timed run\n")

    # A throw-away run first, so that one-off start-up costs do not land on either side.
    warm = next(iter(suite.values()))
    measure(TaskData(warm.task, warm.train.select(range(32)), warm.validation), timed, stage_loop=True)

    split = timed.precision != "fp32"  # also time the stage's batches in float32
    header = (f"{'task':20s} {'tokens/ex':>9s} {'stage ex/s':>10s} "
              + (f"{'stage fp32':>10s} " if split else "") + f"{'padded ex/s':>11s} {'ratio':>6s}")
    print(header)
    print("-" * len(header))
    results = {}
    for name, data in suite.items():
        stage = measure(data, timed, stage_loop=True)
        stage_fp32 = measure(data, timed_fp32, stage_loop=True) if split else stage
        base = measure(data, timed_fp32, stage_loop=False)
        results[name] = (stage, stage_fp32, base)
        print(f"{name:20s} {stage['mean_tokens']:9.1f} {stage['train_ex_per_s']:10.1f} "
              + (f"{stage_fp32['train_ex_per_s']:10.1f} " if split else "")
              + f"{base['train_ex_per_s']:11.1f} {stage['train_ex_per_s'] / base['train_ex_per_s']:6.2f}")

    def total_s(which: int) -> float:
        return sum(len(suite[n].train) / r[which]["train_ex_per_s"] for n, r in results.items())

    stage_total, fp32_total, base_total = total_s(0), total_s(1), total_s(2)
    print(f"{'suite (time-weighted)':20s} {'':9s} {'':10s} " + (f"{'':10s} " if split else "")
          + f"{'':11s} {base_total / stage_total:6.2f}   (target ≥ 1.5)")
    if split:
        print(f"  of which dynamic padding + length grouping {base_total / fp32_total:.2f}×, "
              f"{timed.precision} {fp32_total / stage_total:.2f}×")

    if args.max_length:
        print(f"\n(grid estimate skipped: --max-length {args.max_length} is not the profile's)")
        return
    n_models = len(params.perturb.members())
    print(f"\ngrid estimate for profile {params.profile!r}: {n_models} models × {len(ft.tasks)} tasks, "
          f"epochs {ft.epochs}, train_size {ft.train_size}, eval_size {ft.eval_size}, "
          f"max_length {ft.max_length}")
    total = 0.0
    for name, (stage, _, _) in results.items():
        n_train = ft.train_size or len(suite[name].train)
        n_eval = ft.eval_size or len(suite[name].validation["validation"])
        per_run = (PAPERMILL_START_S + IMPORT_S + stage["setup_s"]
                   + n_train * ft.epochs / stage["train_ex_per_s"] + n_eval / stage["eval_ex_per_s"])
        total += n_models * per_run
        print(f"  {name:20s} {per_run:6.1f} s per model "
              f"(train {n_train * ft.epochs / stage['train_ex_per_s']:.1f} s, "
              f"eval {n_eval / stage['eval_ex_per_s']:.1f} s, overhead "
              f"{PAPERMILL_START_S + IMPORT_S + stage['setup_s']:.1f} s)")
    print(f"  whole grid: {total / 60:.1f} min (target ~15 min)")


if __name__ == "__main__":
    main()
