"""The embed stage (``notebooks/03_embed.ipynb``, ``latentgeo embed``): a sequences file in,
``X.npy`` + ``X.json`` out, with the extractor of :mod:`latentgeo.geometry.embed`."""

from __future__ import annotations

import os
from pathlib import Path

from latentgeo import __version__
from latentgeo.errors import LatentgeoError
from latentgeo.geometry.embed import POOLINGS, EmbeddingResult, embed_texts
from latentgeo.io import check_output_path, file_sha256, read_sequences, save_npy, write_json
from latentgeo.models.registry import resolve_model


def sidecar_path(out_npy: str | os.PathLike) -> Path:
    """``X.json`` beside ``X.npy``."""
    return Path(out_npy).with_suffix(".json")


def embed_file(
    model: str | os.PathLike,
    sequences_file: str | os.PathLike,
    out_npy: str | os.PathLike,
    n_sequences: int | None = None,
    layer: int = -1,
    pooling: str = "none",
    *,
    batch_size: int = 32,
    max_tokens_per_batch: int = 8192,
    device: str | None = None,
    progress: bool = True,
    overwrite: bool = False,
) -> EmbeddingResult:
    """Embed the first ``n_sequences`` of ``sequences_file`` (all if None); write X.npy + X.json.

    ``X.npy``: 2-D float32 vectors (see :func:`embed_texts`). ``X.json``: the model record (from
    the model folder's ``latentgeo.json``) under ``model``, layer, pooling, offsets, token count,
    truncation limit, the sequences file and its sha256. Every input is checked before the model
    runs; both files are written atomically, and neither is kept if the other fails.
    """
    out_npy = Path(out_npy)
    if out_npy.suffix != ".npy":
        raise LatentgeoError(f"output path {out_npy} must end in .npy")
    if pooling not in POOLINGS:
        raise LatentgeoError(f"pooling = {pooling!r}; allowed: {list(POOLINGS)}")
    if n_sequences is not None and (isinstance(n_sequences, bool) or int(n_sequences) < 1):
        raise LatentgeoError(f"n_sequences = {n_sequences!r}; allowed: a positive integer")
    resolve_model(model)
    texts = read_sequences(sequences_file)
    if n_sequences is not None:
        if int(n_sequences) > len(texts):
            raise LatentgeoError(
                f"n_sequences = {n_sequences} but {sequences_file} holds only {len(texts)} sequences"
            )
        texts = texts[: int(n_sequences)]
    sidecar = sidecar_path(out_npy)
    check_output_path(out_npy, overwrite=overwrite)
    check_output_path(sidecar, overwrite=overwrite)

    result = embed_texts(
        model, texts, layer=layer, pooling=pooling, batch_size=batch_size,
        max_tokens_per_batch=max_tokens_per_batch, device=device, progress=progress,
    )
    result.extra.update({
        "sequences_file": str(sequences_file),
        "sequences_sha256": file_sha256(sequences_file),
        "latentgeo_version": __version__,
    })
    meta = result.metadata()
    save_npy(out_npy, result.vectors)
    try:
        write_json(sidecar, meta)
    except BaseException:
        out_npy.unlink(missing_ok=True)
        raise
    return result
