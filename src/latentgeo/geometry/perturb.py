"""Model families of the geometry study: noise-perturbed encoders and non-standard models.

The paper degrades a pretrained encoder step by step with the rule

    W ← (1 − α/100)·W + (α/100)·ε,   ε ~ N(0, 1) elementwise,   α ∈ [0, 100] (percent),

applied to every parameter of the *encoder* whose name ends in ``weight`` (the attention,
feed-forward and LayerNorm weights of every layer; biases, embeddings and the pooler untouched).
The original code drew ε from torch's global, unseeded generator; here ε comes from a local
``torch.Generator`` seeded with ``seed`` and is drawn parameter by parameter in sorted-name order,
so a (model, α, seed, scope) always gives the same bits on CPU. α = 0 copies the weights bit for
bit, α = 100 replaces them by pure noise.

Non-standard comparison models (the paper's Table of "alternative" models):

* built offline from any base model: ``untrained`` (same config, seeded random initialisation),
  ``shuffled-embeddings`` (rows of the input word-embedding matrix permuted, seeded) and
  ``shuffled-embeddings-paper`` (the paper's own "shuffle", which is not a permutation: Python's
  ``random.shuffle`` on a 2-D NumPy array copies rows over each other and so duplicates about
  half of them; seeded here, see :func:`paper_shuffle_source_rows`);
* loaded from the Hugging Face hub for users with network access: see
  :data:`latentgeo.geometry.family.HUB_NONSTANDARD`
  (BERTs pretrained on non-linguistic tasks, German/Chinese BERT given English input embeddings,
  RoBERTa pretrained on shuffled text). Offline they fail fast through :mod:`latentgeo.models.registry`.

The kinds, scopes, checks and model ids live in :mod:`latentgeo.geometry.family`. The perturb stage
(:func:`latentgeo.stages.perturb.build_family_member`) writes one model folder (safetensors
weights, config, tokenizer, ``latentgeo.json``) atomically with these rules.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from latentgeo.errors import LatentgeoError
from latentgeo.geometry.family import (
    DEFAULT_SCOPE, HUB_NONSTANDARD, PERTURBED, check_alpha, check_scope, check_seed,
)
from latentgeo.models.registry import load_encoder, load_tokenizer

# Imported inside the functions that use them (heavy, or rarely needed): matplotlib, pandas, torch, transformers.

if TYPE_CHECKING:  # pragma: no cover
    import torch


# --------------------------------------------------------------------------------------------
# The noise rule
# --------------------------------------------------------------------------------------------


def _encoder_prefix(model) -> str:
    """Name prefix of the encoder stack inside ``model`` ('encoder.' or e.g. 'bert.encoder.')."""
    names = [n for n, _ in model.named_modules()]
    for name in names:
        if name == "encoder" or name.endswith(".encoder"):
            return name + "."
    raise LatentgeoError(
        f"{type(model).__name__} has no submodule named 'encoder'; the perturbation rule is "
        "defined for BERT- and RoBERTa-type encoders"
    )


def selected_parameter_names(model, scope: str = DEFAULT_SCOPE) -> list[str]:
    """Names of the parameters the rule changes, in the order noise is drawn (sorted).

    ``encoder-weights`` (the paper's): encoder parameters whose name ends in ``weight``.
    ``all-weights``: every parameter whose name ends in ``weight`` (embeddings, pooler too).
    """
    check_scope(scope)
    prefix = _encoder_prefix(model) if scope == "encoder-weights" else ""
    names = sorted(
        name for name, _ in model.named_parameters()
        if name.startswith(prefix) and name.endswith("weight")
    )
    if not names:
        raise LatentgeoError(f"no parameter of {type(model).__name__} matches scope {scope!r}")
    return names


def noise_generator(seed: int) -> torch.Generator:
    """The local CPU generator ε is drawn from (CPU, so bits do not depend on the device)."""
    import torch

    return torch.Generator(device="cpu").manual_seed(check_seed(seed))


def perturb_model_(model, alpha: float, seed: int, scope: str = DEFAULT_SCOPE) -> list[str]:
    """Apply W ← (1 − α/100)·W + (α/100)·ε in place; return the names changed.

    ε is float32 N(0, 1) of each parameter's shape, drawn from :func:`noise_generator` in the
    order of :func:`selected_parameter_names`; arithmetic is float32 and cast back to the
    parameter's dtype. α = 0 leaves every bit untouched (no noise is drawn).
    """
    import torch

    a = check_alpha(alpha) / 100.0
    names = selected_parameter_names(model, scope)
    if a == 0.0:
        return names
    params = dict(model.named_parameters())
    gen = noise_generator(seed)
    with torch.no_grad():
        for name in names:
            p = params[name]
            eps = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            new = p.detach().to(device="cpu", dtype=torch.float32) * (1.0 - a) + a * eps
            p.copy_(new.to(device=p.device, dtype=p.dtype))
    return names


# --------------------------------------------------------------------------------------------
# Non-standard models built offline
# --------------------------------------------------------------------------------------------


def untrained_like(config, seed: int):
    """A bare ``AutoModel`` of ``config`` with transformers' own random init, seeded.

    The global torch RNG is forked so the caller's random state is left as it was.
    """
    import torch
    from transformers import AutoModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_seed(seed))
        model = AutoModel.from_config(config)
    return model.eval()


def embedding_permutation(n_rows: int, seed: int) -> torch.Tensor:
    """The seeded permutation used by :func:`shuffle_input_embeddings_` (int64, length n_rows)."""
    import torch

    gen = torch.Generator(device="cpu").manual_seed(check_seed(seed))
    return torch.randperm(n_rows, generator=gen)


def shuffle_input_embeddings_(model, seed: int) -> torch.Tensor:
    """Permute the rows of the input word-embedding matrix in place: new[i] = old[perm[i]].

    Token id i then looks up the vector that belonged to token perm[i]. Returns ``perm``.
    """
    import torch

    weight = model.get_input_embeddings().weight
    perm = embedding_permutation(weight.shape[0], seed)
    with torch.no_grad():
        weight.copy_(weight[perm.to(weight.device)].clone())
    return perm


def paper_shuffle_source_rows(n_rows: int, seed: int) -> np.ndarray:
    """Which input row each output row holds after the paper's "shuffle" of an (n_rows, d) array.

    The paper shuffled the word-embedding matrix with ``random.shuffle(matrix)`` on a 2-D NumPy
    array. ``random.shuffle`` is Fisher–Yates: for i = n−1 down to 1 it draws j uniform in
    [0, i] and runs ``x[i], x[j] = x[j], x[i]``. On a list that swaps two items; on an array the
    right-hand side holds *views* of rows j and i, so ``x[i] = view_j`` copies row j into row i
    and ``x[j] = view_i`` copies row i, which now holds row j, back onto row j. Net effect of
    step i: row i ← row j, row j unchanged. The result is not a permutation: original rows are
    lost and others duplicated (about half the rows stay distinct: 15,267 of 30,522, the size of
    BERT's uncased vocabulary, for seed 0).

    Here j comes from ``random.Random(seed).randrange(i + 1)``, the same draws ``shuffle`` makes
    with that generator, so for one seed the result equals ``random.Random(seed).shuffle`` on
    the array (the paper used the unseeded global generator). Returns ``src`` (int64,
    shape (n_rows,)): output row i is input row ``src[i]``.
    """
    rng = random.Random(check_seed(seed))
    src = np.arange(n_rows, dtype=np.int64)
    for i in range(n_rows - 1, 0, -1):
        j = rng.randrange(i + 1)
        src[i] = src[j]  # x[i] = view of row j; x[j] = view of row i (now row j): no change
    return src


def paper_shuffle_input_embeddings_(model, seed: int) -> np.ndarray:
    """The paper's "shuffle" of the input word-embedding matrix, in place: new[i] = old[src[i]]
    with ``src`` from :func:`paper_shuffle_source_rows` (rows duplicated, not permuted).

    Returns ``src``.
    """
    import torch

    weight = model.get_input_embeddings().weight
    src = paper_shuffle_source_rows(weight.shape[0], seed)
    with torch.no_grad():
        weight.copy_(weight[torch.from_numpy(src).to(weight.device)].clone())
    return src


def transplant_input_embeddings_(model, donor) -> None:
    """Give ``model`` the input word embeddings of ``donor`` (a copy), updating vocab_size.

    Used for the paper's German/Chinese BERT with English input embeddings; the donor's
    tokenizer must be used with the result.
    """
    import torch

    src = donor.get_input_embeddings().weight
    dst = model.get_input_embeddings()
    if src.shape[1] != dst.weight.shape[1]:
        raise LatentgeoError(
            f"cannot transplant input embeddings of width {src.shape[1]} into a model of width "
            f"{dst.weight.shape[1]}"
        )
    new = torch.nn.Embedding(src.shape[0], src.shape[1], padding_idx=dst.padding_idx)
    with torch.no_grad():
        new.weight.copy_(src.detach().to(dst.weight.dtype))
    model.set_input_embeddings(new)
    model.config.vocab_size = src.shape[0]


def load_hub_nonstandard(name: str, seed: int = 0):
    """Load a registered hub model (:data:`HUB_NONSTANDARD`): returns ``(model, tokenizer)``.

    Offline this fails at once with :class:`~latentgeo.errors.OfflineError`. Weights missing
    from the checkpoint (e.g. a pooler) are initialised under ``seed``.
    """
    import torch

    if name not in HUB_NONSTANDARD:
        raise LatentgeoError(f"unknown non-standard hub model {name!r}; allowed: {sorted(HUB_NONSTANDARD)}")
    spec = HUB_NONSTANDARD[name]
    if spec.hub_id is None:
        raise LatentgeoError(
            f"{name!r} ({spec.description}) is distributed as a fairseq checkpoint, not on the "
            f"hub: download {spec.source}, convert it to a transformers RoBERTa folder (config.json "
            "+ safetensors + tokenizer), and pass that folder as the model"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_seed(seed))
        model = load_encoder(spec.hub_id)
        tokenizer = load_tokenizer(spec.hub_id)
        if spec.embeddings_from is not None:
            transplant_input_embeddings_(model, load_encoder(spec.embeddings_from))
            tokenizer = load_tokenizer(spec.embeddings_from)
    return model, tokenizer


def relative_changes(base_model: str | os.PathLike, model_dir: str | os.PathLike):
    """Per-parameter ‖W' − W‖ / ‖W‖ between a base model and a built folder (a DataFrame).

    Columns: parameter, shape, numel, changed (bool), relative_change. For notebooks.
    """
    import pandas as pd
    import torch

    base = dict(load_encoder(base_model).named_parameters())
    rows = []
    for name, p in load_encoder(model_dir).named_parameters():
        if name not in base or base[name].shape != p.shape:
            rows.append({"parameter": name, "shape": tuple(p.shape), "numel": p.numel(),
                         "changed": True, "relative_change": float("nan")})
            continue
        w = base[name].detach().double()
        diff = torch.linalg.vector_norm(p.detach().double() - w).item()
        norm = torch.linalg.vector_norm(w).item()
        rows.append({"parameter": name, "shape": tuple(p.shape), "numel": p.numel(),
                     "changed": diff > 0,
                     # 0 for an unchanged all-zero bias; NaN only if a zero tensor changed
                     "relative_change": 0.0 if diff == 0 else (diff / norm if norm > 0 else float("nan"))})
    return pd.DataFrame(rows)


def recovered_noise(base_model: str | os.PathLike, model_dir: str | os.PathLike, alpha: float,
                    scope: str = DEFAULT_SCOPE):
    """ε̂ = (W' − (1 − a)·W) / a over every selected parameter, concatenated (float64 numpy).

    Should look like N(0, 1) draws; used by the perturbation notebook and tests. Needs α > 0.
    """
    a = check_alpha(alpha) / 100.0
    if a == 0.0:
        raise LatentgeoError("alpha = 0 adds no noise; nothing to recover")
    base_model_obj = load_encoder(base_model)
    base = dict(base_model_obj.named_parameters())
    new = dict(load_encoder(model_dir).named_parameters())
    parts = []
    for name in selected_parameter_names(base_model_obj, scope):
        w = base[name].detach().double().numpy()
        w2 = new[name].detach().double().numpy()
        parts.append(((w2 - (1.0 - a) * w) / a).ravel())
    return np.concatenate(parts)


def family_member_figure(base_model: str | os.PathLike, model_dir: str | os.PathLike, record: dict,
                         changes=None):
    """Two panels for the perturbation notebook (a matplotlib figure).

    Left: ‖W' − W‖ / ‖W‖ per parameter (log scale; unchanged parameters at the bottom edge).
    Right: for a perturbed model with α > 0, the histogram of the recovered noise ε̂ against the
    N(0, 1) density it should follow; otherwise the distributions of all weight values of the
    base and the built model. ``changes``: a :func:`relative_changes` table already computed.
    """
    import matplotlib.pyplot as plt
    table = relative_changes(base_model, model_dir) if changes is None else changes
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    values = table["relative_change"].to_numpy(dtype=float)
    floor = np.nanmin(values[values > 0]) / 10 if np.any(values > 0) else 1e-8
    left.scatter(np.arange(len(table)), np.where(values > 0, values, floor), s=8,
                 c=np.where(table["changed"], "tab:red", "tab:gray"))
    left.set_yscale("log")
    left.set_xlabel("parameter index (model order)")
    left.set_ylabel("relative change ‖W′ − W‖ / ‖W‖")
    left.set_title(f"{int(table['changed'].sum())} of {len(table)} parameters changed (red; "
                   "grey: unchanged, drawn at the bottom)", fontsize=10)

    alpha = record.get("alpha")
    if record.get("kind") == PERTURBED and alpha:
        eps = recovered_noise(base_model, model_dir, alpha, record.get("scope") or DEFAULT_SCOPE)
        right.hist(eps, bins=100, density=True, color="tab:blue", alpha=0.7, label="recovered ε")
        grid = np.linspace(-5, 5, 401)
        right.plot(grid, np.exp(-grid**2 / 2) / np.sqrt(2 * np.pi), "k-", lw=1, label="N(0, 1)")
        right.set_xlim(-5, 5)
        right.set_xlabel("ε = (W′ − (1 − α/100)·W) / (α/100)")
        right.set_title(f"noise recovered from {eps.size:,} weights: mean {eps.mean():.3f}, sd {eps.std():.3f}")
    else:
        for source, label in ((base_model, "base"), (model_dir, record.get("model_id", "built"))):
            w = np.concatenate([p.detach().double().numpy().ravel() for p in load_encoder(source).parameters()])
            right.hist(w, bins=200, range=(-0.3, 0.3), histtype="step", density=True, label=label)
        right.set_xlabel("weight value")
        right.set_title("all weights (clipped to ±0.3)")
    right.set_ylabel("density")
    right.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"{record.get('model_id')}: {record.get('rule', '')[:90]}…", fontsize=9)
    fig.tight_layout()
    return fig
