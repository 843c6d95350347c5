"""Every measure of one latent sample, computed in memory: :func:`measure_space`.

The record it returns (:func:`compute_measures` returns only that) is what the measures stage
(:mod:`latentgeo.stages.measures`) writes as JSON:

    {"inputs": {n, d, m, nbits, k, quantizers, seed, quantizer_seeds, train_size, distinct_vectors, ...},
     "pq": {...}, "lsq": {...}, "rq": {...},   # one section per quantizer: cells.CELL_MEASURES
     "spread": {eee, vrm, isoscore, effective_rank, anisotropy, twonn_id},
     "quantizer_seed_sd": {"pq": {...}, ...}}   # only with several quantizer seeds

With several quantizer seeds (k-means and LSQ start from random codebooks, and patchiness moves
with that start alone), each quantizer is trained once per seed, a cell measure is the mean over
the seeds, and ``quantizer_seed_sd`` holds its standard deviation across them (ddof = 1).

Every leaf of a quantizer or spread section is one number (``point_dist`` may be null when no cell
holds two distinct vectors). The quantizers train on a background thread (:class:`_Trainer`) while
the main thread computes what needs no quantizer; the numbers do not depend on it. Timings are kept
out of the record (they would change its bytes from run to run); they come back on the
:class:`MeasureReport`.
"""

from __future__ import annotations

import contextlib
import resource
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from latentgeo.errors import LatentgeoError
from latentgeo.geometry.measures import cells, intrinsic, spread
from latentgeo.geometry.measures import quantizers as qz
from latentgeo.geometry.measures.kinds import QUANTIZER_KINDS
from latentgeo.geometry.measures.validate import check_sample, check_settings
from latentgeo.io import MAX_SEED, timed

# Imported inside the functions that use them (heavy, or rarely needed): faiss, pandas, tqdm.

SPREAD_MEASURES = ("eee", "vrm", "isoscore", "effective_rank", "anisotropy", "twonn_id")
# The command line's --train-size default: at most this many vectors train each quantizer (all
# of them when the sample is smaller). Training LSQ dominates the stage's time and grows linearly
# with the training set: ~1.5 CPU-seconds per 1,000 512-d vectors, on one thread (see
# quantizers.train_quantizer), so a whole 150K-vector sample would take ~4 minutes for LSQ alone.
# With 32,768 the paper-sized benchmark (bench/measures.py) needs ~170 CPU-seconds in all, ~62 of
# them LSQ training (on its own thread, beside the rest), ~40 point_dist. Every vector is still
# encoded and measured. The paper trained on all: "all".
DEFAULT_TRAIN_SIZE = 32_768


@dataclass
class MeasureReport:
    """record: the JSON-ready measures; histograms: (M, k) code counts per quantizer (bins 0..k−1);
    timings: wall seconds per step (``<quantizer>_train``, ``distinct_rows``, ``covariance``, ...,
    ``<quantizer>_wait``, ``<quantizer>_encode``, ...), summed over the quantizer seeds where a
    step runs once per seed; the ``_train`` steps run on a background
    thread beside the others, so the wall times add up to more than the stage's. cpu_timings: CPU
    seconds per step, summed over the threads the step used (on a busy machine the wall time says
    little, the CPU time still tells where the work goes)."""

    record: dict
    histograms: dict[str, np.ndarray] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)  # CPU seconds, all threads


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _this_thread_cpu_clock() -> int | None:
    """The CPU-time clock of the calling thread, readable from any thread (None if unsupported)."""
    try:
        return time.pthread_getcpuclockid(threading.get_ident())
    except (AttributeError, OSError):  # not every platform offers per-thread CPU clocks
        return None


class _Trainer:
    """Trains the quantizers one after another on ONE background thread.

    Training runs on a single FAISS thread (:func:`quantizers.train_quantizer`) and LSQ's takes
    most of the stage's time, so on a machine with a second core everything that needs no quantizer
    (distinct rows, spread measures) and each trained quantizer's encoding and cell measures run
    beside the training of the next. The results do not change: each quantizer is trained with the
    same seed on one OpenMP thread (FAISS's thread count is a per-thread setting) and nothing else
    touches it until its training has returned. Its timings are kept here; :meth:`cpu_seconds` is
    the CPU time of the training thread, so the main thread's steps can leave it out.
    """

    def __init__(self, kinds, X, rows, d: int, m: int, nbits: int, seeds: list[int], bar):
        self.timings: dict[str, float] = {}
        self.cpu_timings: dict[str, float] = {}
        self._bar = bar
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="latentgeo-train")
        self._clock = self._pool.submit(_this_thread_cpu_clock).result()
        self._jobs = {
            (kind, seed): self._pool.submit(self._train, kind, X, rows, d, m, nbits, seed)
            for kind in kinds for seed in seeds
        }

    def _train(self, kind, X, rows, d, m, nbits, seed):
        q = qz.make_quantizer(kind, d, m, nbits, seed)
        start, cpu = time.perf_counter(), time.thread_time()
        qz.train_quantizer(q, X, rows)
        name = f"{kind}_train"
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - start
        self.cpu_timings[name] = self.cpu_timings.get(name, 0.0) + time.thread_time() - cpu
        self._bar.update(1)
        return q

    def cpu_seconds(self) -> float:
        """CPU seconds the training thread has used so far (0 where the platform cannot say: the
        main thread's steps then include it)."""
        return 0.0 if self._clock is None else time.clock_gettime(self._clock)

    def quantizer(self, kind: str, seed: int):
        """The trained quantizer of ``kind`` and ``seed`` (waits for its training; hands it over
        only once)."""
        return self._jobs.pop((kind, seed)).result()

    def close(self) -> None:
        """Cancel trainings not yet started; wait for a running one (FAISS cannot be interrupted)."""
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Steps:
    """Times the main thread's named steps and advances one progress bar over all steps.

    CPU time per step is the process's, minus what the training thread used meanwhile (once
    :attr:`trainer` is set): the step's own thread plus the BLAS/OpenMP/worker threads it started.
    """

    def __init__(self, total: int, progress: bool):
        from tqdm.auto import tqdm

        self.timings: dict[str, float] = {}
        self.cpu_timings: dict[str, float] = {}
        self.trainer: _Trainer | None = None
        self.bar = tqdm(total=total, desc="measures", unit="step", disable=not progress)

    def _cpu(self) -> tuple[float, float]:
        return _cpu_seconds(), self.trainer.cpu_seconds() if self.trainer else 0.0

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time the block as step ``name``; a step run again (once per quantizer seed) adds up."""
        self.bar.set_postfix_str(name)
        cpu, trainer_cpu = self._cpu()
        this_run: dict[str, float] = {}
        with timed(this_run, name):
            yield
        cpu_end, trainer_end = self._cpu()
        self.timings[name] = self.timings.get(name, 0.0) + this_run[name]
        self.cpu_timings[name] = (
            self.cpu_timings.get(name, 0.0) + (cpu_end - cpu) - (trainer_end - trainer_cpu)
        )
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def total_sq_norm(X: np.ndarray, chunk: int = spread.ROW_CHUNK) -> float:
    """Σ‖x‖² over the rows of X (n, d), accumulated in float64."""
    total = 0.0
    for start in range(0, len(X), chunk):
        x = X[start : start + chunk].astype(np.float64)
        total += float(np.einsum("ij,ij->", x, x))
    return total


def measure_space(
    X: np.ndarray,
    *,
    quantizers=("pq", "lsq"),
    m: int = 4,
    nbits: int = 8,
    train_size: int | str = "all",
    seed: int = qz.PAPER_SEED,
    quantizer_seeds: int = 1,
    progress: bool = True,
    twonn_sample: int = intrinsic.DEFAULT_TWONN_SAMPLE,
    anisotropy_pairs: int = spread.DEFAULT_ANISOTROPY_PAIRS,
) -> MeasureReport:
    """All measures of a sample X (n, d): one section per quantizer, and ``spread``.

    Each quantizer (``pq``, ``lsq``, ``rq``) has ``m`` codebooks of k = 2**nbits centroids and is
    trained on at most ``train_size`` vectors (a seeded subsample; ``"all"``: every vector, as the
    paper did), then encodes every vector. ``seed`` seeds FAISS (the default, 1234, leaves every
    quantizer at FAISS's own default seeds, as the paper ran: :func:`quantizers.faiss_seeds`), the
    training subsample, the random pairs of the anisotropy and the TwoNN subsample (at most
    ``twonn_sample`` vectors), so the same X and seed give the same numbers. With
    ``quantizer_seeds`` = s > 1 each quantizer is trained s times, with seeds ``seed``, ``seed + 1``,
    …: its cell measures are the means over them and ``quantizer_seed_sd`` their spread (the
    histograms are the first seed's). Inputs are validated before any training.
    """
    kinds, size = check_settings(quantizers, m, nbits, train_size, seed)
    if twonn_sample < 3 or anisotropy_pairs < 1:
        raise LatentgeoError("twonn_sample must be ≥ 3 and anisotropy_pairs ≥ 1")
    seeds = quantizer_seed_list(seed, quantizer_seeds)
    X = check_sample(X, quantizers=kinds, m=m, nbits=nbits)
    n, d = X.shape
    k = 2**nbits
    rows = qz.train_indices(n, size, seed)
    n_twonn = min(n, twonn_sample)
    record: dict = {
        "inputs": {
            "n": n,
            "d": d,
            "m": m,
            "nbits": nbits,
            "k": k,
            "quantizers": ",".join(kinds),
            "seed": seed,
            "quantizer_seeds": seeds,
            "train_size": n if rows is None else len(rows),
            "train_size_option": size,
            "twonn_sample": n_twonn,
            "anisotropy_pairs": anisotropy_pairs,
            "faiss_version": _faiss_version(),
        }
    }
    steps = _Steps(total=5 * len(kinds) * len(seeds) + 8, progress=progress)
    histograms: dict[str, np.ndarray] = {}
    sections: dict[str, dict] = {}
    try:
        steps.trainer = _Trainer(kinds, X, rows, d, m, nbits, seeds, steps.bar)
        # While the quantizers train: the work that needs none of them.
        with steps.step("distinct_rows"):  # shared by every quantizer's point_dist
            distinct = cells.distinct_rows(X)
        record["inputs"]["distinct_vectors"] = len(distinct.first)
        sq_norm = total_sq_norm(X)
        out: dict[str, float] = {}
        with steps.step("covariance"):
            axes = spread.principal_axes(X)
        with steps.step("eee"):
            out["eee"] = spread.eee(axes.eigvals, components=spread.pca_components(n, d))
        with steps.step("vrm"):
            out["vrm"] = spread.vrm(X, axes)
        with steps.step("isoscore"):
            out["isoscore"] = spread.isoscore(axes.cov)
        with steps.step("effective_rank"):
            out["effective_rank"] = spread.effective_rank(axes.eigvals)
        del axes
        with steps.step("anisotropy"):
            out["anisotropy"] = spread.anisotropy(X, anisotropy_pairs, seed)
        with steps.step("twonn"):
            out["twonn_id"] = intrinsic.twonn_dimension(X, sample=twonn_sample, seed=seed)
        # Each quantizer as soon as it is trained (the next one trains meanwhile).
        per_seed: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for kind in kinds:
            for s in seeds:
                with steps.step(f"{kind}_wait"):  # idle time waiting for the training thread
                    q = steps.trainer.quantizer(kind, s)
                with steps.step(f"{kind}_encode"):
                    encoded = qz.encode_sample(q, kind, X, m, nbits, progress=progress)
                del q
                with steps.step(f"{kind}_point_dist"):
                    point_dist = cells.point_dist(X, encoded.codes, k, distinct)
                with steps.step(f"{kind}_cells"):
                    values = {**cells.code_measures(encoded, k, sq_norm), "point_dist": point_dist}
                    per_seed[kind].append({name: values[name] for name in cells.CELL_MEASURES})
                    if kind not in histograms:
                        histograms[kind] = cells.code_histograms(encoded.codes, k)
                del encoded
            sections[kind] = seed_mean(per_seed[kind])
        record.update(sections)
        record["spread"] = out
        if len(seeds) > 1:
            record["quantizer_seed_sd"] = {kind: seed_sd(per_seed[kind]) for kind in kinds}
    finally:
        if steps.trainer is not None:
            steps.trainer.close()
        steps.close()
    trainer = steps.trainer
    order = [f"{kind}_train" for kind in kinds] + list(steps.timings)
    timings = {**trainer.timings, **steps.timings}
    cpu_timings = {**trainer.cpu_timings, **steps.cpu_timings}
    return MeasureReport(
        record=record,
        histograms=histograms,
        timings={name: timings[name] for name in order},
        cpu_timings={name: cpu_timings[name] for name in order},
    )


def quantizer_seed_list(seed: int, count: int) -> list[int]:
    """The quantizer seeds ``seed, seed + 1, …`` (``count`` of them)."""
    if not isinstance(count, (int, np.integer)) or count < 1:
        raise LatentgeoError(f"quantizer_seeds = {count!r}; allowed: an integer ≥ 1")
    if seed + count - 1 > MAX_SEED:
        raise LatentgeoError(f"seeds {seed}..{seed + count - 1} exceed the largest seed {MAX_SEED}")
    return [int(seed) + i for i in range(int(count))]


def _defined(runs: list[dict], name: str) -> list[float]:
    return [r[name] for r in runs if r[name] is not None and np.isfinite(r[name])]


def seed_mean(runs: list[dict]) -> dict:
    """Per measure, the mean over the quantizer seeds' values (None where no seed defined it).
    One run is returned as it is, so a single seed gives exactly the single-run numbers."""
    if len(runs) == 1:
        return dict(runs[0])
    out = {}
    for name in runs[0]:
        values = _defined(runs, name)
        out[name] = float(np.mean(values)) if values else None
    return out


def seed_sd(runs: list[dict]) -> dict:
    """Per measure, the standard deviation (ddof = 1) over the quantizer seeds' values (None where
    fewer than two seeds defined it)."""
    out = {}
    for name in runs[0]:
        values = _defined(runs, name)
        out[name] = float(np.std(values, ddof=1)) if len(values) > 1 else None
    return out


def compute_measures(X: np.ndarray, **settings) -> dict:
    """The JSON-ready measures of X (n, d): :func:`measure_space`'s record, same keyword settings."""
    return measure_space(X, **settings).record


def _faiss_version() -> str:
    import faiss

    return str(faiss.__version__)


def measures_table(record: dict):
    """The measures of a record as a pandas DataFrame: one row per measure, one column per section
    (the quantizers, then ``spread``); a cell is empty where a measure does not apply."""
    import pandas as pd

    sections = [s for s in (*QUANTIZER_KINDS, "spread") if s in record]
    table = pd.DataFrame({s: pd.Series(record[s], dtype="float64") for s in sections})
    order = [*cells.CELL_MEASURES, *SPREAD_MEASURES]
    return table.reindex(
        [*[n for n in order if n in table.index], *sorted(set(table.index) - set(order))]
    )
