"""The measures stage (notebook ``04_measures``, ``latentgeo measures``): one latent sample's file.

:func:`measures_file` validates a ``.npy`` sample, computes every measure
(:func:`latentgeo.geometry.measures.compute.measure_space`), adds how well the sample translates
onto the unperturbed base's (``stitch``), and writes deterministic JSON:

    {"inputs": {..., source, source_sha256, reference, reference_sha256},
     "model": <the "model" record of the sample's sidecar X.json, when it has one>,
     "pq": {...}, "lsq": {...}, "spread": {...}, "stitch": {...},
     "sweep": [{quantizer, m, nbits, k, n_sequences, n, ...cell measures}, ...]}

``sweep`` (with ``measures.sweep`` in the profile) holds the cell measures at other numbers of bins
and on smaller samples (:mod:`latentgeo.geometry.measures.sweep`), each row over the sweep's own
quantizer seeds. The row of the main setting on the whole sample is the main section's values only
when the sweep runs as many seeds as the main measures; otherwise it is measured again with the
sweep's seeds (the default profile: one seed, FAISS's default, against the main section's three),
so that every point of the sweep rests on the same number of quantizer starts.
"""

from __future__ import annotations

import os
from pathlib import Path

from latentgeo.errors import LatentgeoError
from latentgeo.geometry.measures import intrinsic, spread
from latentgeo.geometry.measures import quantizers as qz
from latentgeo.geometry.measures.compute import MeasureReport, measure_space, quantizer_seed_list
from latentgeo.geometry.measures.sweep import SWEEP_MEASURES, SweepPoint, cell_sweep, check_sweep, sweep_points
from latentgeo.geometry.measures.validate import check_settings
from latentgeo.io import check_output_path, file_sha256, load_npy, read_json, write_json
from latentgeo.translation.stitch import stitchability_measures


def read_sidecar(embeddings_npy: str | os.PathLike) -> dict:
    """The sample's sidecar record (``X.json`` beside ``X.npy``, written by `latentgeo embed`);
    an empty dict when there is none."""
    sidecar = Path(embeddings_npy).with_suffix(".json")
    if not sidecar.is_file():
        return {}
    meta = read_json(sidecar)
    if not isinstance(meta, dict):
        raise LatentgeoError(f"sidecar {sidecar} is not a JSON object")
    return meta


def sidecar_model(meta: dict, embeddings_npy: str | os.PathLike) -> dict | None:
    """The ``model`` record of a sidecar (:func:`read_sidecar`), if it has one."""
    model = meta.get("model")
    if model is not None and not isinstance(model, dict):
        raise LatentgeoError(f"sidecar {Path(embeddings_npy).with_suffix('.json')}: 'model' is not a JSON object")
    return model


def sidecar_offsets(meta: dict, embeddings_npy: str | os.PathLike, n: int) -> list[int]:
    """Per-sequence row offsets of the sample (length sequences + 1) from its sidecar."""
    offsets = meta.get("offsets")
    if not isinstance(offsets, list) or len(offsets) < 2 or offsets[-1] != n:
        raise LatentgeoError(
            f"a sweep over sample sizes needs the sample's per-sequence offsets (its sidecar "
            f"{Path(embeddings_npy).with_suffix('.json')}, written by `latentgeo embed`), covering all {n} vectors"
        )
    return [int(o) for o in offsets]


def measures_arguments(settings) -> dict:
    """Every keyword of :func:`measures_file` that a profile's ``measures`` section sets, the bins
    and sample-size sweep included: the one mapping from a profile to the measures stage's call."""
    sweep = settings.sweep
    points = sweep_points(m=settings.m, nbits=settings.nbits, m_values=sweep.m,
                          nbits_values=sweep.nbits, n_sequences=sweep.n_sequences)
    return {"quantizers": tuple(settings.quantizers), "m": settings.m, "nbits": settings.nbits,
            "train_size": settings.train_size, "seed": settings.seed,
            "quantizer_seeds": settings.quantizer_seeds,
            "sweep": points, "sweep_quantizer": sweep.quantizer, "sweep_seeds": sweep.quantizer_seeds}


def _main_point_row(record: dict, kind: str) -> dict:
    """The sweep row of the main setting on the whole sample, from the main record's section."""
    inputs, section = record["inputs"], record[kind]
    sd = (record.get("quantizer_seed_sd") or {}).get(kind, {}).get("patchiness")
    return {"quantizer": kind, "m": inputs["m"], "nbits": inputs["nbits"], "k": inputs["k"],
            "n_sequences": None, "n": inputs["n"], "train_size": inputs["train_size"],
            **{name: section[name] for name in SWEEP_MEASURES}, "patchiness_sd": sd}


def measures_file(
    embeddings_npy: str | os.PathLike,
    out_json: str | os.PathLike,
    *,
    quantizers=("pq", "lsq"),
    m: int = 4,
    nbits: int = 8,
    train_size: int | str = "all",
    seed: int = qz.PAPER_SEED,
    quantizer_seeds: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    twonn_sample: int = intrinsic.DEFAULT_TWONN_SAMPLE,
    anisotropy_pairs: int = spread.DEFAULT_ANISOTROPY_PAIRS,
    reference: str | os.PathLike | None = None,
    sweep: list[SweepPoint] = (),
    sweep_quantizer: str = "pq",
    sweep_seeds: int = 1,
) -> MeasureReport:
    """Measure the sample in ``embeddings_npy`` (n, d) and write the record to ``out_json``.

    With ``reference`` (the unperturbed base's token vectors of the same sequences, row-paired),
    a ``stitch`` section adds how well this space translates onto the base's
    (:func:`latentgeo.translation.stitch.stitchability_measures`): a geometric measure beyond the paper.

    With ``sweep`` points (:func:`measures_arguments`), a ``sweep`` section adds the cell measures of
    ``sweep_quantizer`` at each point, over ``sweep_seeds`` quantizer seeds; a point equal to the
    main setting on the whole sample is copied from the main section when ``sweep_quantizer`` is one
    of ``quantizers`` and the seed counts agree.

    Settings, output path, file, sample, sidecar and sweep are all checked before any training; the JSON
    is written atomically and deterministically (same file and settings → same bytes). The record
    names its source by file name and SHA-256, and copies the sidecar's ``model`` record.
    """
    check_settings(quantizers, m, nbits, train_size, seed)
    quantizer_seed_list(seed, quantizer_seeds)
    out_json = check_output_path(out_json, overwrite=overwrite)
    X = load_npy(embeddings_npy)
    meta = read_sidecar(embeddings_npy)
    model = sidecar_model(meta, embeddings_npy)
    offsets = None
    if sweep:
        offsets = sidecar_offsets(meta, embeddings_npy, X.shape[0])
        check_sweep(sweep, offsets, X.shape[1], sweep_quantizer)
        quantizer_seed_list(seed, sweep_seeds)
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
        quantizer_seeds=quantizer_seeds,
        progress=progress,
        twonn_sample=twonn_sample,
        anisotropy_pairs=anisotropy_pairs,
    )
    report.record["inputs"]["source"] = Path(embeddings_npy).name
    report.record["inputs"]["source_sha256"] = file_sha256(embeddings_npy)
    if base is not None:
        report.record["stitch"] = stitchability_measures(X, base, seed=seed)
        report.record["inputs"]["reference"] = Path(reference).name
        report.record["inputs"]["reference_sha256"] = file_sha256(reference)
    if sweep:
        main = SweepPoint(m, nbits)
        copy_main = main in sweep and sweep_quantizer in report.record and sweep_seeds == quantizer_seeds
        rows = cell_sweep(
            X, offsets, [p for p in sweep if not (copy_main and p == main)], kind=sweep_quantizer,
            train_size=train_size, seeds=quantizer_seed_list(seed, sweep_seeds), progress=progress,
        )
        if copy_main:
            rows.insert(list(sweep).index(main), _main_point_row(report.record, sweep_quantizer))
        report.record["sweep"] = rows
    if model is not None:
        report.record["model"] = model
    write_json(out_json, report.record)
    return report
