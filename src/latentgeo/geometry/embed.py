"""The latent sample: token vectors of a transformer encoder, computed fast and exactly.

Paper semantics: every sequence runs through the model *alone* (no padding), truncated to
``max_position_embeddings − 3`` tokens (special tokens included), and every token vector of the
chosen layer is kept, CLS and SEP included. Running 5,000 sequences one at a time is slow, so
:func:`embed_texts` sorts the sequences by length, packs them into right-padded batches under a
token budget, masks the padding, and writes each sequence's rows back in input order. Because
attention never sees a masked position and positions are counted from the left, the vectors equal
the one-at-a-time loop's up to float32 rounding (≤ 1e-4, checked by the tests and the benchmark).

Output layout: ``vectors`` is ``(n_tokens, d)`` float32, the rows of sequence ``i`` are
``vectors[offsets[i]:offsets[i + 1]]``. With ``pooling="mean"`` there is one row per sequence
(the attention-masked mean of its token vectors), and ``offsets`` is ``0, 1, …, n``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from latentgeo.errors import LatentgeoError
from latentgeo.models.record import model_record
from latentgeo.models.registry import load_config, load_encoder, load_tokenizer

# Imported inside the functions that use them (heavy, or rarely needed): matplotlib, torch, tqdm.

POOLINGS = ("none", "mean")
# The paper truncates to max_position_embeddings − 3 tokens (specials included).
POSITION_MARGIN = 3


@dataclass
class EmbeddingResult:
    """Token (or pooled) vectors of ``n`` sequences and how they were made.

    vectors: (rows, d) float32; offsets: (n + 1,) int64 row ranges per sequence;
    lengths: (n,) int64 tokens per sequence after truncation (specials included).
    """

    vectors: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    n_tokens: int
    layer: int
    layer_index: int
    pooling: str
    truncation_limit: int
    n_at_limit: int
    hidden_size: int
    model: str
    model_record: dict | None = None
    device: str = "cpu"
    extra: dict = field(default_factory=dict)

    @property
    def n_sequences(self) -> int:
        return len(self.lengths)

    def rows_of(self, i: int) -> np.ndarray:
        """The vectors of sequence ``i`` (a view)."""
        return self.vectors[self.offsets[i] : self.offsets[i + 1]]

    def metadata(self) -> dict:
        """Everything but the vectors, as plain JSON types (the sidecar's core)."""
        return {
            "model": self.model_record,
            "model_name": self.model,
            "layer": self.layer,
            "layer_index": self.layer_index,
            "pooling": self.pooling,
            "n_sequences": self.n_sequences,
            "n_tokens": self.n_tokens,
            "offsets": self.offsets.tolist(),
            "truncation_limit": self.truncation_limit,
            "n_at_limit": self.n_at_limit,
            "hidden_size": self.hidden_size,
            "shape": list(self.vectors.shape),
            "dtype": str(self.vectors.dtype),
            **self.extra,
        }


# --------------------------------------------------------------------------------------------
# Pure helpers
# --------------------------------------------------------------------------------------------


def truncation_limit(config) -> int:
    """Tokens kept per sequence: ``max_position_embeddings − 3`` (the paper's rule)."""
    limit = int(config.max_position_embeddings) - POSITION_MARGIN
    if limit < 3:
        raise LatentgeoError(f"max_position_embeddings = {config.max_position_embeddings} is too small")
    return limit


def resolve_layer(layer: int, num_hidden_layers: int) -> int:
    """Map ``layer`` (−1 = last; 0 = embedding output) to an index of ``hidden_states``."""
    n = num_hidden_layers + 1
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -n <= layer < n:
        raise LatentgeoError(
            f"layer = {layer!r}; allowed: -{n}..{n - 1} for a model with {num_hidden_layers} "
            "layers (0 is the embedding output, -1 the last layer)"
        )
    return int(layer) % n


def plan_batches(lengths: np.ndarray, batch_size: int, max_tokens_per_batch: int) -> list[np.ndarray]:
    """Group sequence indices into batches, longest first.

    Each batch holds at most ``batch_size`` sequences and at most ``max_tokens_per_batch`` padded
    tokens (count × longest length), except that a single sequence always forms a batch.
    Returns arrays of indices into ``lengths``; together they cover every index once.
    """
    if batch_size < 1 or max_tokens_per_batch < 1:
        raise LatentgeoError("batch_size and max_tokens_per_batch must be positive")
    order = np.argsort(-np.asarray(lengths), kind="stable")
    batches, current, width = [], [], 0
    for idx in order:
        if current and (len(current) >= batch_size or (len(current) + 1) * width > max_tokens_per_batch):
            batches.append(np.asarray(current, dtype=np.int64))
            current = []
        if not current:
            width = int(lengths[idx])  # longest first: the first member sets the padded width
        current.append(int(idx))
    if current:
        batches.append(np.asarray(current, dtype=np.int64))
    return batches


def offsets_from_lengths(lengths: np.ndarray) -> np.ndarray:
    """(n + 1,) int64 cumulative row offsets."""
    return np.concatenate([[0], np.cumsum(np.asarray(lengths, dtype=np.int64))]).astype(np.int64)


def _shown(text: str, width: int = 60) -> str:
    return repr(text if len(text) <= width else text[:width] + "…")


def tokenize_all(tokenizer, texts: list[str], limit: int) -> list[list[int]]:
    """Token ids of each text alone (specials added, truncated to ``limit``).

    Raises :class:`LatentgeoError` naming the first text that has no token besides specials.
    """
    enc = tokenizer(
        list(texts), truncation=True, max_length=limit, add_special_tokens=True,
        return_special_tokens_mask=True, return_attention_mask=False, return_token_type_ids=False,
    )
    for i, (text, special) in enumerate(zip(texts, enc["special_tokens_mask"])):
        if all(special):
            raise LatentgeoError(f"sequence {i} ({_shown(text)}) tokenizes to nothing but special tokens")
    return enc["input_ids"]


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else CUDA when available. On CPU, torch gets ``OMP_NUM_THREADS``
    threads when it is set (a parallel runner's share of the cores: ``latentgeo repro`` sets it
    per stage), else all of the machine's cores."""
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cpu"):
        torch.set_num_threads(cpu_threads())
    return str(device)


def cpu_threads() -> int:
    """Threads for CPU compute: a positive integer ``OMP_NUM_THREADS``, else ``os.cpu_count()``."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1


# --------------------------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------------------------


def embed_texts(
    model: str | os.PathLike,
    texts: list[str],
    *,
    layer: int = -1,
    pooling: str = "none",
    batch_size: int = 32,
    max_tokens_per_batch: int = 8192,
    device: str | None = None,
    progress: bool = True,
) -> EmbeddingResult:
    """Vectors of ``texts`` at hidden layer ``layer`` of ``model`` (name or folder).

    ``pooling="none"``: every token vector (specials included), rows in input order, see
    :class:`EmbeddingResult`. ``pooling="mean"``: one attention-masked mean vector per text.
    Each text is truncated to ``max_position_embeddings − 3`` tokens and encoded as if alone.
    """
    import torch
    from tqdm import tqdm  # plain text bars: readable in executed notebooks and logs

    if pooling not in POOLINGS:
        raise LatentgeoError(f"pooling = {pooling!r}; allowed: {list(POOLINGS)}")
    texts = list(texts)
    if not texts:
        raise LatentgeoError("no texts to embed")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise LatentgeoError(f"sequence {bad[0]} is not a string: {texts[bad[0]]!r}")
    config = load_config(model)
    layer_index = resolve_layer(layer, int(config.num_hidden_layers))
    limit = truncation_limit(config)
    tokenizer = load_tokenizer(model)
    ids = tokenize_all(tokenizer, texts, limit)  # validates every text before the model loads

    device = pick_device(device)
    encoder = load_encoder(model).to(device)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    # Texts at the limit (truncated, or exactly that long): a cheap, telling count.
    n_at_limit = int(np.sum(lengths == limit))
    hidden = int(config.hidden_size)
    if pooling == "none":
        offsets = offsets_from_lengths(lengths)
    else:
        offsets = np.arange(len(texts) + 1, dtype=np.int64)
    vectors = np.empty((int(offsets[-1]), hidden), dtype=np.float32)
    want_all = layer_index != int(config.num_hidden_layers)

    bar = tqdm(total=len(texts), unit="seq", desc="embed", disable=not progress)
    with torch.inference_mode():
        for batch in plan_batches(lengths, batch_size, max_tokens_per_batch):
            width = int(lengths[batch].max())
            input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : lengths[i]] = torch.as_tensor(ids[i], dtype=torch.long)
                mask[row, : lengths[i]] = 1
            out = encoder(
                input_ids=input_ids.to(device), attention_mask=mask.to(device),
                output_hidden_states=want_all, return_dict=True,
            )
            states = out.hidden_states[layer_index] if want_all else out.last_hidden_state
            states = states.float()
            if pooling == "mean":
                m = mask.to(device=device, dtype=states.dtype).unsqueeze(-1)
                pooled = (states * m).sum(dim=1) / m.sum(dim=1)
                vectors[batch] = pooled.cpu().numpy()
            else:
                states = states.cpu().numpy()
                for row, i in enumerate(batch):
                    vectors[offsets[i] : offsets[i + 1]] = states[row, : lengths[i]]
            bar.update(len(batch))
    bar.close()

    return EmbeddingResult(
        vectors=vectors, offsets=offsets, lengths=lengths, n_tokens=int(lengths.sum()),
        layer=int(layer), layer_index=layer_index, pooling=pooling, truncation_limit=limit,
        n_at_limit=n_at_limit, hidden_size=hidden, model=str(model),
        model_record=model_record(model), device=device,
    )


def norm_histogram(result: EmbeddingResult, bins: int = 50):
    """A matplotlib figure of the L2 norms of the vectors (for the embedding notebook)."""
    import matplotlib.pyplot as plt

    norms = np.linalg.norm(result.vectors.astype(np.float64), axis=1)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(norms, bins=bins, color="tab:blue")
    what = "token vectors" if result.pooling == "none" else "mean-pooled sequence vectors"
    ax.set_xlabel("L2 norm")
    ax.set_ylabel(f"count of {what}")
    model_id = (result.model_record or {}).get("model_id", result.model)
    ax.set_title(f"{model_id}, layer {result.layer}: {len(norms):,} {what}")
    fig.tight_layout()
    return fig
