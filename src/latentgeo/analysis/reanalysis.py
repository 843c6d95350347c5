"""The geometry paper's published metric tables, reanalysed with this project's regression code.

Marbut, Chandler & Wheeler (arXiv 2406.12159) publish four tables of geometric measures and GLUE
scores (``results/metric files/`` of their repository; pinned by ``references/manifolds.json``
and fetched by ``latentgeo references get``, see :mod:`latentgeo.analysis.references`):

=============  ============================  ==========================================
role           file                          rows
=============  ============================  ==========================================
bert-small     ``bert_small_metrics.csv``    128 noisy bert-small models (α 0.5–100 %)
bert-base      ``bert_model_metrics.csv``    7 noisy bert-base-uncased models (α 0–18 %)
roberta        ``roberta_model_metrics.csv`` 36 noisy roberta-base models (α 0.5–70 %)
alternative    ``alt_model_metrics.csv``     13 alternative models (other pre-training)
=============  ============================  ==========================================

They are read as the paper's ``results/linreg_clean.R`` reads them: the first column is the model
name (blank header in bert-small and alternative); the score is bert-small's 26th column
``new_average`` (the GLUE average without WNLI) and the 25th column ``average`` of bert-base and
roberta, renamed ``glue_average``; the alternative table's 26th column (a second copy of the model
name) is dropped and its ``glue_average`` is the score; each row gets the family label
``source`` the R script gives it (the alternative models by position, :data:`ALT_SOURCES`).
A header that is not where the script expects it is refused: another layout would silently
change what is analysed.

Computed (:func:`reanalyse`), on the R script's 19 measures (:data:`R_MEASURES`):

* **the bert-small sweep**: per measure, ``score ~ measure`` (r, slope, …) on the 125 rows with
  every value (3 of the 128 rows have no measures and no α), and the partial r given the
  controls (default ``log(alpha)``: α runs from 0.5 to 100 there, never 0), with p-values and
  Holm adjustment across the 19 measures; the controls' own r with the score;
* **the three families** (bert-small + roberta + bert-base, 171 rows, 168 with every value of a
  measure, 167 for the IQR and skew measures, which one roberta row lacks): ``glue_average ~
  measure`` and ``glue_average ~ measure + source`` fitted on these rows only, predicting the 13
  alternative models (held out), with the MSE over all 13 and without the R script's outlier
  models (:data:`latentgeo.analysis.statistics.R_SCRIPT_OUTLIERS`);
* **the published check**: the values the paper reports beside ours (:data:`PUBLISHED`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from latentgeo.analysis.regression import (
    HOLDOUT_COLUMN,
    HOLDOUT_VALUE,
    heldout_error_table,
    partial_table,
    regress,
)
from latentgeo.analysis.statistics import R_SCRIPT_OUTLIERS
from latentgeo.errors import LatentgeoError

ROLES = ("bert-small", "bert-base", "roberta", "alternative")
SCORE = "glue_average"
GROUP = "source"
TRAINING_FAMILY = "perturbed"
# The `source` labels of linreg_clean.R: one per noisy family, ...
SOURCE_OF_ROLE = {
    "bert-small": "bert small models",
    "bert-base": "bert base models",
    "roberta": "roberta models",
}
# ... and the alternative models', assigned by row position in that script, in this order.
ALT_SOURCES = (
    ("bert base models",) * 4 + ("roberta models",) * 7 + ("bert small models", "bert base models")
)
# The measures linreg_clean.R regresses on (its `select_metrics`), in its order.
R_MEASURES = (
    "p-error", "p-iqr", "p-skew", "p-centroids", "p-point_dist", "p-patchiness",
    "a-error", "a-iqr", "a-skew", "a-centroids", "a-point_dist", "a-patchiness",
    "EEE", "IsoScore", "p-count_var", "p-count_kl", "a-count_var", "a-count_kl", "VRM",
)
DEFAULT_CONTROLS = ("log(alpha)",)
# The bert-small sweep as published (Pearson r with the average GLUE score over the noisy
# bert-small models): additive-quantizer patchiness r = 0.902 over n = 125, slope 16.30;
# product-quantizer patchiness r = 0.326. `digits`: the precision they are published with.
PUBLISHED = {
    "a-patchiness": {"r": 0.902, "n": 125, "slope": 16.30},
    "p-patchiness": {"r": 0.326},
}
PUBLISHED_DIGITS = {"r": 3, "n": 0, "slope": 2}
# Where each table's columns must be for the R script's positional renames (0-based).
_SCORE_POSITION = {"bert-small": (25, "new_average"), "bert-base": (24, "average"),
                   "roberta": (24, "average")}
_ALT_DROPPED = (25, "model")


# --------------------------------------------------------------------------------------------
# Reading the tables as linreg_clean.R does
# --------------------------------------------------------------------------------------------


def _header_at(frame: pd.DataFrame, position: int, expected: str, role: str) -> None:
    """Refuse a table whose column ``position`` is not ``expected`` (pandas' name)."""
    names = list(map(str, frame.columns))
    found = names[position] if position < len(names) else None
    if found != expected:
        raise LatentgeoError(
            f"{role} table: column {position + 1} is {found!r}, expected {expected!r} "
            f"(the layout linreg_clean.R reads); columns: {names}"
        )


def read_published_table(path: str | os.PathLike, role: str) -> pd.DataFrame:
    """One published table with the R script's renames: ``model`` (first column), ``glue_average``
    (the score), the measures, ``alpha`` (NaN for the alternative models) and ``source``.

    Rows keep the file's order. Raises :class:`LatentgeoError` for an unknown role, an unreadable
    file or a layout other than the published one.
    """
    if role not in ROLES:
        raise LatentgeoError(f"unknown table role {role!r}; allowed: {list(ROLES)}")
    path = Path(path)
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise LatentgeoError(f"cannot read the {role} table {path}: {err}") from None
    first = str(frame.columns[0])
    if role == "alternative":
        # Drop by position first: the 26th column is a second `model`, the first one's copy.
        position, expected = _ALT_DROPPED
        _header_at(frame, position, expected, role)
        frame = frame.drop(columns=frame.columns[position]).rename(columns={first: "model"})
        if SCORE not in frame.columns:
            raise LatentgeoError(f"{role} table {path} has no {SCORE!r} column")
        if len(frame) != len(ALT_SOURCES):
            raise LatentgeoError(
                f"{role} table {path} has {len(frame)} rows; linreg_clean.R labels exactly "
                f"{len(ALT_SOURCES)} by position"
            )
        frame["alpha"] = math.nan
        frame[GROUP] = list(ALT_SOURCES)
    else:
        position, expected = _SCORE_POSITION[role]
        _header_at(frame, position, expected, role)
        frame = frame.rename(columns={first: "model", expected: SCORE})
        frame[GROUP] = SOURCE_OF_ROLE[role]
    missing = [m for m in (*R_MEASURES, "alpha", SCORE) if m not in frame.columns]
    if missing:
        raise LatentgeoError(f"{role} table {path} lacks columns {missing}")
    frame["model"] = frame["model"].astype(str)
    return frame


def read_published_tables(paths: dict[str, Path]) -> dict[str, pd.DataFrame]:
    """All four tables by role (see :func:`read_published_table`)."""
    missing = [r for r in ROLES if r not in paths]
    if missing:
        raise LatentgeoError(f"tables missing for roles {missing}")
    return {role: read_published_table(paths[role], role) for role in ROLES}


def combined_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The R script's ``combined_models`` (bert-small, roberta, bert-base: its rbind order) as
    training rows (``family`` = perturbed) followed by the alternative models as held-out rows
    (``family`` = non-standard), on the columns model, family, source, alpha, glue_average and
    the R script's measures."""
    columns = ["model", HOLDOUT_COLUMN, GROUP, "alpha", SCORE, *R_MEASURES]
    parts = [
        tables[role].assign(**{HOLDOUT_COLUMN: TRAINING_FAMILY})
        for role in ("bert-small", "roberta", "bert-base")
    ]
    parts.append(tables["alternative"].assign(**{HOLDOUT_COLUMN: HOLDOUT_VALUE}))
    return pd.concat([p[columns] for p in parts], ignore_index=True)


# --------------------------------------------------------------------------------------------
# The analyses
# --------------------------------------------------------------------------------------------


def published_check(sweep: dict) -> list[dict]:
    """Each published number beside ours, rounded to the published precision, and whether the two
    agree at that precision."""
    rows = []
    for measure, values in PUBLISHED.items():
        fit = sweep["measures"][measure]
        for key, published in values.items():
            ours = fit[key]
            digits = PUBLISHED_DIGITS[key]
            rows.append({
                "measure": measure,
                "statistic": key,
                "published": published,
                "ours": ours,
                "ours_rounded": round(float(ours), digits),
                "agrees": round(float(ours), digits) == round(float(published), digits),
            })
    return rows


def _describe_missing(columns: list[str]) -> str:
    """'alpha and all 19 measures', or the missing columns named."""
    measures = [c for c in columns if c in R_MEASURES]
    others = [c for c in columns if c not in R_MEASURES]
    if len(measures) == len(R_MEASURES):
        return " and ".join([*others, f"all {len(R_MEASURES)} measures"])
    return ", ".join(columns)


def row_accounting(tables: dict[str, pd.DataFrame], combined: pd.DataFrame) -> dict:
    """Which rows the fits use and why: per table its rows and the rows lacking a value of the
    score, α or any R-script measure (named), and the training and held-out counts."""
    out = {}
    for role, frame in tables.items():
        needed = [SCORE, *R_MEASURES] + (["alpha"] if role != "alternative" else [])
        incomplete = frame[frame[needed].isna().any(axis=1)]
        out[role] = {
            "rows": int(len(frame)),
            "complete": int(len(frame) - len(incomplete)),
            "incomplete": {
                str(row["model"]): _describe_missing([c for c in needed if pd.isna(row[c])])
                for _, row in incomplete.iterrows()
            },
        }
    training = combined[combined[HOLDOUT_COLUMN] == TRAINING_FAMILY]
    out["families"] = {
        "training_rows": int(len(training)),
        "heldout_rows": int(len(combined) - len(training)),
        "fitted_rows_per_measure": {
            m: int(training[[m, SCORE]].notna().all(axis=1).sum()) for m in R_MEASURES
        },
    }
    return out


def reanalyse(tables: dict[str, pd.DataFrame], controls: tuple[str, ...] | list[str] = DEFAULT_CONTROLS) -> dict:
    """Every number of the reanalysis (see the module doc) as one JSON-ready dict:
    ``sweep`` (bert-small, :func:`latentgeo.analysis.regression.regress` result with controls),
    ``families`` (the three families with the group fit, the alternative models held out),
    ``published`` (:func:`published_check`), ``rows`` (:func:`row_accounting`) and the
    ``alt_sources`` labels given."""
    sweep = regress(tables["bert-small"], SCORE, measures=list(R_MEASURES), controls=list(controls),
                    holdout=None)
    combined = combined_table(tables)
    families = regress(combined, SCORE, measures=list(R_MEASURES), group=GROUP,
                       outliers=R_SCRIPT_OUTLIERS)
    alt = tables["alternative"]
    return {
        "score": SCORE,
        "measures": list(R_MEASURES),
        "controls": list(controls),
        "sweep": sweep,
        "families": families,
        "published": published_check(sweep),
        "rows": row_accounting(tables, combined),
        "alt_sources": dict(zip(alt["model"], alt[GROUP])),
    }


def predictions_table(result: dict, measure: str) -> pd.DataFrame:
    """The alternative models' scores as predicted by ``measure``'s two family fits: model,
    source, observed, predicted (``score ~ measure``), predicted_group (``+ source``), and
    whether the R script counts the model as an outlier."""
    fit = result["families"]["measures"][measure]
    plain = {p["model"]: p for p in fit["heldout"]["predictions"]}
    grouped = {p["model"]: p for p in fit["group_fit"]["heldout"]["predictions"]}
    rows = [
        {
            "model": model,
            "source": result["alt_sources"].get(model),
            "observed": p["observed"],
            "predicted": p["predicted"],
            "predicted_group": grouped.get(model, {}).get("predicted", math.nan),
            "outlier": model in R_SCRIPT_OUTLIERS,
        }
        for model, p in plain.items()
    ]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# The stage: verify, read, reanalyse, write
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReanalysisResult:
    """What :func:`run_reanalysis` produced: the result dict and the paths written."""

    result: dict
    out: Path | None
    figure: Path | None

    @property
    def published(self) -> pd.DataFrame:
        """The published numbers beside ours."""
        return pd.DataFrame(self.result["published"])

    @property
    def sweep(self) -> pd.DataFrame:
        """bert-small: r and partial r per measure (strongest |r| first)."""
        return partial_table(self.result["sweep"])

    @property
    def family_errors(self) -> pd.DataFrame:
        """The alternative models' MSE per measure, plain and with ``+ source``."""
        return heldout_error_table(self.result["families"])

    def predictions(self, measure: str = "a-patchiness") -> pd.DataFrame:
        return predictions_table(self.result, measure)
