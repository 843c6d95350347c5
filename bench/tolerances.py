"""Benchmark: how far results move when the floating-point path changes (the stated tolerances).

Another machine runs the same code with other vector units (AVX-512 vs AVX2 kernels in ATen and
oneDNN), another BLAS code path and another thread count: the token vectors change in their last
float32 bits and every downstream number moves a little. This script reproduces such changes on
one machine, with switches the libraries honour, and prints how far each quantity moves:

    conditions (each in a fresh process, switches set before torch loads)
      baseline       as the stages run
      aten-default   ATEN_CPU_CAPABILITY=default: ATen's non-vectorised kernels (layer norm,
                     softmax, GELU, reductions) instead of AVX2/AVX-512
      onednn-avx     ONEDNN_MAX_CPU_ISA=AVX: oneDNN's matrix products without AVX2/FMA
      mkl-cbwr       MKL_CBWR=COMPATIBLE: MKL's bit-reproducible (slower) code path
      threads-1      one torch thread instead of all cores
      deterministic  torch.use_deterministic_algorithms(True) (fine-tuning only)
      fp32           fine-tuning in float32 instead of the profile's bf16 mixed precision

    python bench/tolerances.py embed    [--models 0 4 minilm-l6-untrained-s1] [--params params.yaml]
        token vectors of the default profile's sequences and every measure of them, per
        condition, against the baseline; and the baseline against the committed measures
        (results/measures/...: the machine that made them)
    python bench/tolerances.py noise    [--models 0 4] [--scales 1e-7 1e-6] [--repeats 3] [--quantizers lsq]
        every measure after relative Gaussian noise on the baseline vectors: X·(1 + s·N(0, 1))
    python bench/tolerances.py seeds    [--models 0 4] [--seeds 1234 0 1 2 3] [--quantizers pq lsq]
        the quantizer measures of the baseline vectors trained with other seeds: the scale of the
        uncertainty when a float-path change sends training to another local optimum
    python bench/tolerances.py finetune [--cells 0:bbc-topic minilm-l6-untrained-s1:wiki-adjacency]
        score, validation loss and training losses per condition, and the committed ones
    python bench/tolerances.py stitching [--encoders minilm-l6 paraphrase-minilm-l3 wordllama]
        the stitching stage (the profile's texts, anchors and methods) on a subset of its encoders,
        per condition; and the first condition against the committed rows of the same pairs
    python bench/tolerances.py regression [--tolerances tolerances/default.yaml] [--draws 40]
        the regression stage on the committed results with every score and measure moved by
        U(±its stated tolerance): how far r, partial r, p-values, CIs and the plot tables move
    python bench/tolerances.py smoke    [--conditions baseline aten-default]
        the smoke profile end to end (`make repro PROFILE=smoke` in a copy of the working tree)
        per condition; every result value, grouped by file and key, against the first condition

Each mode prints, per quantity, the largest absolute and relative change seen. The tolerance
files (tolerances/*.yaml) state these numbers times a safety factor; docs/reproducibility.md
records a run of every mode. Work files go to a temporary folder (``--work DIR`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from study_files import stage_parameters, study_files

ROOT = Path(__file__).resolve().parents[1]
FILES = study_files(ROOT)  # the pipeline's paths, from dvc.yaml
CONDITIONS = {
    "baseline": {},
    "aten-default": {"ATEN_CPU_CAPABILITY": "default"},
    "onednn-avx": {"ONEDNN_MAX_CPU_ISA": "AVX"},
    "mkl-cbwr": {"MKL_CBWR": "COMPATIBLE"},
    "threads-1": {"BENCH_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"},
    "deterministic": {"BENCH_DETERMINISTIC": "1"},
    "fp32": {"BENCH_PRECISION": "fp32"},
    # float32 fine-tuning on another float path: bf16 autocast is emulated (very slow) on CPUs
    # without AVX512-BF16/AMX, and the trajectory's sensitivity to the last bits is what is measured
    "fp32-aten-default": {"BENCH_PRECISION": "fp32", "ATEN_CPU_CAPABILITY": "default"},
    "fp32-onednn-avx": {"BENCH_PRECISION": "fp32", "ONEDNN_MAX_CPU_ISA": "AVX"},
}
FROZEN_SRC: Path | None = None  # set by main(): a copy of src/ taken when the run starts
EMBED_CONDITIONS = ["baseline", "aten-default", "onednn-avx", "mkl-cbwr", "threads-1"]
FINETUNE_CONDITIONS = ["baseline", "aten-default", "onednn-avx", "threads-1", "deterministic", "fp32"]


# ------------------------------------------------------------------ the worker (one process)


def _apply_torch_switches() -> None:
    """Switches that are calls rather than environment variables, made before any work."""
    import torch

    threads = os.environ.get("BENCH_TORCH_THREADS")
    if threads:
        import latentgeo.geometry.embed as embed_module

        pick = embed_module.pick_device

        def pick_then_limit(device=None):  # the stage sets all cores; take them back
            chosen = pick(device)
            torch.set_num_threads(int(threads))
            return chosen

        embed_module.pick_device = pick_then_limit
        torch.set_num_threads(int(threads))
    if os.environ.get("BENCH_DETERMINISTIC"):
        torch.use_deterministic_algorithms(True)


def worker(args: list[str]) -> None:
    _apply_torch_switches()
    action, *rest = args
    if action == "embed":
        from latentgeo.stages.embed import embed_file

        model, sequences, out, n = rest
        embed_file(model, sequences, out, n_sequences=int(n), layer=-1, batch_size=32,
                   max_tokens_per_batch=8192, progress=False)
    elif action == "measures":
        from latentgeo.config.schema import load_params
        from latentgeo.stages.measures import measures_file

        from latentgeo.stages.measures import measures_arguments

        emb, ref, out, params_file = rest
        # the measures stage's own call (notebooks/04_measures.ipynb): every setting of the profile
        measures_file(emb, out, reference=ref, **measures_arguments(load_params(params_file).measures),
                      overwrite=True, progress=False)
    elif action == "finetune":
        from latentgeo.config.schema import load_params
        from latentgeo.downstream.finetune import FinetuneSettings
        from latentgeo.stages.finetune import finetune_task

        model, task, data_dir, out, params_file = rest
        params = load_params(params_file)
        overrides = {"precision": os.environ["BENCH_PRECISION"]} if os.environ.get("BENCH_PRECISION") else {}
        settings = FinetuneSettings.from_params(params.finetune, **overrides)
        finetune_task(model, task, data_dir, out, settings, overwrite=True, show_progress=False)
    elif action == "stitching":
        from latentgeo.config.schema import load_params
        from latentgeo.stages.stitching import run_stitching_stage

        params_file, encoders, tasks_dir, corpus_file, out_dir = rest
        params = load_params(params_file)
        cfg = params.stitching.model_copy(update={"encoders": encoders.split(",")})
        params = params.model_copy(update={"stitching": cfg})
        run_stitching_stage(params, tasks_dir, out_dir, Path(out_dir) / "figures", corpus_file, progress=False)
    else:
        raise SystemExit(f"unknown worker action {action}")


def in_process(condition: str, *args: str, out: Path | None = None) -> float:
    """Run one worker action in a fresh process under ``condition``; returns its wall seconds.
    With ``out`` given and already there (a kept ``--work`` folder), nothing is rerun: 0 s."""
    if out is not None and out.exists():
        return 0.0
    env = {**os.environ, **CONDITIONS[condition], "TOKENIZERS_PARALLELISM": "false"}
    if FROZEN_SRC is not None:  # every worker runs the same copy of the package
        env["PYTHONPATH"] = str(FROZEN_SRC)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        env[var] = "1"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"worker {args[0]} under {condition} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


# ------------------------------------------------------------------------- shared helpers


def leaves(record, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON record by dotted path (lists by index)."""
    out: dict[str, float] = {}
    items = record.items() if isinstance(record, dict) else enumerate(record) if isinstance(record, list) else ()
    for key, value in items:
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, (dict, list)):
            out.update(leaves(value, path))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[path] = float(value)
    return out


class Spread:
    """Largest |change| and |relative change| per quantity, over everything recorded."""

    def __init__(self):
        self.abs: dict[str, float] = defaultdict(float)
        self.rel: dict[str, float] = defaultdict(float)
        self.seen: dict[str, int] = defaultdict(int)

    def add(self, name: str, old: float, new: float) -> None:
        self.seen[name] += 1
        if math.isnan(old) or math.isnan(new):
            return
        delta = abs(new - old)
        self.abs[name] = max(self.abs[name], delta)
        if old != 0:
            self.rel[name] = max(self.rel[name], delta / abs(old))

    def print(self, title: str) -> None:
        print(f"\n{title}")
        print(f"  {'quantity':<44} {'max |Δ|':>10} {'max |Δ|/|x|':>12} {'n':>5}")
        for name in sorted(self.seen):
            print(f"  {name:<44} {self.abs[name]:>10.3g} {self.rel[name]:>12.3g} {self.seen[name]:>5}")


def compare_records(spread: Spread, old: dict, new: dict, skip=("inputs.", "model.")) -> None:
    a, b = leaves(old), leaves(new)
    for key in sorted(set(a) & set(b)):
        if not key.startswith(skip):
            spread.add(key, a[key], b[key])


def vector_changes(base: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """max |Δ| over elements, max and median over rows of ‖Δ‖/‖x‖ (float64)."""
    a, b = base.astype(np.float64), other.astype(np.float64)
    rows = np.linalg.norm(b - a, axis=1) / np.linalg.norm(a, axis=1)
    return float(np.abs(b - a).max()), float(rows.max()), float(np.median(rows))


def load_profile(path: str):
    from latentgeo.config.schema import load_params

    return load_params(path)


def resolve_model(token: str | float, params) -> "Member":
    """A model of the profile named on the command line: a ``model_id`` of its ``members``
    (e.g. ``minilm-l6-untrained-s1``), or a bare α for the first family's seed-1 perturbed model."""
    from latentgeo.geometry.family import PERTURBED, Member, family_model_id
    from latentgeo.models.record import model_short_name

    members = params.perturb.members()
    try:
        alpha = float(token)
    except ValueError:
        if token not in members:
            raise SystemExit(f"unknown model {token!r}: give an α or one of {', '.join(members)}")
        return members[token]
    base = model_short_name(params.perturb.base_models[0])
    model_id = family_model_id(base, PERTURBED, alpha, 1, params.perturb.scope)
    if model_id in members:
        return members[model_id]
    reference = family_model_id(base, PERTURBED, 0.0, 1, params.perturb.scope)
    return Member(model_id, params.perturb.base_models[0], PERTURBED, alpha, 1, reference)


def build_models(tokens: list, params, work: Path) -> dict[str, tuple["Member", Path]]:
    """The named models (see :func:`resolve_model`) by ``model_id``, each with its folder: the
    workspace's models/<id> when the pipeline built it, else built into the work folder with the
    package's own code (deterministic: the same bytes)."""
    from latentgeo.stages.perturb import build_family_member

    out = {}
    for token in tokens:
        member = resolve_model(token, params)
        folder = FILES.models / member.model_id
        if not (folder / "latentgeo.json").is_file():
            folder = work / "models" / member.model_id
            if not folder.exists():
                build_family_member(member.base_model, member.kind, member.alpha, member.seed,
                                    params.perturb.scope, folder)
        out[member.model_id] = (member, folder)
    return out


def study_data(work: Path) -> tuple[Path, Path]:
    """The corpus sequences and the offline task suite the stages read (their paths in dvc.yaml):
    the repository's when its data/ is built, else the same files of a deterministic build into the
    work folder."""
    if FILES.sequences.is_file() and FILES.tasks.is_dir():
        return FILES.sequences, FILES.tasks
    # dvc.yaml's data paths share one folder, the tracked data build; rebuild it under work/
    data = Path(os.path.commonpath([FILES.sequences, FILES.tasks]))
    folder = work / data.name
    sequences, tasks = (folder / path.relative_to(data) for path in (FILES.sequences, FILES.tasks))
    if not (sequences.is_file() and tasks.is_dir()):
        from latentgeo.data.build import build_data

        build_data(folder, source="packaged", overwrite=True)
    return sequences, tasks


def committed_measures(model_id: str) -> dict | None:
    path = FILES.measures / f"{model_id}.json"
    return json.loads(path.read_text()) if path.is_file() else None


# ------------------------------------------------------------------------------ the modes


def ordered_models(tokens: list, params, work: Path) -> dict[str, tuple["Member", Path]]:
    """:func:`build_models`, each family's reference (unperturbed base) first when it is named."""
    models = build_models(tokens, params, work)
    return dict(sorted(models.items(), key=lambda kv: kv[0] != kv[1][0].reference))


def embed_once(cond: str, folder: Path, sequences: Path, n: int, out: Path) -> float:
    out.parent.mkdir(parents=True, exist_ok=True)
    return in_process(cond, "embed", str(folder), str(sequences), str(out), str(n), out=out)


def mode_embed(args, work: Path) -> None:
    params = load_profile(args.params)
    n = params.data.corpus.n_sequences
    models = ordered_models(args.models, params, work)
    sequences, _ = study_data(work)
    measures_spread, cross_machine = Spread(), Spread()
    first = args.conditions[0]
    print(f"profile {params.profile}: {n} sequences, models {list(models)}, conditions {args.conditions}")
    for model_id, (member, folder) in models.items():
        records = {}
        for cond in args.conditions:
            emb = work / "emb" / f"{model_id}-{cond}.npy"
            t_embed = embed_once(cond, folder, sequences, n, emb)
            first_emb = work / "emb" / f"{model_id}-{first}.npy"
            identical = first_emb.read_bytes() == emb.read_bytes()
            # Stitchability needs the family's base vectors: the same condition's when the base is
            # among the models (both move, as on another machine), else the base under the first.
            if member.reference in models:
                base = work / "emb" / f"{member.reference}-{cond}.npy"
                base_first = work / "emb" / f"{member.reference}-{first}.npy"
            else:
                base = base_first = work / "emb" / f"{member.reference}-{first}.npy"
                embed_once(first, build_models([member.reference], params, work)[member.reference][1],
                           sequences, n, base)
            out = work / "measures" / f"{model_id}-{cond}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            if identical and base.read_bytes() == base_first.read_bytes() and cond != first:
                t_meas = 0.0  # same bytes in, same measures out (the stage is deterministic)
                records[cond] = records[first]
            else:
                t_meas = in_process(cond, "measures", str(emb), str(base), str(out), args.params, out=out)
                records[cond] = json.loads(out.read_text())
            mx, rmax, rmed = vector_changes(np.load(first_emb), np.load(emb))
            print(f"  {model_id} {cond:<13} embed {t_embed:5.0f} s, measures {t_meas:5.0f} s; vectors vs "
                  f"{first}: {'identical' if identical else f'max |Δ| {mx:.3g}, row ‖Δ‖/‖x‖ max {rmax:.3g} median {rmed:.3g}'}")
            if cond != first:
                compare_records(measures_spread, records[first], records[cond])
        committed = committed_measures(model_id)
        if committed is not None:
            compare_records(cross_machine, committed, records[first])
    measures_spread.print("measures: largest change over the conditions (vs the first), all models")
    cross_machine.print("measures: this machine's first condition vs the committed results (the machine that made them)")


def mode_noise(args, work: Path) -> None:
    from latentgeo.stages.measures import measures_arguments, measures_file

    params = load_profile(args.params)
    m = params.measures
    n = params.data.corpus.n_sequences
    models = ordered_models(args.models, params, work)
    sequences, _ = study_data(work)
    print(f"relative noise X·(1 + s·N(0, 1)) on the vectors of {n} sequences, scales {args.scales}, "
          f"{args.repeats} draws each; measures vs the unperturbed vectors")

    quantizers = tuple(args.quantizers or m.quantizers)

    def measure(emb: Path, ref: Path, out: Path) -> dict:
        if not out.exists():  # kept from an earlier run in the same --work folder
            measures_file(emb, out, reference=ref, **{**measures_arguments(m), "quantizers": quantizers},
                          overwrite=True, progress=False)
        return json.loads(out.read_text())

    for model_id, (member, folder) in models.items():
        emb = work / "emb" / f"{model_id}-baseline.npy"
        embed_once("baseline", folder, sequences, n, emb)
        base_ref = work / "emb" / f"{member.reference}-baseline.npy"
        embed_once("baseline", build_models([member.reference], params, work)[member.reference][1],
                   sequences, n, base_ref)
        X = np.load(emb)
        (work / "noise").mkdir(parents=True, exist_ok=True)
        clean = measure(emb, base_ref, work / "noise" / f"{model_id}-clean.json")
        for scale in args.scales:
            spread = Spread()
            for r in range(args.repeats):
                rng = np.random.default_rng([r, 7])
                noisy = (X * (1 + scale * rng.standard_normal(X.shape))).astype(np.float32)
                path = work / "noise" / f"{model_id}-s{scale:g}-r{r}.npy"
                if not path.exists():
                    np.save(path, noisy)
                compare_records(spread, clean, measure(path, base_ref, path.with_suffix(".json")))
            spread.print(f"{model_id}, noise scale {scale:g}: largest change over {args.repeats} draws")


def mode_seeds(args, work: Path) -> None:
    """The quantizer measures of the baseline vectors trained with other seeds: where a float-path
    change makes a quantizer's training take another trajectory, it lands on another local optimum,
    and the spread over seeds is the scale of that uncertainty."""
    from latentgeo.geometry.measures.compute import measure_space

    params = load_profile(args.params)
    m = params.measures
    n = params.data.corpus.n_sequences
    models = build_models(args.models, params, work)
    sequences, _ = study_data(work)
    quantizers = tuple(args.quantizers or m.quantizers)
    print(f"quantizers {quantizers} trained with seeds {args.seeds} on the vectors of {n} sequences")
    for model_id, (_, folder) in models.items():
        emb = work / "emb" / f"{model_id}-baseline.npy"
        embed_once("baseline", folder, sequences, n, emb)
        X = np.load(emb)
        records = []
        for seed in args.seeds:
            out = work / "seeds" / f"{model_id}-seed{seed}.json"
            if not out.exists():
                out.parent.mkdir(parents=True, exist_ok=True)
                record = measure_space(X, quantizers=quantizers, m=m.m, nbits=m.nbits, train_size=m.train_size,
                                       seed=seed, progress=False).record
                out.write_text(json.dumps({q: record[q] for q in quantizers}))
            records.append(json.loads(out.read_text()))
        spread = Spread()
        for a in range(len(records)):
            for b in range(a + 1, len(records)):
                compare_records(spread, records[a], records[b])
        spread.print(f"{model_id}: largest difference between any two of {len(records)} seeds")


def mode_finetune(args, work: Path) -> None:
    params = load_profile(args.params)
    cells = [tuple(c.rsplit(":", 1)) for c in args.cells]
    models = build_models(list(dict.fromkeys(token for token, _ in cells)), params, work)
    by_token = {token: resolve_model(token, params).model_id for token, _ in cells}
    _, tasks = study_data(work)
    for token, task in cells:
        model_id = by_token[token]
        print(f"\n{model_id}, {task} ({params.finetune.precision} unless the condition says)")
        spread = Spread()
        first = None
        committed_path = FILES.finetune / model_id / f"{task}.json"
        if committed_path.is_file():
            c = json.loads(committed_path.read_text())
            print(f"  committed     score {c['score']:.4f}, validation loss {c['metrics']['validation']['loss']:.5f}")
        for cond in args.conditions:
            out = work / "finetune" / f"{model_id}-{task}-{cond}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            seconds = in_process(cond, "finetune", str(models[model_id][1]), task, str(tasks), str(out), args.params, out=out)
            r = json.loads(out.read_text())
            losses = [h["loss"] for h in r["log_history"] if "loss" in h]
            print(f"  {cond:<13} score {r['score']:.4f}, validation loss {r['metrics']['validation']['loss']:.5f}, "
                  f"last training loss {losses[-1]:.5f} ({seconds:.0f} s)")
            if first is None:
                first = r
            elif CONDITIONS[cond].get("BENCH_PRECISION") == CONDITIONS[args.conditions[0]].get("BENCH_PRECISION"):
                # same arithmetic on another float path; another precision is shown, not pooled
                compare_records(spread, {k: first[k] for k in ("score", "metrics", "log_history")},
                                {k: r[k] for k in ("score", "metrics", "log_history")})
            if committed_path.is_file() and cond == args.conditions[0]:
                cross = Spread()
                compare_records(cross, {k: c[k] for k in ("score", "metrics", "log_history")},
                                {k: r[k] for k in ("score", "metrics", "log_history")})
                cross.print(f"  {cond} vs committed")
        spread.print(f"  {model_id} {task}: largest change over the conditions of the first's precision (vs the first)")


def run_smoke(condition: str, work: Path, snapshot: Path) -> Path:
    """`make repro PROFILE=smoke` under ``condition`` in a clone of ``snapshot`` (one copy of the
    working tree shared by every condition, so that only the floating-point path differs)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from pipeline_utils import VENV, git, run

    repo = work / f"smoke-{condition}"
    if repo.exists():
        shutil.rmtree(repo)
    git(work, "clone", "-q", str(snapshot), str(repo))
    saved = dict(os.environ)
    os.environ.update(CONDITIONS[condition])
    # the clone's own code, not the editable install's working tree (which may change meanwhile)
    os.environ["PYTHONPATH"] = str(repo / "src")
    try:
        start = time.perf_counter()
        run(repo, "make", "repro", "PROFILE=smoke", f"VENV={VENV}", "SKIP_INSTALL=1", "VERIFY=report", timeout=3600)
        print(f"  smoke under {condition}: {time.perf_counter() - start:.0f} s")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return repo


def group_name(path: str, key: str) -> str:
    """Results grouped so that one line covers one kind of value: model ids, list indices and
    other numbers in paths and keys become *."""
    star = lambda s: re.sub(r"\d+(\.\d+)?", "*", s)  # noqa: E731
    return f"{star(path)} :: {star(key)}"


def compare_trees(old_repo: Path, new_repo: Path) -> Spread:
    """Every result value of two smoke runs (JSON leaves; CSV cells by column), grouped."""
    from latentgeo.verify.compare import MISSING, compare_result
    from latentgeo.verify.tolerances import ToleranceFile

    tol = ToleranceFile(profile="smoke")  # no rules: every change is reported
    spread = Spread()
    files = sorted({str(p.relative_to(old_repo)) for p in (old_repo / "results").rglob("*")
                    if p.suffix in (".json", ".csv") and "embeddings" not in p.parts})
    for rel in files:
        new = new_repo / rel
        verdict = compare_result(rel, (old_repo / rel).read_text(), new.read_text() if new.exists() else None, tol)
        if verdict.problem:
            print(f"  {rel}: {verdict.problem}")
        for change in verdict.changes:
            key = change.where.split(" [")[0]
            if change.old is MISSING or change.new is MISSING:
                print(f"  {rel}: {change.describe()}")
            elif change.delta is not None:
                spread.add(group_name(rel, key), float(change.old), float(change.new))
            else:
                print(f"  {rel}: text changed: {change.describe()}")
    return spread


def mode_smoke(args, work: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from pipeline_utils import copy_worktree

    snapshot = work / "snapshot"
    if snapshot.exists():
        shutil.rmtree(snapshot)
    copy_worktree(snapshot)  # the working tree now, committed: every condition clones this
    repos = {cond: run_smoke(cond, work, snapshot) for cond in args.conditions}
    first = args.conditions[0]
    for cond in args.conditions[1:]:
        compare_trees(repos[first], repos[cond]).print(f"smoke: {cond} vs {first}, every changed value")


def mode_stitching(args, work: Path) -> None:
    """The stitching stage on a subset of the profile's encoders (same texts, anchors, methods):
    every grid, sweep and similarity value per condition, and against the committed rows."""
    params = load_profile(args.params)
    corpus, tasks = study_data(work)
    encoders = args.encoders or list(params.stitching.encoders)
    print(f"stitching: encoders {encoders}, methods {list(params.stitching.methods)}, "
          f"{params.stitching.n_sentences} texts, {params.stitching.anchors} anchors")
    outs = {}
    for cond in args.conditions:
        out = work / f"stitching-{cond}"
        if (out / "metrics.json").exists():  # complete from an earlier run in the same --work folder
            seconds = 0.0
        else:
            if out.exists():
                shutil.rmtree(out)  # a run cut short
            seconds = in_process(cond, "stitching", args.params, ",".join(encoders), str(tasks), str(corpus),
                                 str(out))
        print(f"  {cond}: {seconds:.0f} s")
        outs[cond] = out
    files = ["grid.csv", "sweep.csv", "similarity.csv", "corpus/grid.csv"]
    first = args.conditions[0]
    for cond in args.conditions[1:]:
        compare_csv_files(outs[first], outs[cond], files).print(f"stitching: {cond} vs {first}")
    committed = ROOT / stage_parameters("stitching", ROOT)["out_dir"]
    if (committed / "grid.csv").is_file():
        compare_csv_files(committed, outs[first], files).print(
            f"stitching: {first} on this machine vs the committed rows of the same pairs")


def moved_within_tolerance(record, rel_path: str, tol, rng, prefix: str = ""):
    """A copy of a JSON record whose every numeric leaf that a tolerance rule covers is moved by
    U(±allowed) (the rule's allowance at that value); other leaves are kept."""
    if isinstance(record, dict):
        return {k: moved_within_tolerance(v, rel_path, tol, rng, f"{prefix}.{k}" if prefix else k)
                for k, v in record.items()}
    if isinstance(record, list):
        return [moved_within_tolerance(v, rel_path, tol, rng, f"{prefix}.{i}") for i, v in enumerate(record)]
    if isinstance(record, (int, float)) and not isinstance(record, bool):
        rule = tol.rule_for(rel_path, prefix)
        if rule is not None:
            allowed = rule.allowed(float(record))
            return float(record) + float(rng.uniform(-allowed, allowed))
    return record


def mode_regression(args, work: Path) -> None:
    """The regression stage on the committed fine-tuning and measures results, with every score
    and measure moved by an independent uniform draw within its stated tolerance (the tolerance
    file's rules for results/finetune and results/measures), ``draws`` times: how far each
    regression value and plot-table cell moves when its inputs move as far as they may."""
    from latentgeo.config.schema import load_params
    from latentgeo.stages.regression import run_regression_stage
    from latentgeo.verify.tolerances import load_tolerances

    params = load_params(args.params)
    tol = load_tolerances(args.tolerances)
    sources = {"finetune": FILES.finetune, "measures": FILES.measures}
    print(f"regression: every score and measure moved by U(±its tolerance in {args.tolerances}), "
          f"{args.draws} draws")

    def stage(dirs: dict[str, Path], out: Path) -> None:
        run_regression_stage(params, dirs["finetune"], dirs["measures"], out / "table.csv",
                             out / "regression.json", out / "plots", out / "figures",
                             out / "patchiness_sweep.csv")

    base = work / "regression-base"
    stage(sources, base)
    names = set(json.loads((base / "regression.json").read_text()).get("measures", {}))
    spread = Spread()
    rng = np.random.default_rng(0)
    for draw in range(args.draws):
        moved = {}
        for name, src in sources.items():
            moved[name] = work / f"draw-{name}"
            if moved[name].exists():
                shutil.rmtree(moved[name])
            shutil.copytree(src, moved[name])
            for path in sorted(moved[name].rglob("*.json")):
                rel_path = FILES.lock_key(sources[name] / path.relative_to(moved[name]))
                record = moved_within_tolerance(json.loads(path.read_text()), rel_path, tol, rng)
                path.write_text(json.dumps(record))
        out = work / "regression-draw"
        stage(moved, out)
        shutil.copyfile(out / "regression.json", work / f"regression-draw-{draw:03d}.json")
        old, new = leaves(json.loads((base / "regression.json").read_text())), leaves(
            json.loads((out / "regression.json").read_text()))
        for key in sorted(set(old) & set(new)):
            group = ".".join("*" if part in names or part.isdigit() else part for part in key.split("."))
            spread.add(f"regression.json :: {group}", old[key], new[key])
        for rel in ("plots/pearson_r.csv", "plots/score_vs_alpha.csv", "table.csv", "patchiness_sweep.csv"):
            other = compare_csv_files(base, out, [rel])
            for name in other.seen:
                spread.abs[name] = max(spread.abs[name], other.abs[name])
                spread.rel[name] = max(spread.rel[name], other.rel[name])
                spread.seen[name] += other.seen[name]
    spread.print(f"regression: largest change over {args.draws} draws")
    print_regression_rules(work, base, names)


# Regression values in the units of a measure (or of the score at measure = 0): fixed by r, the
# score column and the measure column, each judged; no one tolerance fits 25 measures' units.
UNIT_KEYS = {"slope", "slope_se", "slope_ci_low", "slope_ci_high", "intercept", "intercept_ci_low",
             "intercept_ci_high", "partial_slope", "partial_slope_se", "partial_slope_ci_low",
             "partial_slope_ci_high"}


def regression_section(record: dict, section: str) -> dict:
    """``record``'s part at a dotted path (``measures``, ``secondary_score.measures``); {} if absent."""
    for part in section.split("."):
        record = (record or {}).get(part) or {}
    return record


def regression_changes_by_measure(base: Path, draws: list[dict], *, units: bool = False,
                                  section: str = "measures") -> dict[str, float]:
    """Per measure, the largest change over the draws of its unitless regression values (r, its
    CI, partial r, every p-value, R², leave-one-out and held-out errors; not the measure's own
    held-out values, which are judged as measures); with ``units``, of its values in the
    measure's units instead (:data:`UNIT_KEYS`: slopes, intercepts and their intervals).
    ``section``: the fits of the main score (``measures``) or of the second score
    (``secondary_score.measures``)."""
    old = regression_section(json.loads((base / "regression.json").read_text()), section)

    def wanted(key: str) -> bool:
        return (key.split(".")[0] in UNIT_KEYS) == units and not key.endswith(".measure")

    worst: dict[str, float] = defaultdict(float)
    for record in draws:
        for name, fit in regression_section(record, section).items():
            worst[name] = max(worst[name], largest_leaf_change(old.get(name, {}), [fit], wanted))
    return {name: change for name, change in worst.items() if name in old}  # a measure new in a draw: nothing to compare


def largest_leaf_change(old: dict, records: list[dict], wanted=lambda key: True) -> float:
    """The largest |change| of a numeric leaf of ``old`` (its ``wanted`` keys) in any of ``records``;
    leaves that are NaN on either side are skipped."""
    a = leaves(old)
    largest = 0.0
    for record in records:
        b = leaves(record)
        for key in set(a) & set(b):
            if wanted(key) and not (math.isnan(a[key]) or math.isnan(b[key])):
                largest = max(largest, abs(b[key] - a[key]))
    return largest


def up2(x: float) -> float:
    """x rounded up to two significant digits."""
    if x <= 0:
        return 0.0
    step = 10 ** (math.floor(math.log10(x)) - 1)
    return math.ceil(x / step - 1e-9) * step


def rule_yaml(name: str, keys: str, tolerance: float, why: str, *, files: str = "results/regression.json",
              rows: str | None = None) -> str:
    """One tolerance rule as it is written in tolerances/*.yaml (``keys`` and ``rows`` as YAML)."""
    row_line = f"\n    rows: {rows}" if rows else ""
    return (f"  - name: {name}\n    files: \"{files}\"\n    keys: {keys}{row_line}\n"
            f"    abs: {tolerance:g}\n    why: {why}")


def measure_rules(name: str, section: str, prefix: str, worst: float, worst_units: float | None,
                  n_draws: int, values: str) -> list[str]:
    """The rules of one measure's fits in ``section`` of regression.json: its slopes and intercepts
    (in the measure's units) when they moved, then its unit-free ``values``."""
    rules = []
    if worst_units:
        keys = ", ".join(f'"{section}.{name}.{k}"' for k in sorted(UNIT_KEYS))
        rules.append(rule_yaml(
            f"{prefix}{name}-units", f"[{keys}]", up2(1.5 * worst_units),
            f"\"bench/tolerances.py regression ({n_draws} draws): slopes, intercepts and their intervals "
            f"(in the units of {name} and the score) moved by up to {worst_units:.3g}; ×1.5\""))
    rules.append(rule_yaml(
        f"{prefix}{name}", f"\"{section}.{name}.**\"", min(up2(1.5 * worst), 2.0),
        f"\"bench/tolerances.py regression ({n_draws} draws, every score and measure moved by "
        f"U(± its tolerance)): {values} moved by up to {worst:.3g}; ×1.5\""))
    return rules


def print_regression_rules(work: Path, base: Path, names: set[str]) -> None:
    """Tolerance rules (YAML) for the regression values: per measure, 1.5× the largest change of
    its values over the draws, for the main score and then for the second score."""
    draws = [json.loads(p.read_text()) for p in sorted(work.glob("regression-draw-*.json"))]
    worst = regression_changes_by_measure(base, draws)
    worst_units = regression_changes_by_measure(base, draws, units=True)
    print(f"\nregression rules (1.5 × the largest change over {len(draws)} draws, per measure):")
    for name in sorted(worst, key=lambda n: worst[n]):
        for rule in measure_rules(name, "measures", "regression-", worst[name], worst_units.get(name), len(draws),
                                  "r, its CI, partial r, p-values, R², leave-one-out and held-out errors"):
            print(rule)
        # a rule with `rows` covers CSV cells only: one rule for the JSON, one for the r table
        print(rule_yaml(f"regression-{name}-r-table", '["r", "ci_low", "ci_high", "*p_value*", "partial_r"]',
                        min(up2(1.5 * worst[name]), 2.0), f"the r table's row of {name}, as regression-{name}",
                        files="results/plots/pearson_r.csv", rows=f'["{name}", "{name} / *"]'))
    print_secondary_rules(base, draws)
    print_lofo_count_rules(base, draws)


LOFO_COUNTS = ("better", "worse")


def print_lofo_count_rules(base: Path, draws: list[dict]) -> None:
    """Rules for the leave-one-family-out counts (left-out models predicted closer / farther than
    by the controls alone), one per tolerance: a count moves in whole models, so 1.5 × a measure's
    largest change is rounded up to a whole number, and measures that share it share a rule. Their
    sign-test p is a function of the two counts and is not judged apart (tolerances' ``ignore``).
    To be written before the rule for the other leave-one-family-out values."""
    old = regression_section(json.loads((base / "regression.json").read_text()), "leave_one_family_out.measures")
    if not old:
        return
    largest: dict[str, int] = {}
    for name in sorted(old):
        fits = [regression_section(record, "leave_one_family_out.measures").get(name) or {} for record in draws]
        largest[name] = max((abs(fit[k] - old[name][k]) for fit in fits for k in LOFO_COUNTS
                             if fit.get(k) is not None and old[name].get(k) is not None), default=0)
    print(f"\nleave-one-family-out count rules (1.5 × the largest change over {len(draws)} draws, per measure):")
    for tolerance in sorted({math.ceil(1.5 * change) for change in largest.values()}):
        names = [n for n, change in largest.items() if math.ceil(1.5 * change) == tolerance]
        keys = ", ".join(f'"leave_one_family_out.measures.{n}.{k}"' for n in names for k in LOFO_COUNTS)
        moved = ", ".join(f"{n} {largest[n]}" for n in names)
        print(rule_yaml(f"regression-lofo-counts-{tolerance}", f"[{keys}]", tolerance,
                        f"\"bench/tolerances.py regression ({len(draws)} draws): left-out models predicted closer "
                        f"or farther than α alone moved by up to {moved}; ×1.5, whole models\""))


def print_secondary_rules(base: Path, draws: list[dict]) -> None:
    """Rules for the second score's fits (``secondary_score``: r and partial r with the
    chance-normalised score) and its controls, from the same draws."""
    section = "secondary_score.measures"
    worst = regression_changes_by_measure(base, draws, section=section)
    worst_units = regression_changes_by_measure(base, draws, units=True, section=section)
    controls = largest_leaf_change(
        regression_section(json.loads((base / "regression.json").read_text()), "secondary_score.controls"),
        [regression_section(record, "secondary_score.controls") for record in draws])
    if not worst and not controls:
        return
    print(f"\nsecond-score rules (1.5 × the largest change over {len(draws)} draws, per measure):")
    print(rule_yaml("regression-secondary-controls", '["secondary_score.controls.**"]',
                    min(up2(1.5 * controls), 2.0),
                    f"\"bench/tolerances.py regression ({len(draws)} draws): the second score's fit on the "
                    f"controls alone moved by up to {controls:.3g}; ×1.5\""))
    for name in sorted(worst, key=lambda n: worst[n]):
        for rule in measure_rules(name, section, "regression-secondary-", worst[name], worst_units.get(name),
                                  len(draws), "r with the second score, its CI, partial r and p-values"):
            print(rule)


def compare_csv_files(old_dir: Path, new_dir: Path, files: list[str]) -> Spread:
    """Every numeric cell of the rows both folders' CSV files share, by file and column."""
    from latentgeo.verify.compare import MISSING, compare_result
    from latentgeo.verify.tolerances import ToleranceFile

    tol = ToleranceFile(profile="bench")
    spread = Spread()
    for rel in files:
        verdict = compare_result(rel, (old_dir / rel).read_text(), (new_dir / rel).read_text(), tol)
        for change in verdict.changes:
            if change.old is not MISSING and change.new is not MISSING and change.delta is not None:
                spread.add(f"{rel} :: {change.where.split(' [')[0]}", float(change.old), float(change.new))
    return spread


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("embed", "noise", "seeds", "finetune", "stitching", "regression", "smoke"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 0, 1, 2, 3], help="seeds: quantizer seeds")
    parser.add_argument("--tolerances", default=str(ROOT / "tolerances" / "default.yaml"),
                        help="regression: the tolerance file whose input tolerances are propagated")
    parser.add_argument("--draws", type=int, default=40,
                        help="regression: how many draws (the committed rules: 40; 12 undershot)")
    parser.add_argument("--encoders", nargs="+", help="stitching: a subset of the profile's encoders")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--models", nargs="+", default=["0", "4"],
                        help="embed/noise/seeds: models by α (the first family, seed 1) or member id")
    parser.add_argument("--scales", type=float, nargs="+", default=[1e-7, 1e-6])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quantizers", nargs="+", choices=("pq", "lsq", "rq"),
                        help="noise: which quantizers to train (default: the profile's)")
    parser.add_argument("--cells", nargs="+", default=["0:bbc-topic", "2:wiki-adjacency"],
                        help="finetune: MODEL:TASK, MODEL an α (the first family, seed 1) or a member id")
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS))
    parser.add_argument("--work", help="keep work files here (default: a temporary folder)")
    args = parser.parse_args()
    if args.conditions is None:
        args.conditions = {"embed": EMBED_CONDITIONS, "noise": ["baseline"], "finetune": FINETUNE_CONDITIONS,
                           "stitching": ["baseline", "aten-default"], "regression": ["baseline"], "seeds": ["baseline"], "smoke": ["baseline", "aten-default"]}[args.mode]
    load = os.getloadavg()[0]
    print(f"bench/tolerances.py {args.mode} on {os.cpu_count()} cores, load average {load:.1f}")
    with tempfile.TemporaryDirectory(prefix="latentgeo-tolerances-") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        freeze_package(work)
        globals()[f"mode_{args.mode}"](args, work)


def freeze_package(work: Path) -> None:
    """Workers import a copy of src/ taken now (kept in a reused --work folder), so that edits to
    the working tree during a long run cannot mix two versions of the code into one comparison."""
    global FROZEN_SRC
    FROZEN_SRC = work / "src"
    if not FROZEN_SRC.exists():
        shutil.copytree(ROOT / "src", FROZEN_SRC, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


if __name__ == "__main__":
    main()
