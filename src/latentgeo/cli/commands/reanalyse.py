"""``latentgeo reanalyse``: the paper's published tables through this project's regression."""

from __future__ import annotations

import argparse

from latentgeo.analysis.reanalysis import DEFAULT_CONTROLS, PUBLISHED
from latentgeo.analysis.references import DEFAULT_MANIFEST, DEFAULT_OUT
from latentgeo.cli.commands import SUMMARIES, add_output_arguments
from latentgeo.io import check_output_path
from latentgeo.stages.reanalysis import run_reanalysis


def _reanalyse(args: argparse.Namespace) -> int:
    check_output_path(args.out, overwrite=args.overwrite)
    if args.figure:
        check_output_path(args.figure, overwrite=args.overwrite)
    if args.pair_figure:
        check_output_path(args.pair_figure, overwrite=args.overwrite)
    done = run_reanalysis(args.manifest, args.tables, args.out, args.figure,
                          controls=args.control or DEFAULT_CONTROLS, ours=args.ours,
                          pair_figure=args.pair_figure)
    result = done.result
    sweep = result["sweep"]
    print(f"{args.out}: bert-small sweep, {len(sweep['measures'])} measures")
    for measure in PUBLISHED:
        fit = sweep["measures"][measure]
        print(f"  {measure}: r = {fit['r']:.3f} (n = {fit['n']}, slope {fit['slope']:.2f}); "
              f"partial r given {result['controls']} = {fit['partial_r']:.3f} "
              f"(p = {fit['partial_p_value']:.3g}, Holm {fit['partial_p_holm']:.3g})")
    for expr, fit in sweep["controls"]["fits"].items():
        print(f"  {expr} alone: r = {fit['r']:.3f} (n = {fit['n']})")
    agree = all(row["agrees"] for row in result["published"])
    print(f"  published values {'reproduced' if agree else 'NOT all reproduced'}: "
          + ", ".join(f"{r['measure']} {r['statistic']} {r['ours_rounded']:g} vs {r['published']:g}"
                      for r in result["published"]))
    families = result["families"]["measures"]["a-patchiness"]
    print(f"  three families, a-patchiness: n = {families['n']}, slope {families['slope']:.2f}; "
          f"+ source: slope {families['group_fit']['slope']:.2f}; the 13 alternative models: "
          f"MSE {families['heldout']['mse']:.4f} / {families['group_fit']['heldout']['mse']:.4f} "
          f"(+ source)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "reanalyse", help=SUMMARIES["reanalyse"],
        description=(
            "Read the four published tables as the paper's linreg_clean.R does and compute: per "
            "measure r and partial r given the controls on the bert-small sweep (Holm-adjusted), "
            "and glue_average ~ measure (+ source) on the three noisy families predicting the 13 "
            "alternative models (MSE with and without the script's outlier models). The tables "
            "are checked against the manifest's sha256 first (get them with `latentgeo "
            "references get`)."
        ),
    )
    parser.add_argument("--manifest", default=str(DEFAULT_MANIFEST),
                        help=f"provenance manifest (default: {DEFAULT_MANIFEST})")
    parser.add_argument("--tables", default=str(DEFAULT_OUT),
                        help=f"folder holding the tables (default: {DEFAULT_OUT})")
    parser.add_argument("--control", action="append", metavar="EXPR",
                        help="control of the partial r (repeatable): COL, log(COL) or "
                             "log1p(COL); default: log(alpha)")
    parser.add_argument("--figure", default=None, help="also draw r and partial r per measure (PNG)")
    parser.add_argument("--ours", default=None, metavar="REGRESSION_JSON",
                        help="a study's results/regression.json, drawn beside the paper's sweep "
                             "in --pair-figure")
    parser.add_argument("--pair-figure", default=None, metavar="PNG",
                        help="partial r against r per measure: the study (--ours) beside the paper")
    add_output_arguments(parser, "output JSON file")
    parser.set_defaults(func=_reanalyse)
