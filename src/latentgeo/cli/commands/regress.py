"""``latentgeo regress``: OLS of a score on each measure column of any CSV table."""

from __future__ import annotations

import argparse

from latentgeo.analysis.regression import HOLDOUT_VALUE, read_table, regress, write_regression
from latentgeo.analysis.statistics import R_SCRIPT_OUTLIERS
from latentgeo.cli.commands import SUMMARIES, add_output_arguments
from latentgeo.io import check_output_path


def _regress(args: argparse.Namespace) -> int:
    # Refuse an occupied output before reading or fitting anything.
    check_output_path(args.out, overwrite=args.overwrite)
    table = read_table(args.table)
    result = regress(
        table,
        args.score,
        measures=args.measure,
        group=args.group,
        controls=args.control or (),
        holdout=None if args.no_holdout else HOLDOUT_VALUE,
        outliers=R_SCRIPT_OUTLIERS if args.outlier is None else args.outlier,
    )
    write_regression(result, args.out, overwrite=args.overwrite)
    top = result["ranking"][0]
    fit = result["measures"][top]
    print(
        f"{args.out}: {len(result['measures'])} measures regressed on {args.score!r}; "
        f"strongest {top!r}: r = {fit['r']:.3f} (n = {fit['n']}, slope {fit['slope']:.4g})"
    )
    if result["controls"]:
        summary = result["controls"]
        alone = ", ".join(f"{e}: r = {f['r']:.3f}" for e, f in summary["fits"].items())
        print(f"controls alone (n = {summary['n']}): {alone}; R² = {summary['r2']:.3f}")
        if fit.get("partial_undefined"):
            print(f"partial r of {top!r}: undefined ({fit['partial_undefined']})")
        else:
            print(
                f"partial r of {top!r} given {summary['exprs']}: {fit['partial_r']:.3f} "
                f"(p = {fit['partial_p_value']:.3g}, Holm {fit['partial_p_holm']:.3g}, "
                f"n = {fit['partial_n']})"
            )
    if result["skipped"]:
        print(f"skipped (cannot be fitted): {sorted(result['skipped'])}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "regress", help=SUMMARIES["regress"],
        description=(
            "Fit score ~ measure by OLS for each measure column of a CSV table (one row per model), "
            "reporting n, slope, intercept, Pearson r, R², p-value (and Holm-adjusted) and 95 % "
            "confidence intervals, the leave-one-out prediction error, with --group also "
            "score ~ measure + C(group), and with --control the partial r given the controls. "
            "When the table has a 'family' column with 'non-standard' rows, those rows are held "
            "out: every fit uses the other rows only and predicts them (unless --no-holdout). "
            "Rows are named by a 'model' column, else by a first column with a blank header "
            "holding unique strings (a CSV written from a pandas index), else by position. Rows "
            "with a missing value in the columns a fit uses are dropped and counted."
        ),
    )
    parser.add_argument("--table", required=True, help="CSV table, one row per model")
    parser.add_argument("--score", required=True, help="the score column (e.g. score_average)")
    parser.add_argument(
        "--measure", action="append", metavar="COL",
        help="a measure column (repeatable); default: every numeric column except the score, "
        "the group, the control columns, alpha, seed, other score_* columns and columns with a "
        "blank header (unfittable ones are skipped)",
    )
    parser.add_argument("--group", metavar="COL", help="also fit score ~ measure + C(COL)")
    parser.add_argument(
        "--control", action="append", metavar="EXPR",
        help="a control for the partial r (repeatable): COL, log(COL) or log1p(COL); reports "
        "partial r, its p-value, the measure's coefficient in score ~ controls + measure and "
        "Holm-adjusted p-values across measures",
    )
    parser.add_argument(
        "--outlier", action="append", metavar="LABEL",
        help="a held-out row left out of mse_without_outliers (repeatable); default: the outlier "
        "models of the paper's linreg_clean.R",
    )
    parser.add_argument(
        "--no-holdout", action="store_true",
        help="fit on every row instead of holding out the non-standard family",
    )
    add_output_arguments(parser, "output JSON file")
    parser.set_defaults(func=_regress)
