"""The model record: ``latentgeo.json`` in a model folder, written by the perturb stage.

One reader for everyone (embedding, fine-tuning, the perturb stage, model ids of a profile):
:func:`model_record` gives a folder's record, or a minimal one naming a model that has none
(a packaged name, a hub id, a folder without a record).
"""

from __future__ import annotations

import os
from pathlib import Path

from latentgeo.errors import LatentgeoError
from latentgeo.io import read_json

METADATA_FILE = "latentgeo.json"
# The family a record names: the unperturbed base, a perturbed copy, or a non-standard model.
FAMILIES = ("base", "perturbed", "non-standard")


def read_model_record(model: str | os.PathLike) -> dict | None:
    """The ``latentgeo.json`` record of a model folder, or None (packaged/hub names, other folders)."""
    path = Path(model) / METADATA_FILE
    return read_json(path) if path.is_file() else None


def model_short_name(model: str | os.PathLike) -> str:
    """A short id for a base model: its record's model_id, a folder's name, or a hub id's tail."""
    record = read_model_record(model) if Path(model).is_dir() else None
    if record and record.get("model_id"):
        return str(record["model_id"])
    return Path(str(model).rstrip("/")).name


def model_record(model: str | os.PathLike) -> dict:
    """The model's ``latentgeo.json`` record, or ``{"model_id": <short name>, "source": <model>}``
    for a model without one. A record without ``model_id`` is refused."""
    record = read_model_record(model) if Path(str(model)).is_dir() else None
    if record is None:
        return {"model_id": model_short_name(model), "source": str(model)}
    if not isinstance(record, dict) or "model_id" not in record:
        raise LatentgeoError(f"{Path(model) / METADATA_FILE} has no 'model_id'")
    return record


def check_model_record(record: dict, where: str | os.PathLike) -> dict:
    """A record as copied into a result file (``scores.json``, a measures file), checked:
    ``model_id`` and ``family`` strings, a known family, ``alpha`` a number or null, ``seed`` an
    integer or null. ``where`` names the file in the messages."""
    for key in ("model_id", "family"):
        if not isinstance(record.get(key), str):
            raise LatentgeoError(f"{where}: model record has no string field {key!r}")
    if record["family"] not in FAMILIES:
        raise LatentgeoError(
            f"{where}: model family {record['family']!r} is not one of {list(FAMILIES)}"
        )
    alpha = record.get("alpha")
    if alpha is not None and not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool)):
        raise LatentgeoError(f"{where}: model alpha {alpha!r} is not a number or null")
    seed = record.get("seed")
    if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)):
        raise LatentgeoError(f"{where}: model seed {seed!r} is not an integer or null")
    return record
