"""The measures stage (notebook ``04_measures``, ``latentgeo measures``): one latent sample's file.

:func:`measures_file` validates a ``.npy`` sample, computes every measure
(:func:`latentgeo.geometry.measures.compute.measure_space`), adds how well the sample translates
onto the unperturbed base's (``stitch``), and writes deterministic JSON:

    {"inputs": {..., source, source_sha256, reference, reference_sha256},
     "model": <the "model" record of the sample's sidecar X.json, when it has one>,
     "pq": {...}, "lsq": {...}, "spread": {...}, "stitch": {...}}
"""

from __future__ import annotations

import os
from pathlib import Path

from latentgeo.errors import LatentgeoError
from latentgeo.geometry.measures import intrinsic, spread
from latentgeo.geometry.measures import quantizers as qz
from latentgeo.geometry.measures.compute import MeasureReport, measure_space, quantizer_seed_list
from latentgeo.geometry.measures.validate import check_settings
from latentgeo.io import check_output_path, file_sha256, load_npy, read_json, write_json
from latentgeo.translation.stitch import stitchability_measures


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
    seed: int = qz.PAPER_SEED,
    quantizer_seeds: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    twonn_sample: int = intrinsic.DEFAULT_TWONN_SAMPLE,
    anisotropy_pairs: int = spread.DEFAULT_ANISOTROPY_PAIRS,
    reference: str | os.PathLike | None = None,
) -> MeasureReport:
    """Measure the sample in ``embeddings_npy`` (n, d) and write the record to ``out_json``.

    With ``reference`` (the unperturbed base's token vectors of the same sequences, row-paired),
    a ``stitch`` section adds how well this space translates onto the base's
    (:func:`latentgeo.translation.stitch.stitchability_measures`): a geometric measure beyond the paper.

    Settings, output path, file, sample and sidecar are all checked before any training; the JSON
    is written atomically and deterministically (same file and settings → same bytes). The record
    names its source by file name and SHA-256, and copies the sidecar's ``model`` record.
    """
    check_settings(quantizers, m, nbits, train_size, seed)
    quantizer_seed_list(seed, quantizer_seeds)
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
    if model is not None:
        report.record["model"] = model
    write_json(out_json, report.record)
    return report
