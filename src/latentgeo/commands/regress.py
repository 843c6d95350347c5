"""``latentgeo regress``: OLS of a score on each measure column of any CSV table."""

from __future__ import annotations

import argparse

from . import add_output_arguments


def _regress(args: argparse.Namespace) -> int:
    from ..io import check_output_path
    from ..regression import HOLDOUT_VALUE, read_table, regress, write_regression

    # Refuse an occupied output before reading or fitting anything.
    check_output_path(args.out, overwrite=args.overwrite)
    table = read_table(args.table)
    result = regress(
        table,
        args.score,
        measures=args.measure,
        group=args.group,
        holdout=None if args.no_holdout else HOLDOUT_VALUE,
    )
    write_regression(result, args.out, overwrite=args.overwrite)
    top = result["ranking"][0]
    fit = result["measures"][top]
    print(
        f"{args.out}: {len(result['measures'])} measures regressed on {args.score!r}; "
        f"strongest {top!r}: r = {fit['r']:.3f} (n = {fit['n']})"
    )
    if result["skipped"]:
        print(f"skipped (cannot be fitted): {sorted(result['skipped'])}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "regress",
        help="OLS of a score on each measure of a table (r, R², CIs, leave-one-out, held-out)",
        description=(
            "Fit score ~ measure by OLS for each measure column of a CSV table (one row per model), "
            "reporting n, slope, intercept, Pearson r, R², p-value and 95 % confidence intervals, "
            "the leave-one-out prediction error, and with --group also score ~ measure + C(group). "
            "When the table has a 'family' column with 'non-standard' rows, the lines are fitted on "
            "the other rows and predict those (unless --no-holdout). Rows with a missing value in "
            "the columns a fit uses are dropped and counted."
        ),
    )
    parser.add_argument("--table", required=True, help="CSV table, one row per model")
    parser.add_argument("--score", required=True, help="the score column (e.g. score_average)")
    parser.add_argument(
        "--measure", action="append", metavar="COL",
        help="a measure column (repeatable); default: every numeric column except the score, "
        "the group, alpha, seed and other score_* columns (unfittable ones are skipped)",
    )
    parser.add_argument("--group", metavar="COL", help="also fit score ~ measure + C(COL)")
    parser.add_argument(
        "--no-holdout", action="store_true",
        help="fit on every row instead of holding out the non-standard family",
    )
    add_output_arguments(parser, "output JSON file")
    parser.set_defaults(func=_regress)
