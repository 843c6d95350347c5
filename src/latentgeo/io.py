"""Small, careful file I/O shared by every stage.

Every output is written under a temporary name beside its destination and renamed into place
only when complete, so an interrupted or failed run never leaves a half-written file or folder
that a later run (or DVC) could mistake for a result. JSON is written deterministically (sorted
keys, fixed float formatting) so that the same inputs give the same bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from latentgeo.errors import LatentgeoError

# The range of every seed (numpy, torch and FAISS generators all take a 32-bit unsigned integer).
MAX_SEED = 2**32 - 1
# Floats in every CSV the package writes: ten significant digits.
CSV_FLOAT_FORMAT = "%.10g"


def check_output_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse an output path that already holds something, unless ``overwrite``.

    An empty folder counts as free. The parent folder is created if needed.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        if path.is_dir() and not any(path.iterdir()):
            return path
        raise LatentgeoError(
            f"output path {path} already exists with other content; "
            "choose another path, remove it, or pass --overwrite"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; move it onto ``path`` only if the block succeeds.

    With ``directory=True`` the temporary path is an (empty) folder to fill; otherwise it is a
    file name not yet created. On any exception the temporary is deleted and ``path`` is left as
    it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        tmp.unlink()
    try:
        yield tmp
        if not tmp.exists():
            raise LatentgeoError(f"internal error: nothing was written for {path}")
        # mkdtemp/mkstemp create private (0700/0600) entries; give the result the usual modes.
        os.chmod(tmp, (0o777 if tmp.is_dir() else 0o666) & ~_umask())
        if path.exists() or path.is_symlink():
            _remove(path)
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and paths to plain JSON types; NaN/inf become None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps_json(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(_jsonable(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as deterministic JSON, atomically. Returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(dumps_json(obj), encoding="utf-8")
    return path


def csv_text(frame) -> str:
    """A pandas DataFrame as deterministic CSV text: no index, floats as :data:`CSV_FLOAT_FORMAT`,
    ``\\n`` line ends, missing cells empty."""
    return frame.to_csv(index=False, float_format=CSV_FLOAT_FORMAT, lineterminator="\n", na_rep="")


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a DataFrame as :func:`csv_text`, atomically. Returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(csv_text(frame), encoding="utf-8")
    return path


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise LatentgeoError(f"file not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise LatentgeoError(f"{path} is not valid JSON: {err}") from None


def write_jsonl(path: str | os.PathLike, rows: list[dict]) -> Path:
    """Write one JSON object per line (sorted keys, UTF-8), atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(json.dumps(_jsonable(row), sort_keys=True, ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise LatentgeoError(f"file not found: {path}")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise LatentgeoError(f"{path}:{lineno} is not valid JSON: {err}") from None
            if not isinstance(row, dict):
                raise LatentgeoError(f"{path}:{lineno} is not a JSON object")
            rows.append(row)
    return rows


def read_sequences(path: str | os.PathLike) -> list[str]:
    """Read text sequences: JSON Lines with a ``text`` field (``.jsonl``), else one per line.

    Blank lines are skipped. Raises :class:`LatentgeoError` for a missing or empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise LatentgeoError(f"sequences file not found: {path}")
    if path.suffix == ".jsonl":
        rows = read_jsonl(path)
        texts = []
        for i, row in enumerate(rows, 1):
            if not isinstance(row.get("text"), str):
                raise LatentgeoError(f"{path}: record {i} has no string field 'text'")
            texts.append(row["text"])
    else:
        texts = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
        texts = [t for t in texts if t.strip()]
    if not texts:
        raise LatentgeoError(f"sequences file {path} holds no sequences")
    return texts


def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save an array as ``.npy`` atomically."""
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
    return path


def load_npy(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise LatentgeoError(f"array file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise LatentgeoError(f"cannot read {path} as a .npy array: {err}") from None


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (files may be larger than memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """The step timer: wall-clock seconds of the block into ``timings[name]`` (not on an error)."""
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start
