"""Verifying a study: the workspace's results against those committed at a revision.

:func:`verify_study` checks its inputs first (the repository, the revision, the tolerance file and
that it belongs to the workspace's profile, the reference folder at that revision), then judges
every result file found on either side, and returns a :class:`Verification`: one
:class:`~latentgeo.verify.compare.FileVerdict` per result, the profile differences, and the
overall verdict (identical, within tolerance, or not reproduced).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from latentgeo.errors import LatentgeoError
from latentgeo.verify.compare import IDENTICAL, OUT, WITHIN, FileVerdict, compare_result
from latentgeo.verify.sources import (
    committed_files,
    committed_text,
    join,
    pipeline_outputs,
    produced_by,
    profile_differences,
    repository_root,
    resolve_revision,
    workspace_files,
)
from latentgeo.verify.tolerances import Profile, ToleranceFile, default_tolerance_path, load_tolerances, read_profile

REPRODUCED_IDENTICAL = "reproduced: identical"
REPRODUCED_WITHIN = "reproduced within tolerance"
NOT_REPRODUCED = "NOT reproduced"


@dataclass
class Verification:
    """The outcome: ``verdicts`` per result file (sorted by path), ``profile_changes``
    {key: (reference value, workspace value)}, and what was compared with what."""

    rev: str
    commit: str
    tolerances: ToleranceFile
    profile: Profile
    verdicts: list[FileVerdict] = field(default_factory=list)
    profile_changes: dict = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(v.status == status for v in self.verdicts)

    @property
    def reproduced(self) -> bool:
        return bool(self.verdicts) and self.count(OUT) == 0

    @property
    def outcome(self) -> str:
        if not self.reproduced:
            return NOT_REPRODUCED
        return REPRODUCED_IDENTICAL if self.count(WITHIN) == 0 else REPRODUCED_WITHIN

    def summary(self) -> str:
        """The one-line verdict on the whole study."""
        where = "results/" if self.tolerances.reference == "." else f"{self.tolerances.reference}/"
        counts = (f"{self.count(IDENTICAL)} identical, {self.count(WITHIN)} within tolerance, "
                  f"{self.count(OUT)} out")
        line = (f"{self.outcome}: profile {self.profile.name!r}, {len(self.verdicts)} results against "
                f"{where} at {self.rev} ({self.commit[:10]}), tolerances {self.tolerances.path}: {counts}")
        if self.profile_changes:
            line += f"; the profile differs from the reference's in {len(self.profile_changes)} value(s)"
        return line


def reference_results(repo: Path, commit: str, tol: ToleranceFile) -> list[str]:
    """Result files of the reference at ``commit``, relative to the reference folder."""
    files = committed_files(repo, commit, tol.reference)
    if not files:
        raise LatentgeoError(f"the reference folder {tol.reference!r} (from {tol.path}) does not exist at "
                             f"the revision verified against")
    return [f for f in files if tol.is_result(f)]


def choose_tolerances(repo: Path, profile: Profile, path: str | os.PathLike | None) -> ToleranceFile:
    """The tolerance file given, else ``tolerances/<profile>.yaml``; it must be for this profile."""
    chosen = Path(path) if path is not None else default_tolerance_path(repo, profile.name)
    if path is None and not chosen.is_file():
        raise LatentgeoError(
            f"no committed reference for profile {profile.name!r}: {chosen.relative_to(repo)} does not exist "
            "(pass --tolerances FILE to verify against another)")
    tol = load_tolerances(chosen)
    with contextlib.suppress(ValueError):  # shown relative to the repository when inside it
        tol = tol.model_copy(update={"path": str(chosen.resolve().relative_to(repo.resolve()))})
    if tol.profile != profile.name:
        raise LatentgeoError(f"{chosen} holds the tolerances of profile {tol.profile!r}, but params.yaml "
                             f"is profile {profile.name!r}")
    return tol


def verify_study(
    repo: str | os.PathLike = ".",
    rev: str = "HEAD",
    tolerances: str | os.PathLike | None = None,
) -> Verification:
    """Compare the workspace's results with the reference committed at ``rev`` (see the module
    docstring). All inputs are checked before any file is compared."""
    root = repository_root(repo)
    commit = resolve_revision(root, rev)
    profile = read_profile(root)
    tol = choose_tolerances(root, profile, tolerances)
    committed = reference_results(root, commit, tol)
    present = [f for f in workspace_files(root) if tol.is_result(f)]
    if tol.only_pipeline_outputs:
        outputs = pipeline_outputs(root)
        present = [f for f in present if produced_by(f, outputs)]
    result = Verification(rev, commit, tol, profile)
    result.profile_changes = profile_differences(root, commit, tol.reference, profile.params)
    committed_set = set(committed)
    for path in sorted(committed_set | set(present)):
        old = committed_text(root, commit, join(tol.reference, path)) if path in committed_set else None
        new_file = root / path
        new = new_file.read_text(encoding="utf-8") if new_file.is_file() else None
        result.verdicts.append(compare_result(path, old, new, tol))
    if not result.verdicts:
        raise LatentgeoError(f"no result files match {list(tol.results)} on either side: nothing to verify")
    return result
