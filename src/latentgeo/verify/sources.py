"""Where the two sides of a comparison come from: the workspace, and the repository at a revision.

The committed side is read with git itself (``git ls-tree`` / ``git cat-file``), never by checking
anything out, so verifying leaves the working tree and the index untouched. The workspace side is
what git would commit: tracked files plus new files that are not ignored (DVC-cached outputs such
as embeddings are ignored, and are not results).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from latentgeo.errors import LatentgeoError

# Deferred to the functions that use them, so that importing this module stays light: dvc.


def _git(repo: str | os.PathLike, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True)
    except FileNotFoundError:
        raise LatentgeoError("git is not installed: verifying reads the committed results with git") from None
    if check and proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise LatentgeoError(f"git {' '.join(args)}: {message[0] if message else 'failed'}")
    return proc


def repository_root(path: str | os.PathLike = ".") -> Path:
    """The top folder of the git repository holding ``path``; refused when there is none."""
    proc = _git(path, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        raise LatentgeoError(f"{Path(path).resolve()} is not inside a git repository: "
                             "nothing committed to verify against")
    return Path(proc.stdout.decode().strip())


def resolve_revision(repo: str | os.PathLike, rev: str) -> str:
    """The commit id ``rev`` names (a branch, tag, hash, ``HEAD~2``, ...); an unknown one is refused."""
    if not rev or rev.startswith("-"):
        raise LatentgeoError(f"unknown revision {rev!r}")
    proc = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise LatentgeoError(f"unknown revision {rev!r}: no such commit, branch or tag in {repo}")
    return proc.stdout.decode().strip()


def committed_files(repo: str | os.PathLike, commit: str, folder: str) -> list[str]:
    """Files under ``folder`` ('.' for all) at ``commit``, as paths relative to ``folder``."""
    spec = [] if folder == "." else ["--", folder]
    names = _git(repo, "ls-tree", "-r", "-z", "--name-only", commit, *spec).stdout.decode().split("\0")
    cut = 0 if folder == "." else len(folder) + 1
    return sorted(n[cut:] for n in names if n)


def committed_text(repo: str | os.PathLike, commit: str, path: str) -> str:
    """A file's content at ``commit`` (UTF-8 text)."""
    return _git(repo, "cat-file", "blob", f"{commit}:{path}").stdout.decode("utf-8")


def workspace_files(repo: str | os.PathLike) -> list[str]:
    """Files git would commit from the working tree (tracked or new, not ignored, present on disk)."""
    out = _git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout.decode()
    return sorted({n for n in out.split("\0") if n and (Path(repo) / n).is_file()})


def pipeline_outputs(repo: str | os.PathLike) -> list[str]:
    """Paths (repository-relative) of every output the DVC pipeline declares for the active
    profile (outs, metrics, plots; folders included), as DVC itself resolves ``dvc.yaml``."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo(os.fspath(repo)) as dvc_repo:
            return sorted({out.def_path.replace(os.sep, "/") for out in dvc_repo.index.outs})
    except DvcException as err:
        raise LatentgeoError(f"cannot read the DVC pipeline of {repo}: {err}".splitlines()[0]) from None


def produced_by(path: str, outputs: list[str]) -> bool:
    """Whether ``path`` is one of ``outputs`` or lies inside an output folder."""
    return any(path == out or path.startswith(out.rstrip("/") + "/") for out in outputs)


def join(folder: str, path: str) -> str:
    return path if folder == "." else f"{folder}/{path}"


# ------------------------------------------------------------------ the profile, compared


def flat_params(params, prefix: str = "") -> dict[str, object]:
    """A profile's values by dotted key (lists kept whole, as DVC shows them)."""
    if not isinstance(params, dict):
        return {prefix: params}
    out: dict[str, object] = {}
    for key, value in params.items():
        out.update(flat_params(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def params_differences(old: dict, new: dict) -> dict[str, tuple[object, object]]:
    """{dotted key: (old, new)} for every profile value that differs (absent: None)."""
    a, b = flat_params(old), flat_params(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def dvc_params_differences(repo: str | os.PathLike, rev: str) -> dict[str, tuple[object, object]] | None:
    """``dvc params diff REV --json`` (the workspace's params against REV's, as DVC sees the
    pipeline's parameters) as {file:key: (old, new)}; None when DVC cannot answer here."""
    proc = subprocess.run([sys.executable, "-m", "dvc", "params", "diff", rev, "--json"], cwd=repo,
                          capture_output=True, text=True, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    if proc.returncode != 0:
        return None
    try:
        diff = json.loads(proc.stdout or "{}")
    except json.JSONDecodeError:
        return None
    return {
        (key if file == "params.yaml" else f"{file}:{key}"): (change.get("old"), change.get("new"))
        for file, keys in diff.items() for key, change in keys.items()
    }


def profile_differences(repo: str | os.PathLike, commit: str, reference: str, params: dict) -> dict:
    """How the workspace's profile differs from the one that made the reference.

    For the study's own results (reference '.'), DVC's ``params diff`` answers (it knows which
    parameters the pipeline uses); for a reference folder, its ``params.yaml`` is compared with
    the workspace's value by value. Returns {dotted key: (reference value, workspace value)}.
    """
    if reference == "." and (Path(repo) / ".dvc").is_dir():
        diff = dvc_params_differences(repo, commit)
        if diff is not None:
            return diff
    try:
        old = yaml.safe_load(committed_text(repo, commit, join(reference, "params.yaml")))
    except LatentgeoError:
        return {"params.yaml": ("(not in the reference)", "(present)")}
    return params_differences(old if isinstance(old, dict) else {}, params)
