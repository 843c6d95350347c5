"""Leave one family of models out: does a measure predict models of a family it has never seen?

For every family of models (``base_model``: the model each row was perturbed from), ``score ~
controls + measure`` is fitted by OLS on the other families' training rows and predicts that
family's rows; its RMSE and MAE stand beside those of ``score ~ controls`` alone on the same rows,
the error a measure has to beat. Within one family a measure that only tracks the noise level can
still correlate with the score; across families it has to carry what the noise level does not.
Beside the two errors, model by model: how many left-out models the measure predicts closer than
the controls alone do, how many farther, and the exact two-sided sign test of those counts. It asks
whether an improvement is shared by the left-out models or carried by a few; it takes the fits as
given (one per family), so it says nothing of how the fits themselves would vary.
The training rows are the ones :func:`latentgeo.analysis.regression.regress` fits (the held-out
non-standard models never enter a fit), read and validated by the same functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from latentgeo.analysis.regression import (
    HOLDOUT_COLUMN,
    HOLDOUT_VALUE,
    check_controls,
    holdout_mask,
    numeric_column,
    row_labels,
)
from latentgeo.analysis.statistics import mae, rmse
from latentgeo.errors import LatentgeoError

# Deferred to the functions that use them, so that importing this module stays light: statsmodels.

FAMILY_COLUMN = "base_model"


def leave_one_family_out_predictions(features: np.ndarray, y: np.ndarray, families: Sequence[str]) -> np.ndarray:
    """Each row's score predicted by OLS of ``y ~ 1 + features`` fitted on the rows of the other
    families only. ``features``: (n, p), may be p = 0 (intercept only); ``y``: (n,); returns (n,).

    Raises :class:`LatentgeoError` when fewer than two families are given or a fold's design
    is rank-deficient (e.g. a feature constant over the other families' rows).
    """
    import statsmodels.api as sm

    families = np.asarray([str(f) for f in families], dtype=object)
    levels = sorted(set(families.tolist()))
    if len(levels) < 2:
        raise LatentgeoError(f"leave-one-family-out needs two or more families, got {levels}")
    design = np.column_stack([np.ones(y.size), features]).astype("float64")
    predicted = np.full(y.size, np.nan)
    for level in levels:
        out = families == level
        train = design[~out]
        if train.shape[0] <= train.shape[1] - 1 or np.linalg.matrix_rank(train) < train.shape[1]:
            raise LatentgeoError(
                f"without family {level!r}: {train.shape[0]} rows cannot fit {train.shape[1]} "
                "coefficients (too few rows, or a constant or collinear column)"
            )
        fit = sm.OLS(y[~out].astype("float64"), train).fit()
        predicted[out] = design[out] @ fit.params
    return predicted


def paired_sign_test(errors: np.ndarray, baseline_errors: np.ndarray) -> dict:
    """Model by model, a measure's prediction errors (n,) against the baseline's on the same rows.

    ``better``: rows with |error| < |baseline error|; ``worse``: >; ties count in neither.
    ``sign_test_p``: exact two-sided binomial test of better against better + worse at ½ (1.0
    when every row ties)."""
    from scipy import stats

    gap = np.abs(baseline_errors) - np.abs(errors)
    better, worse = int((gap > 0).sum()), int((gap < 0).sum())
    p = stats.binomtest(better, better + worse, 0.5).pvalue if better + worse else 1.0
    return {"better": better, "worse": worse, "sign_test_p": float(p)}


def _lofo_errors(features: np.ndarray, y: np.ndarray, families: np.ndarray) -> dict:
    """RMSE and MAE of the leave-one-family-out predictions, over all rows and per family, and
    the errors themselves (observed − predicted, ``errors``: (n,), in row order)."""
    errors = y - leave_one_family_out_predictions(features, y, families)
    return {
        "errors": errors,
        "n": int(y.size),
        "rmse": rmse(errors),
        "mae": mae(errors),
        "per_family": {
            str(f): {"n": int((families == f).sum()), "rmse": rmse(errors[families == f]),
                     "mae": mae(errors[families == f])}
            for f in sorted(set(families.tolist()))
        },
    }


def leave_one_family_out(
    table: pd.DataFrame,
    score: str,
    measures: Sequence[str],
    *,
    controls: Sequence[str] = (),
    family_column: str = FAMILY_COLUMN,
    holdout: str | None = HOLDOUT_VALUE,
) -> dict:
    """How well each measure predicts a family of models it has never seen.

    For every value of ``family_column`` (e.g. ``base_model``: the model each row was perturbed
    from), ``score ~ controls + measure`` is fitted on the training rows (those :func:`regress`
    fits: every row but the ``holdout`` family's) of the *other* families and predicts that
    family's rows; the errors (observed − predicted) over every left-out row give ``rmse`` and
    ``mae`` per measure (and ``per_family``). ``baseline_rmse`` and ``baseline_mae`` are those of
    ``score ~ controls`` on the same rows (intercept only without controls): the error a measure
    has to beat; ``better``, ``worse`` and ``sign_test_p`` compare the two model by model
    (:func:`paired_sign_test`). A row missing the score, a control, its family or the measure is
    left out.

    Returns ``column``, ``families`` (sorted), ``controls`` (expressions), ``fit_rows``,
    ``baseline`` (``score ~ controls`` over every row with score and controls: n, rmse, mae,
    per_family) and ``measures`` (per measure: n, rmse, mae, baseline_rmse, baseline_mae,
    better, worse, sign_test_p, per_family, reason None; or, when a measure cannot be fitted in
    some fold, null numbers and the ``reason``), with ``reason`` None. With fewer than two
    families (or no family column), ``baseline`` and ``measures`` are None and ``reason`` says
    why: never an error.
    """
    labels = row_labels(table)
    y_all = numeric_column(table, score, "score")
    parsed, control_frame = check_controls(table, list(controls), score, list(measures), None, labels)
    held = holdout_mask(table, holdout)
    train = ~held if held is not None else pd.Series(True, index=table.index)
    out = {
        "column": family_column,
        "families": [],
        "controls": [c.expr for c in parsed],
        "fit_rows": f"{HOLDOUT_COLUMN} != {holdout!r}" if held is not None else "all",
        "baseline": None,
        "measures": None,
        "reason": None,
    }
    if family_column not in table.columns:
        return {**out, "reason": f"the table has no {family_column!r} column"}
    families_all = table[family_column].astype("string")
    base_rows = train & y_all.notna() & families_all.notna() & control_frame.notna().all(axis=1)
    out["families"] = sorted(families_all[base_rows].unique().tolist())
    if len(out["families"]) < 2:
        return {**out, "reason": f"{len(out['families'])} family of models ({family_column}: "
                                 f"{out['families']}) among the training rows; leaving one out needs two or more"}
    xs = {m: numeric_column(table, m, "measure") for m in measures}
    c_all = control_frame.to_numpy(dtype="float64")

    def errors(rows: pd.Series, with_measure: pd.Series | None) -> dict:
        mask = rows.to_numpy()
        features = c_all[mask]
        if with_measure is not None:
            features = np.column_stack([features, with_measure[rows].to_numpy()])
        fams = families_all[rows].astype(str).to_numpy(dtype=object)
        return _lofo_errors(features, y_all[rows].to_numpy(), fams)

    try:
        out["baseline"] = _without_errors(errors(base_rows, None))
    except LatentgeoError as err:
        return {**out, "reason": f"controls-only model: {err}"}
    results = {}
    for m, x in xs.items():
        rows = base_rows & x.notna()
        try:
            model, baseline = errors(rows, x), errors(rows, None)
        except LatentgeoError as err:
            results[m] = {"n": int(rows.sum()), "rmse": None, "mae": None, "baseline_rmse": None,
                          "baseline_mae": None, "better": None, "worse": None, "sign_test_p": None,
                          "per_family": None, "reason": str(err)}
            continue
        per_family = {
            f: {**v, "baseline_rmse": baseline["per_family"][f]["rmse"],
                "baseline_mae": baseline["per_family"][f]["mae"]}
            for f, v in model["per_family"].items()
        }
        results[m] = {"n": model["n"], "rmse": model["rmse"], "mae": model["mae"],
                      "baseline_rmse": baseline["rmse"], "baseline_mae": baseline["mae"],
                      **paired_sign_test(model["errors"], baseline["errors"]),
                      "per_family": per_family, "reason": None}
    out["measures"] = results
    return out


def _without_errors(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != "errors"}


# A measure's fitted values, as leave_one_family_out returns them, in the table's column order.
FIT_KEYS = ("n", "rmse", "mae", "baseline_rmse", "baseline_mae", "better", "worse", "sign_test_p")
LOFO_COLUMNS = ["measure", *FIT_KEYS, "beats_baseline", "reason"]


def lofo_table(lofo: dict) -> pd.DataFrame:
    """One row per measure of a :func:`leave_one_family_out` result (columns :data:`LOFO_COLUMNS`;
    ``beats_baseline``: RMSE below the controls-only RMSE; ``better``/``worse``: left-out models
    predicted closer/farther than by the controls alone), lowest RMSE first; empty when the result
    has no measures (its ``reason`` says why)."""
    if not lofo.get("measures"):
        return pd.DataFrame(columns=LOFO_COLUMNS)
    rows = []
    for name, fit in lofo["measures"].items():
        rmse, base = fit["rmse"], fit["baseline_rmse"]
        beats = None if rmse is None or base is None else bool(rmse < base)
        rows.append({"measure": name, **{k: fit[k] for k in FIT_KEYS},
                     "beats_baseline": beats, "reason": fit["reason"]})
    frame = pd.DataFrame(rows, columns=LOFO_COLUMNS)
    return frame.sort_values(["rmse", "measure"], na_position="last", kind="mergesort").reset_index(drop=True)
