"""The study's files as dvc.yaml hands them to the stages, and the options the study benchmarks share.

The pipeline's paths are written once, in ``dvc.yaml``: each stage's command passes them to its
notebook as papermill parameters (``-p NAME VALUE``). The benchmarks that rerun part of the study
(``finetune_seed``, ``quantizer_train_size``, ``sample_size``, ``embed``, ``finetune``,
``tolerances``) read their inputs from there instead of repeating the paths, and
:func:`add_study_arguments` gives the three that refit the regression their common options.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from latentgeo.config.schema import PARAMS_FILE

DVC_FILE = "dvc.yaml"
_PARAMETER = re.compile(r"-p\s+(\S+)\s+(\S+)")


def _stages(root: str | Path) -> dict:
    return yaml.safe_load((Path(root) / DVC_FILE).read_text(encoding="utf-8"))["stages"]


def stage_parameters(stage: str, root: str | Path = ".", stages: dict | None = None) -> dict[str, str]:
    """The ``-p NAME VALUE`` pairs of ``stage``'s command in ``root/dvc.yaml`` (or in ``stages``,
    that file's parsed ``stages`` mapping), as written there (templates kept: ``models/${key}``)."""
    stages = _stages(root) if stages is None else stages
    if stage not in stages:
        raise SystemExit(f"{Path(root) / DVC_FILE} has no stage {stage!r}")
    spec = stages[stage]
    return dict(_PARAMETER.findall(spec.get("do", spec)["cmd"]))


def folder_of(template: str) -> str:
    """The fixed folder of a templated path: ``embeddings/${key}.npy`` → ``embeddings``,
    ``results/finetune/${item.member}/${item.task}.json`` → ``results/finetune``; a path without a
    template is returned as it is."""
    parts = Path(template).parts
    fixed = next((i for i, part in enumerate(parts) if "${" in part), len(parts))
    if fixed == 0:
        raise ValueError(f"{template!r} has no fixed folder")
    return Path(*parts[:fixed]).as_posix()


@dataclass(frozen=True)
class StudyFiles:
    """Where one checkout's pipeline keeps what the benchmarks read (paths under ``root``)."""

    root: Path
    models: Path  # <model id>/: the perturb stage's models
    embeddings: Path  # <model id>.npy: the embed stage's token vectors
    sequences: Path  # the corpus the embed stage samples
    tasks: Path  # the offline suite the finetune stage trains on
    finetune: Path  # <model id>/<task>.json: the finetune stage's scores
    measures: Path  # <model id>.json: the measures stage's results
    table: Path  # the regression stage's results table
    regression: Path  # the regression stage's fits

    def lock_key(self, path: Path) -> str:
        """``path`` as the checkout's dvc.lock names it (relative to ``root``, forward slashes)."""
        return Path(path).relative_to(self.root).as_posix()


def study_files(root: str | Path = ".") -> StudyFiles:
    """:class:`StudyFiles` of the checkout at ``root``, read from its ``dvc.yaml``."""
    root = Path(root)
    stages = _stages(root)  # parsed once
    embed, finetune, regression = (stage_parameters(name, root, stages)
                                   for name in ("embed", "finetune", "regression"))
    return StudyFiles(
        root=root,
        models=root / folder_of(embed["model_dir"]),
        embeddings=root / folder_of(embed["out"]),
        sequences=root / embed["sequences_file"],
        tasks=root / finetune["data_dir"],
        finetune=root / regression["finetune_dir"],
        measures=root / regression["measures_dir"],
        table=root / regression["table_out"],
        regression=root / regression["regression_out"],
    )


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the benchmarks that rerun part of the study and refit its regression:
    the profile, the checkout whose files they read, worker processes and a CSV report. Parse
    them with :func:`parse_study_arguments`."""
    parser.add_argument("--params", help=f"the profile (default: STUDY/{PARAMS_FILE})")
    parser.add_argument("--study", default=".",
                        help="the checkout whose dvc.yaml names the models, samples and committed "
                             "results read (default: the current folder)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of one thread each")
    parser.add_argument("--csv", help="also write the per-measure report to this CSV file")


# Where each study benchmark keeps the small per-model results of its run (measures, scores, costs:
# JSON, committed with the repository), so that its analysis, and the numbers docs/results.md
# quotes from it, rerun in seconds without the work folder's models and token vectors.
RESULTS_ROOT = Path("bench/results")


def add_results_argument(parser: argparse.ArgumentParser, name: str) -> None:
    """``--results``: the folder of ``name``'s per-model results (default ``bench/results/<name>``),
    where a run writes them; ``--analyse-only``: analyse what that folder holds, running nothing."""
    parser.add_argument("--results", default=str(RESULTS_ROOT / name),
                        help="per-model results (JSON), written by a run and read by the analysis "
                             f"(default: {RESULTS_ROOT / name}, the committed run's)")
    parser.add_argument("--analyse-only", action="store_true",
                        help="analyse the runs kept in --results instead of running (seconds)")


def parse_study_arguments(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, StudyFiles]:
    """``parser``'s arguments, ``--params`` defaulting to the study's own profile, and the study's
    files."""
    args = parser.parse_args()
    args.params = args.params or str(Path(args.study) / PARAMS_FILE)
    return args, study_files(args.study)
