"""``latentgeo references``: obtain and verify published reference tables pinned by a manifest."""

from __future__ import annotations

import argparse

from latentgeo.analysis.references import (
    DEFAULT_MANIFEST,
    DEFAULT_OUT,
    get_references,
    load_manifest,
    verify_references,
)
from latentgeo.cli.commands import SUMMARIES


def _get(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    report = get_references(manifest, args.out, source_dir=args.source_dir,
                            base_url=args.base_url, overwrite=args.overwrite)
    print(report.message)
    return 0


def _verify(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.manifest)
    paths = verify_references(manifest, args.out)
    print(f"{args.out}: {len(paths)} tables match {args.manifest} "
          f"({manifest.repository}@{manifest.commit[:12]}, sha256 checked)")
    return 0


def _manifest_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", default=str(DEFAULT_MANIFEST),
                        help=f"provenance manifest (default: {DEFAULT_MANIFEST})")
    parser.add_argument("--out", default=str(DEFAULT_OUT),
                        help=f"folder of the tables (default: {DEFAULT_OUT}, git-ignored)")


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "references", help=SUMMARIES["references"],
        description=(
            "The geometry paper's published metric tables are pinned by a manifest "
            "(repository, commit, path and sha256 of each table) and fetched by each user: its "
            "repository states no licence, so they are not part of this one."
        ),
    )
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    get = verbs.add_parser(
        "get",
        help="fetch the tables (network, or --from a local copy), check every sha256, write them",
        description=(
            "Obtain every table of the manifest into --out. A file already there with the right "
            "sha256 is kept. The others come from --from DIR (a checkout of the repository, a git "
            "directory without a work tree, or a folder holding the files) or else from "
            "<base-url>/<repository>/<commit>/<path>. Every sha256 is checked before anything is "
            "written; a mismatch is refused, naming the file and both hashes."
        ),
    )
    _manifest_arguments(get)
    get.add_argument("--from", dest="source_dir", metavar="DIR", default=None,
                     help="a local copy of the repository or a folder holding the files")
    get.add_argument("--base-url", default=None,
                     help="where raw files are served (default: $LATENTGEO_REFERENCES_URL, else "
                          "https://raw.githubusercontent.com)")
    get.add_argument("--overwrite", action="store_true",
                     help="replace files in --out whose sha256 differs from the manifest's")
    get.set_defaults(func=_get)
    verify = verbs.add_parser("verify", help="check the tables in --out against the manifest")
    _manifest_arguments(verify)
    verify.set_defaults(func=_verify)
