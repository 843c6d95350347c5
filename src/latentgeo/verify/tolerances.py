"""The tolerance file: which results to compare, and how far each value may move.

A tolerance file (``tolerances/<profile>.yaml``) belongs to one profile and says

* ``reference``: where that profile's committed results live inside the repository at a revision
  (``.``: the study's own ``results/``; ``tests/reference/smoke``: a committed smoke reference
  holding ``results/...`` and the ``params.yaml`` that made them);
* ``results``: globs of the result files, relative to the repository root (tables CSV, metrics
  JSON, the plot CSVs behind the figures; never images);
* ``only_pipeline_outputs``: count as workspace results only files the DVC pipeline declares as
  outputs for the active profile (for a profile whose workspace also holds another profile's
  committed results: a smoke run in a clone of the default study);
* ``row_ids``: for CSV files whose rows are not identified by their text columns, the columns
  that identify a row (e.g. ``n_anchors`` as well in an anchor sweep);
* ``ignore``: values that are not results (wall times, hashes of intermediate arrays), each with
  the reason they are left out (their values are not compared; their presence still is);
* ``tolerances``: rules ``{name, files, keys, [rows,] abs, rel, why}`` (``rows``: for CSV cells,
  globs of the row label, such as ``*-a100-*`` for one model's row). A numeric value matched by a rule
  passes when |new − old| ≤ max(abs, rel·|old|). The first matching rule applies; a value no rule
  matches must be identical, and text must always be identical.

Globs: in file patterns ``*`` stays within one folder and ``**`` crosses folders; in key patterns
(a JSON value's dotted path such as ``metrics.validation.accuracy`` or ``log_history.3.loss``, or a
CSV column name) ``*`` stays within one segment and ``**`` crosses segments; ``?`` is one
character. Nothing is generated from today's column names: new keys fall under whichever pattern
matches them, or must be identical until a rule covers them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from latentgeo.errors import LatentgeoError

TOLERANCES_DIR = "tolerances"
ROW_SEP = "\x00"  # row globs have no separator: * matches any run of characters
DEFAULT_RESULTS = ("results/**/*.json", "results/**/*.csv")


@lru_cache(maxsize=4096)
def glob_regex(pattern: str, sep: str) -> re.Pattern:
    """Compile a glob over ``sep``-separated names: ``**`` any run of characters (``**/`` also
    none: ``results/**/*.json`` matches ``results/a.json``), ``*`` any run without ``sep``, ``?``
    one character other than ``sep``; everything else literal (``[`` in a name is a bracket)."""
    parts, i = [], 0
    not_sep = f"[^{re.escape(sep)}]"
    while i < len(pattern):
        if pattern.startswith("**" + sep, i):  # any number of whole segments, none included
            parts.append(f"(?:.*{re.escape(sep)})?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append(f"{not_sep}*")
            i += 1
        elif pattern[i] == "?":
            parts.append(not_sep)
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def matches(name: str, patterns: tuple[str, ...], sep: str) -> bool:
    """Whether ``name`` matches any of the globs (see :func:`glob_regex`)."""
    return any(glob_regex(p, sep).match(name) for p in patterns)


def _as_tuple(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Patterns = tuple[str, ...]


class _Scoped(_Strict):
    files: Patterns = Field(description="globs of result files (repository-relative)")
    keys: Patterns = Field(description="globs of JSON dotted paths or CSV column names")
    rows: Patterns = Field((), description="CSV only: globs of row labels (e.g. '*-a100-*'); "
                           "a rule with rows applies to no JSON value")
    why: str = Field(min_length=1, description="the reason: which measurement gave the number")

    @field_validator("files", "keys", "rows", mode="before")
    @classmethod
    def _listify(cls, value):
        return _as_tuple(value) if isinstance(value, (str, list, tuple)) else value

    @field_validator("files", "keys")
    @classmethod
    def _non_empty(cls, value):
        if not value or any(not p for p in value):
            raise ValueError("needs at least one non-empty pattern")
        return value

    def applies(self, file: str, key: str, row: str | None = None) -> bool:
        """Whether the rule covers ``key`` of ``file`` (and, for a CSV cell, its ``row`` label)."""
        if self.rows and (row is None or not matches(row, self.rows, ROW_SEP)):
            return False
        return matches(file, self.files, "/") and matches(key, self.keys, ".")


class IgnoreRule(_Scoped):
    """Values that are not results (they differ between any two runs by nature)."""


class ToleranceRule(_Scoped):
    """How far a numeric value may move: |new − old| ≤ max(abs, rel·|old|)."""

    name: str = Field(min_length=1)
    abs: float = Field(0.0, ge=0)
    rel: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _some_tolerance(self):
        if self.abs == 0 and self.rel == 0:
            raise ValueError(f"rule {self.name!r}: give abs or rel > 0 (a zero tolerance is the "
                             "default for values no rule matches)")
        return self

    def allowed(self, old: float) -> float:
        """The largest |change| this rule lets pass for a reference value ``old``."""
        return max(self.abs, self.rel * abs(old))

    def describe(self) -> str:
        parts = [f"abs {self.abs:g}" if self.abs else "", f"rel {self.rel:g}" if self.rel else ""]
        return f"{self.name!r} ({' or '.join(p for p in parts if p)})"


class ToleranceFile(_Strict):
    """A validated tolerance file (see the module docstring)."""

    profile: str = Field(min_length=1)
    reference: str = "."
    results: Patterns = DEFAULT_RESULTS
    only_pipeline_outputs: bool = False
    row_ids: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    ignore: tuple[IgnoreRule, ...] = ()
    tolerances: tuple[ToleranceRule, ...] = ()
    path: str = ""  # where it was read from (set by the loader, for messages)

    @field_validator("reference")
    @classmethod
    def _relative_reference(cls, value: str):
        clean = os.path.normpath(value)
        if os.path.isabs(clean) or clean.startswith(".."):
            raise ValueError(f"{value!r} must be a folder inside the repository")
        return "." if clean in ("", ".") else clean.replace(os.sep, "/")

    @field_validator("results", mode="before")
    @classmethod
    def _listify(cls, value):
        return _as_tuple(value) if isinstance(value, (str, list, tuple)) else value

    @model_validator(mode="after")
    def _unique_names(self):
        names = [r.name for r in self.tolerances]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"tolerance names must be unique; repeated: {twice}")
        return self

    def is_result(self, path: str) -> bool:
        return matches(path, self.results, "/")

    def ignored(self, file: str, key: str, row: str | None = None) -> bool:
        return any(rule.applies(file, key, row) for rule in self.ignore)

    def rule_for(self, file: str, key: str, row: str | None = None) -> ToleranceRule | None:
        """The first tolerance rule that applies to ``key`` of ``file`` (``row``: a CSV cell's row
        label), or None: the value must be identical."""
        return next((rule for rule in self.tolerances if rule.applies(file, key, row)), None)

    def row_id_columns(self, file: str) -> tuple[str, ...] | None:
        """The columns that identify a row of CSV ``file``, if the file says; else None."""
        return next((cols for pattern, cols in self.row_ids.items() if matches(file, (pattern,), "/")), None)


def default_tolerance_path(repo: str | os.PathLike, profile: str) -> Path:
    return Path(repo) / TOLERANCES_DIR / f"{profile}.yaml"


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    return f"{where}: {first['msg']}"


def load_tolerances(path: str | os.PathLike) -> ToleranceFile:
    """Read and validate a tolerance file; a missing or invalid one is refused with one line."""
    path = Path(path)
    if not path.is_file():
        raise LatentgeoError(f"tolerance file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise LatentgeoError(f"tolerance file {path} is not valid YAML: {err}".splitlines()[0]) from None
    if not isinstance(raw, dict):
        raise LatentgeoError(f"tolerance file {path} must be a YAML mapping (profile, reference, tolerances, ...)")
    try:
        return ToleranceFile.model_validate({**raw, "path": str(path)})
    except ValidationError as err:
        raise LatentgeoError(f"tolerance file {path}: {_first_error(err)}") from None


@dataclass(frozen=True)
class Profile:
    """The profile a workspace runs: its name and its parameters as parsed YAML."""

    name: str
    params: dict


def read_profile(repo: str | os.PathLike) -> Profile:
    """The active profile of the workspace (``params.yaml``: its ``profile`` key and contents)."""
    path = Path(repo) / "params.yaml"
    if not path.is_file():
        raise LatentgeoError(f"no params.yaml in {repo}: not a latentgeo study")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise LatentgeoError(f"{path} is not valid YAML: {err}".splitlines()[0]) from None
    if not isinstance(params, dict) or not isinstance(params.get("profile"), str):
        raise LatentgeoError(f"{path} has no 'profile' name")
    return Profile(params["profile"], params)
