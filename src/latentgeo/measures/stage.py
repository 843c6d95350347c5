"""The measures stage: every measure of one latent sample, and the file-level entry point.

:func:`measure_space` computes; :func:`compute_measures` returns only the JSON-ready record;
:func:`measures_file` validates a ``.npy`` sample, computes, and writes deterministic JSON:

    {"inputs": {n, d, m, nbits, k, quantizers, seed, train_size, ..., source, source_sha256},
     "model": <the "model" record of the sample's sidecar X.json, when it has one>,
     "pq": {...}, "lsq": {...}, "rq": {...},   # one section per quantizer asked for
     "spread": {eee, vrm, isoscore, effective_rank, anisotropy, twonn_id}}

Every leaf of a quantizer or spread section is one number. Timings are kept out of the file (they
would change its bytes from run to run); they come back on the :class:`MeasureReport`.
"""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LatentgeoError
from ..io import check_output_path, file_sha256, load_npy, read_json, write_json
from . import cells, intrinsic, spread
from . import quantizers as qz
from .validate import check_sample, check_settings

SPREAD_MEASURES = ("eee", "vrm", "isoscore", "effective_rank", "anisotropy", "twonn_id")
# The command line's --train-size default: at most this many vectors train each quantizer (all
# of them when the sample is smaller). Training LSQ dominates the stage's time and grows linearly
# with the training set: ~1.5 CPU-seconds per 1,000 512-d vectors, on one thread (see
# quantizers.train_quantizer), so a whole 150K-vector sample would take ~4 minutes for LSQ alone.
# With 32,768 the paper-sized benchmark (bench/measures.py) needs ~100 CPU-seconds in all, ~49 of
# them LSQ training. Every vector is still encoded and measured. The paper trained on all: "all".
DEFAULT_TRAIN_SIZE = 32_768


@dataclass
class MeasureReport:
    """record: the JSON-ready measures; histograms: (M, k) code counts per quantizer (bins 0..k−1);
    timings: wall seconds per step (``<quantizer>_train``, ``<quantizer>_encode``, ``covariance``,
    ...); cpu_timings: CPU seconds of this process per step, summed over its threads (on a busy
    machine the wall time says little, the CPU time still tells where the work goes)."""

    record: dict
    histograms: dict[str, np.ndarray] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)  # CPU seconds, all threads


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Steps:
    """Times named steps and advances one progress bar over them."""

    def __init__(self, total: int, progress: bool):
        from tqdm.auto import tqdm

        self.timings: dict[str, float] = {}
        self.cpu_timings: dict[str, float] = {}
        self.bar = tqdm(total=total, desc="measures", unit="step", disable=not progress)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.bar.set_postfix_str(name)
        start, cpu = time.perf_counter(), _cpu_seconds()
        yield
        self.timings[name] = time.perf_counter() - start
        self.cpu_timings[name] = _cpu_seconds() - cpu
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _total_sq_norm(X: np.ndarray, chunk: int = spread.ROW_CHUNK) -> float:
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
    seed: int = 0,
    progress: bool = True,
    twonn_sample: int = intrinsic.DEFAULT_TWONN_SAMPLE,
    anisotropy_pairs: int = spread.DEFAULT_ANISOTROPY_PAIRS,
) -> MeasureReport:
    """All measures of a sample X (n, d): one section per quantizer, and ``spread``.

    Each quantizer (``pq``, ``lsq``, ``rq``) has ``m`` codebooks of k = 2**nbits centroids and is
    trained on at most ``train_size`` vectors (a seeded subsample; ``"all"``: every vector, as the
    paper did), then encodes every vector. ``seed`` seeds FAISS, the training subsample, the random
    pairs of the anisotropy and the TwoNN subsample (at most ``twonn_sample`` vectors), so the same
    X and seed give the same numbers. Inputs are validated before any training.
    """
    kinds, size = check_settings(quantizers, m, nbits, train_size, seed)
    if twonn_sample < 3 or anisotropy_pairs < 1:
        raise LatentgeoError("twonn_sample must be ≥ 3 and anisotropy_pairs ≥ 1")
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
            "train_size": n if rows is None else len(rows),
            "train_size_option": size,
            "twonn_sample": n_twonn,
            "anisotropy_pairs": anisotropy_pairs,
            "faiss_version": _faiss_version(),
        }
    }
    steps = _Steps(total=3 * len(kinds) + 7, progress=progress)
    histograms: dict[str, np.ndarray] = {}
    try:
        total_sq_norm = _total_sq_norm(X)
        for kind in kinds:
            q = qz.make_quantizer(kind, d, m, nbits, seed)
            with steps.step(f"{kind}_train"):
                qz.train_quantizer(q, X, rows)
            with steps.step(f"{kind}_encode"):
                encoded = qz.encode_sample(q, kind, X, m, nbits, progress=progress)
            with steps.step(f"{kind}_cells"):
                record[kind] = cells.cell_measures(encoded, total_sq_norm, k)
                histograms[kind] = cells.code_histograms(encoded.codes, k)
            del q, encoded
        out: dict[str, float] = {}
        with steps.step("covariance"):
            axes = spread.principal_axes(X)
        with steps.step("eee"):
            out["eee"] = spread.eee(axes.eigvals)
        with steps.step("vrm"):
            out["vrm"] = spread.vrm(X, axes)
        with steps.step("isoscore"):
            out["isoscore"] = spread.isoscore(axes.cov)
        with steps.step("effective_rank"):
            out["effective_rank"] = spread.effective_rank(axes.eigvals)
        with steps.step("anisotropy"):
            out["anisotropy"] = spread.anisotropy(X, anisotropy_pairs, seed)
        with steps.step("twonn"):
            out["twonn_id"] = intrinsic.twonn_dimension(X, sample=twonn_sample, seed=seed)
        record["spread"] = out
    finally:
        steps.close()
    return MeasureReport(
        record=record, histograms=histograms, timings=steps.timings, cpu_timings=steps.cpu_timings
    )


def compute_measures(X: np.ndarray, **settings) -> dict:
    """The JSON-ready measures of X (n, d): :func:`measure_space`'s record, same keyword settings."""
    return measure_space(X, **settings).record


def _faiss_version() -> str:
    import faiss

    return str(faiss.__version__)


def sidecar_model(embeddings_npy: str | os.PathLike) -> dict | None:
    """The ``model`` record of the sample's sidecar (``X.json`` beside ``X.npy``), if any."""
    sidecar = Path(embeddings_npy).with_suffix(".json")
    if not sidecar.is_file():
        return None
    meta = read_json(sidecar)
    if not isinstance(meta, dict):
        raise LatentgeoError(f"sidecar {sidecar} is not a JSON object")
    model = meta.get("model")
    if model is not None and not isinstance(model, dict):
        raise LatentgeoError(f"sidecar {sidecar}: 'model' is not a JSON object")
    return model


def measures_file(
    embeddings_npy: str | os.PathLike,
    out_json: str | os.PathLike,
    *,
    quantizers=("pq", "lsq"),
    m: int = 4,
    nbits: int = 8,
    train_size: int | str = "all",
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = True,
    twonn_sample: int = intrinsic.DEFAULT_TWONN_SAMPLE,
    anisotropy_pairs: int = spread.DEFAULT_ANISOTROPY_PAIRS,
    reference: str | os.PathLike | None = None,
) -> MeasureReport:
    """Measure the sample in ``embeddings_npy`` (n, d) and write the record to ``out_json``.

    With ``reference`` (the unperturbed base's token vectors of the same sequences, row-paired),
    a ``stitch`` section adds how well this space translates onto the base's
    (:func:`latentgeo.stitch.stitchability_measures`): a geometric measure beyond the paper.

    Settings, output path, file, sample and sidecar are all checked before any training; the JSON
    is written atomically and deterministically (same file and settings → same bytes). The record
    names its source by file name and SHA-256, and copies the sidecar's ``model`` record.
    """
    check_settings(quantizers, m, nbits, train_size, seed)
    out_json = check_output_path(out_json, overwrite=overwrite)
    X = load_npy(embeddings_npy)
    model = sidecar_model(embeddings_npy)
    base = None
    if reference is not None:
        base = load_npy(reference)
        if base.shape[0] != X.shape[0]:
            raise LatentgeoError(
                f"reference {reference} has {base.shape[0]} token vectors but {embeddings_npy} has "
                f"{X.shape[0]}: stitchability needs the same sequences through the same tokenizer"
            )
    report = measure_space(
        X,
        quantizers=quantizers,
        m=m,
        nbits=nbits,
        train_size=train_size,
        seed=seed,
        progress=progress,
        twonn_sample=twonn_sample,
        anisotropy_pairs=anisotropy_pairs,
    )
    report.record["inputs"]["source"] = Path(embeddings_npy).name
    report.record["inputs"]["source_sha256"] = file_sha256(embeddings_npy)
    if base is not None:
        from ..stitch import stitchability_measures

        report.record["stitch"] = stitchability_measures(X, base, seed=seed)
        report.record["inputs"]["reference"] = Path(reference).name
        report.record["inputs"]["reference_sha256"] = file_sha256(reference)
    if model is not None:
        report.record["model"] = model
    write_json(out_json, report.record)
    return report


def measures_table(record: dict):
    """The measures of a record as a pandas DataFrame: one row per measure, one column per section
    (the quantizers, then ``spread``); a cell is empty where a measure does not apply."""
    import pandas as pd

    sections = [s for s in (*qz.QUANTIZER_KINDS, "spread") if s in record]
    table = pd.DataFrame({s: pd.Series(record[s], dtype="float64") for s in sections})
    order = [*cells.CELL_MEASURES, *SPREAD_MEASURES]
    return table.reindex(
        [*[n for n in order if n in table.index], *sorted(set(table.index) - set(order))]
    )
