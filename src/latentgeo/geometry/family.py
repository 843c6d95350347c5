"""The model family of a profile: which models it builds, how they are named, and the checks.

The vocabulary of the perturb stage, apart from the code that builds the models
(:mod:`latentgeo.geometry.perturb`, which needs torch and transformers): the kinds of member
(``perturbed`` and the non-standard kinds, offline or from the hub), the noise scopes, the
checks of α, seed, scope and kind, the model ids (:func:`family_model_id`) and a profile's grid
of members (:func:`profile_members`). The profile schema imports this module only, so a change
to the noise code reruns the perturb stage and what follows it, not every stage.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from latentgeo.errors import LatentgeoError
from latentgeo.io import MAX_SEED
from latentgeo.models.record import model_short_name

PERTURBED = "perturbed"
UNTRAINED = "untrained"
SHUFFLED_EMBEDDINGS = "shuffled-embeddings"
SHUFFLED_EMBEDDINGS_PAPER = "shuffled-embeddings-paper"
# Non-standard models built offline from any base model. shuffled-embeddings-paper: the paper's
# random.shuffle of a 2-D array (duplicates rows; see perturb.paper_shuffle_source_rows), beside the true
# permutation shuffled-embeddings.
NONSTANDARD_KINDS = (UNTRAINED, SHUFFLED_EMBEDDINGS, SHUFFLED_EMBEDDINGS_PAPER)
BUILDABLE_KINDS = (PERTURBED, *NONSTANDARD_KINDS)
SCOPES = ("encoder-weights", "all-weights")
DEFAULT_SCOPE = "encoder-weights"

RULE = (
    "W <- (1 - alpha/100) * W + (alpha/100) * eps, eps ~ N(0, 1) elementwise, for every {where} "
    "parameter whose name ends in 'weight'; eps from torch.Generator('cpu').manual_seed(seed), "
    "drawn in float32 parameter by parameter in sorted-name order"
)
SCOPE_WHERE = {"encoder-weights": "encoder", "all-weights": "model"}


# --------------------------------------------------------------------------------------------
# Hub-hosted non-standard models of the paper (need network access)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubNonstandard:
    """A non-standard model of the paper that lives on the Hugging Face hub.

    ``hub_id`` is loaded with ``AutoModel``; if ``embeddings_from`` is set, that model's input
    word embeddings (and its tokenizer) replace the model's own, as in the paper's "German/Chinese
    BERT with English input embeddings". ``hub_id = None`` marks a model distributed outside the
    hub (``source`` says where); it must be converted to a transformers folder by the user.
    """

    hub_id: str | None
    description: str
    source: str
    embeddings_from: str | None = None


HUB_NONSTANDARD: dict[str, HubNonstandard] = {
    # Alajrami & Aletras (2022): BERT-base-sized RoBERTa models pretrained on non-linguistic tasks.
    "bert-ascii": HubNonstandard(
        "aajrami/bert-ascii-base", "pretrained to predict the ASCII sum of masked words",
        "Alajrami & Aletras 2022, huggingface.co/aajrami"),
    "bert-rand": HubNonstandard(
        "aajrami/bert-rand-base", "pretrained to predict random labels of masked words",
        "Alajrami & Aletras 2022, huggingface.co/aajrami"),
    "bert-fc": HubNonstandard(
        "aajrami/bert-fc-base", "pretrained on first-character prediction",
        "Alajrami & Aletras 2022, huggingface.co/aajrami"),
    "bert-mlm": HubNonstandard(
        "aajrami/bert-mlm-base", "the same authors' plain MLM control",
        "Alajrami & Aletras 2022, huggingface.co/aajrami"),
    # Zhang-style transplant: a non-English BERT body with English input embeddings.
    "german-bert-english-embeddings": HubNonstandard(
        "dbmdz/bert-base-german-uncased", "German BERT with bert-base-uncased input embeddings",
        "paper's alternative models", embeddings_from="bert-base-uncased"),
    "chinese-bert-english-embeddings": HubNonstandard(
        "bert-base-chinese", "Chinese BERT with bert-base-uncased input embeddings",
        "paper's alternative models", embeddings_from="bert-base-uncased"),
    # Sinha et al. (2021): fairseq checkpoints, not on the hub.
    "roberta-shuffle-n1": HubNonstandard(
        None, "RoBERTa-base pretrained on sentence-level word-shuffled text",
        "https://dl.fbaipublicfiles.com/unnatural_pretraining/roberta.base.shuffle.n1.tar.gz"),
    "roberta-shuffle-corpus": HubNonstandard(
        None, "RoBERTa-base pretrained on corpus-level word-shuffled text",
        "https://dl.fbaipublicfiles.com/unnatural_pretraining/roberta.base.shuffle.corpus.tar.gz"),
}
KINDS = BUILDABLE_KINDS + tuple(HUB_NONSTANDARD)


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def check_alpha(alpha: float) -> float:
    """Return α as a float, or raise if it is not a finite percentage in [0, 100]."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise LatentgeoError(f"alpha = {alpha!r} is not a number; allowed: 0 <= alpha <= 100") from None
    if not math.isfinite(value) or not 0.0 <= value <= 100.0:
        raise LatentgeoError(f"alpha = {alpha!r} is out of range; allowed: 0 <= alpha <= 100 (percent)")
    return value


def check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise LatentgeoError(f"seed = {seed!r}; allowed: an integer in [0, 2**32 - 1]")
    return seed


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise LatentgeoError(f"scope = {scope!r}; allowed: {list(SCOPES)}")
    return scope


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise LatentgeoError(f"kind = {kind!r}; allowed: {list(KINDS)}")
    return kind


# --------------------------------------------------------------------------------------------
# Model ids of the family
# --------------------------------------------------------------------------------------------


# A profile's base model is written unquoted into dvc.yaml's commands (``-p base_model NAME``) and
# its short name starts the ids that name DVC stages (``perturb@ID``), folders and files: both
# must be one shell word with no character a path or a stage name treats specially.
BASE_NAME_PATTERN = re.compile(r"[A-Za-z0-9._/-]+")
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9._-]+")


def check_base_model_id(base: str) -> str:
    """The short name of a profile's base model (:func:`model_short_name`: its record's model_id, a
    folder's name or a hub id's tail), or raise if the name or the ids it starts could not name a
    DVC stage, a folder and a shell word: ASCII letters, digits, ``.``, ``_``, ``-`` (and ``/`` in
    the name, for paths and hub ids)."""
    if not BASE_NAME_PATTERN.fullmatch(base):
        raise LatentgeoError(
            f"base model {base!r}: the name goes into dvc.yaml's commands, so it may hold only ASCII "
            "letters, digits and . _ - / (rename the folder or link it under such a name)"
        )
    short = model_short_name(base)
    if not MODEL_ID_PATTERN.fullmatch(short):
        raise LatentgeoError(
            f"base model {base!r}: its short name {short!r} starts the model ids that name DVC "
            "stages and files, so it may hold only ASCII letters, digits and . _ - (rename the "
            "folder, or set model_id in its latentgeo.json)"
        )
    return short


def family_model_id(base: str, kind: str, alpha: float | None, seed: int, scope: str = DEFAULT_SCOPE) -> str:
    """``minilm-l6-a5-s1``, ``minilm-l6-a0.25-s1``, ``minilm-l6-untrained-s1``, ``bert-rand``.

    A non-default scope adds ``-allw`` so the id names every parameter of the build.
    """
    if kind in HUB_NONSTANDARD:
        return kind
    if kind == PERTURBED:
        ident = f"{base}-a{float(alpha):g}-s{seed}"
        return ident + ("-allw" if scope == "all-weights" else "")
    return f"{base}-{kind}-s{seed}"


@dataclass(frozen=True)
class Member:
    """One model of a profile's grid, and one cell of the perturb, embed, measures and finetune
    stages (their outputs are named by ``model_id``).

    ``alpha`` is 0 for every kind but ``perturbed`` (a DVC command needs a number to interpolate);
    ``reference`` is the ``model_id`` of the family's unperturbed base, whose token vectors the
    stitchability measures compare each member's against.
    """

    model_id: str
    base_model: str
    kind: str
    alpha: float
    seed: int
    reference: str

    def as_entry(self) -> dict:
        """The member's line of a profile's ``members`` mapping (everything but its key)."""
        alpha = int(self.alpha) if float(self.alpha).is_integer() else self.alpha
        return {"base_model": self.base_model, "kind": self.kind, "alpha": alpha,
                "seed": self.seed, "reference": self.reference}


def profile_members(
    base_models: list[str],
    alphas: list[float],
    seeds: list[int],
    nonstandard: list[str] = (),
    scope: str = DEFAULT_SCOPE,
) -> dict[str, Member]:
    """Every model a profile builds, by ``model_id``: per base model its unperturbed base (α = 0,
    built once, with the first seed: noise-free, the seed would change nothing), each α > 0 ×
    seed, then each offline non-standard kind once, with the first seed (they are held out of every
    fit and predicted by it, as the paper's were); hub non-standard kinds once (they have no base
    model and no seed).

    These are the ids the perturb stage writes into ``latentgeo.json``; the results table keeps
    exactly these rows, so outputs left behind by another profile never leak into a figure.
    """
    members: dict[str, Member] = {}

    def add(base: str, kind: str, alpha: float, seed: int, reference: str) -> None:
        short = model_short_name(base)
        model_id = family_model_id(short, kind, alpha if kind == PERTURBED else None, seed, scope)
        if model_id not in members:
            members[model_id] = Member(model_id, str(base), kind, float(alpha), seed, reference)

    for base in base_models:
        reference = family_model_id(model_short_name(base), PERTURBED, 0.0, seeds[0], scope)
        add(base, PERTURBED, 0.0, seeds[0], reference)
        for alpha in alphas:
            for seed in seeds:
                if alpha != 0:
                    add(base, PERTURBED, alpha, seed, reference)
        for kind in nonstandard:  # once, like the paper's non-standard models (held out of every fit)
            add(base, kind, 0.0, seeds[0], reference)
    return members


def rule_text(kind: str, scope: str, hub_spec: HubNonstandard | None) -> str:
    if kind == PERTURBED:
        return RULE.format(where=SCOPE_WHERE[scope])
    if kind == UNTRAINED:
        return "same config as the base model, transformers' random initialisation under torch.manual_seed(seed)"
    if kind == SHUFFLED_EMBEDDINGS:
        return (
            "input word-embedding rows permuted: new[i] = old[perm[i]], "
            "perm = torch.randperm(vocab, generator=torch.Generator('cpu').manual_seed(seed))"
        )
    if kind == SHUFFLED_EMBEDDINGS_PAPER:
        return (
            "the paper's random.shuffle of the 2-D input word-embedding array (Fisher-Yates with "
            "row views: for i = n-1..1, j = random.Random(seed).randrange(i + 1), row i <- row j), "
            "which duplicates rows instead of permuting them"
        )
    assert hub_spec is not None
    text = f"{hub_spec.description} ({hub_spec.source})"
    if hub_spec.embeddings_from:
        text += f"; input embeddings and tokenizer from {hub_spec.embeddings_from}"
    return text
