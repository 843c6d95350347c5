"""The perturb stage (``notebooks/01_perturb.ipynb``, ``latentgeo perturb``): one model folder.

:func:`build_family_member` builds one member of the model family (:mod:`latentgeo.geometry.family`)
with the rules of :mod:`latentgeo.geometry.perturb` and writes it (safetensors weights, config, tokenizer and the
``latentgeo.json`` record of :mod:`latentgeo.models.record`) atomically.
"""

from __future__ import annotations

import os

from latentgeo import __version__
from latentgeo.errors import LatentgeoError
from latentgeo.geometry.family import (
    DEFAULT_SCOPE,
    HUB_NONSTANDARD,
    PERTURBED,
    SHUFFLED_EMBEDDINGS,
    SHUFFLED_EMBEDDINGS_PAPER,
    UNTRAINED,
    check_alpha,
    check_kind,
    check_scope,
    check_seed,
    family_model_id,
    rule_text,
)
from latentgeo.geometry.perturb import (
    load_hub_nonstandard,
    paper_shuffle_input_embeddings_,
    perturb_model_,
    shuffle_input_embeddings_,
    untrained_like,
)
from latentgeo.io import atomic_output, check_output_path, write_json
from latentgeo.models.record import METADATA_FILE, model_short_name
from latentgeo.models.registry import load_config, load_encoder, load_tokenizer, resolve_model

# Deferred to the functions that use them, so that importing this module stays light: torch.


def build_family_member(
    base_model: str | os.PathLike,
    kind: str = PERTURBED,
    alpha: float | None = 0.0,
    seed: int = 1,
    scope: str = DEFAULT_SCOPE,
    out_dir: str | os.PathLike = "models/minilm-l6-a0-s1",
    *,
    overwrite: bool = False,
) -> dict:
    """Build one member of the model family and write it to ``out_dir`` atomically.

    ``kind`` is ``perturbed`` (noise rule at ``alpha``), ``untrained``, ``shuffled-embeddings``,
    ``shuffled-embeddings-paper`` (``alpha`` must then be 0 or None) or a name of
    :data:`HUB_NONSTANDARD` (``base_model`` is then ignored; needs network). The folder holds
    safetensors weights, ``config.json``, the tokenizer files and ``latentgeo.json``; it loads
    with ``AutoModel.from_pretrained``.
    Returns the metadata record written to ``latentgeo.json``.
    """
    import torch

    # Cheap checks first: nothing is loaded or written until every input is known to be good.
    check_kind(kind)
    check_seed(seed)
    check_scope(scope)
    if kind == PERTURBED:
        alpha = check_alpha(0.0 if alpha is None else alpha)
    else:
        if alpha not in (None, 0, 0.0):
            raise LatentgeoError(f"alpha = {alpha!r} applies only to kind 'perturbed', not {kind!r}; use 0")
        alpha = None
    hub_spec = HUB_NONSTANDARD.get(kind)
    if hub_spec is None:
        resolve_model(base_model)  # unknown names and offline hub ids fail here
    elif hub_spec.hub_id is None:
        load_hub_nonstandard(kind)  # raises: explains where the checkpoint lives
    else:
        resolve_model(hub_spec.hub_id)  # offline: fails before anything is written
    out_dir = check_output_path(out_dir, overwrite=overwrite)

    base_name = str(base_model) if hub_spec is None else (hub_spec.hub_id or kind)
    changed: list[str] = []
    if hub_spec is not None:
        model, tokenizer = load_hub_nonstandard(kind, seed)
        base_short = kind
    else:
        base_short = model_short_name(base_model)
        tokenizer = load_tokenizer(base_model)
        if kind == UNTRAINED:
            model = untrained_like(load_config(base_model), seed)
        else:
            # Weights missing from a checkpoint (e.g. a pooler) are initialised reproducibly.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = load_encoder(base_model)
            if kind == PERTURBED:
                changed = perturb_model_(model, alpha, seed, scope)
            elif kind == SHUFFLED_EMBEDDINGS_PAPER:
                paper_shuffle_input_embeddings_(model, seed)
            else:
                shuffle_input_embeddings_(model, seed)

    if kind == PERTURBED:
        family = "base" if alpha == 0.0 else "perturbed"
    else:
        family = "non-standard"
    record = {
        "model_id": family_model_id(base_short, kind, alpha, seed, scope),
        "base_model": base_short if hub_spec is None else base_name,
        "family": family,
        "kind": kind,
        "alpha": alpha,
        "seed": seed,
        "scope": scope if kind == PERTURBED else None,
        "rule": rule_text(kind, scope, hub_spec),
        "n_parameters_changed": len(changed) if kind == PERTURBED else None,
        "latentgeo_version": __version__,
    }
    with atomic_output(out_dir, directory=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / METADATA_FILE, record)
    return record
