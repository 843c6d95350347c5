"""Published reference tables: pinned by a provenance manifest, fetched by each user, never committed.

The geometry paper's public repository (``amarbut/manifolds``) carries no licence, so this
project commits none of its files. It commits only a *manifest* (``references/manifolds.json``):
the repository, the commit, and for each table its path there, its SHA-256, its row count and its
role. :func:`get_references` obtains the tables from a local copy of that repository (a checkout,
a git directory without a work tree, or a folder holding the files) or from the network
(``<base_url>/<repository>/<commit>/<path, URL-quoted>``), checks every SHA-256 *before*
writing anything, and writes each file atomically into a git-ignored folder
(``references/manifolds/``). :func:`verify_references` is what every reader calls first.

A manifest is JSON::

    {"repository": "owner/name", "commit": "<40 hex>",
     "tables": [{"role": "...", "path": "dir/file.csv", "sha256": "<64 hex>", "rows": 128}, ...]}

Errors a user can fix (no such file, a hash mismatch, no network) raise
:class:`~latentgeo.errors.LatentgeoError` with one line naming the file.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from latentgeo.errors import LatentgeoError
from latentgeo.io import atomic_output, file_sha256, read_json

DEFAULT_MANIFEST = Path("references/manifolds.json")
DEFAULT_OUT = Path("references/manifolds")
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
# Overrides the base URL (tests serve stand-in files from a local HTTP server).
BASE_URL_ENV = "LATENTGEO_REFERENCES_URL"
TIMEOUT_S = 30.0
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ReferenceTable:
    """One pinned file: its ``role`` in the analysis, ``path`` in the repository, content hash."""

    role: str
    path: str
    sha256: str
    rows: int

    @property
    def filename(self) -> str:
        """The name it has in the output folder (the last part of ``path``)."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Manifest:
    """A repository at one commit and the tables taken from it."""

    repository: str
    commit: str
    tables: tuple[ReferenceTable, ...]
    source: Path

    def table(self, role: str) -> ReferenceTable:
        for t in self.tables:
            if t.role == role:
                return t
        raise LatentgeoError(f"manifest {self.source} has no table of role {role!r}; "
                             f"roles: {[t.role for t in self.tables]}")

    def url(self, table: ReferenceTable, base_url: str = DEFAULT_BASE_URL) -> str:
        """Where the raw file lives: ``<base_url>/<repository>/<commit>/<quoted path>``."""
        quoted = urllib.parse.quote(table.path, safe="/")
        return f"{base_url.rstrip('/')}/{self.repository}/{self.commit}/{quoted}"


def load_manifest(path: str | os.PathLike = DEFAULT_MANIFEST) -> Manifest:
    """Read and check a manifest: fields present, commit and hashes in hex, roles and names unique."""
    path = Path(path)
    raw = read_json(path)
    try:
        repository, commit, entries = raw["repository"], raw["commit"], raw["tables"]
        tables = tuple(
            ReferenceTable(role=str(e["role"]), path=str(e["path"]), sha256=str(e["sha256"]),
                           rows=int(e["rows"]))
            for e in entries
        )
    except (KeyError, TypeError, ValueError) as err:
        raise LatentgeoError(f"manifest {path} lacks a field or has a bad value: {err!r}") from None
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", str(repository)):
        raise LatentgeoError(f"manifest {path}: repository {repository!r} is not owner/name")
    if not _HEX40.match(str(commit)):
        raise LatentgeoError(f"manifest {path}: commit {commit!r} is not 40 lowercase hex digits")
    if not tables:
        raise LatentgeoError(f"manifest {path} lists no tables")
    for t in tables:
        if not _HEX64.match(t.sha256):
            raise LatentgeoError(f"manifest {path}: sha256 of {t.path!r} is not 64 lowercase hex digits")
        if t.path.startswith("/") or ".." in t.path.split("/"):
            raise LatentgeoError(f"manifest {path}: table path {t.path!r} must be relative, inside the repository")
    for what, values in (("roles", [t.role for t in tables]), ("file names", [t.filename for t in tables])):
        if len(set(values)) != len(values):
            raise LatentgeoError(f"manifest {path}: {what} must be unique, got {values}")
    return Manifest(str(repository), str(commit), tables, path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_git_dir(folder: Path) -> bool:
    """A checkout (has .git) or a git directory without a work tree (HEAD + objects/)."""
    return (folder / ".git").exists() or ((folder / "HEAD").is_file() and (folder / "objects").is_dir())


def read_local(manifest: Manifest, table: ReferenceTable, folder: str | os.PathLike) -> bytes:
    """The table's bytes from a local copy: ``folder/<path>`` (a checkout), ``folder/<file name>``
    (a folder holding the files), else ``git show <commit>:<path>`` when ``folder`` is a git
    repository (with or without a work tree)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise LatentgeoError(f"--from {folder}: no such folder")
    for candidate in (folder / table.path, folder / table.filename):
        if candidate.is_file():
            return candidate.read_bytes()
    if _is_git_dir(folder):
        proc = subprocess.run(
            ["git", "-C", str(folder), "show", f"{manifest.commit}:{table.path}"],
            capture_output=True, check=False,
        )
        if proc.returncode == 0:
            return proc.stdout
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise LatentgeoError(
            f"{table.filename}: not in {folder} at commit {manifest.commit[:12]} "
            f"({detail[-1] if detail else 'git show failed'})"
        )
    raise LatentgeoError(
        f"{table.filename}: found neither {folder / table.path} nor {folder / table.filename}"
    )


def read_url(url: str, timeout: float = TIMEOUT_S) -> bytes:
    """GET ``url``; any failure (no network, HTTP error) raises one line naming the URL."""
    if not url.startswith(("http://", "https://")):
        raise LatentgeoError(f"refusing to fetch {url!r}: only http(s) URLs")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
            return response.read()
    except urllib.error.HTTPError as err:
        raise LatentgeoError(f"cannot fetch {url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise LatentgeoError(
            f"cannot fetch {url}: {reason}; without network, pass --from DIR (a copy of the repository "
            "or a folder holding the files)"
        ) from None


def check_sha256(table: ReferenceTable, data: bytes, origin: str) -> None:
    """Refuse bytes whose SHA-256 is not the manifest's, naming the file and both hashes."""
    actual = _sha256(data)
    if actual != table.sha256:
        raise LatentgeoError(
            f"{table.filename} from {origin}: sha256 {actual} does not match the manifest's "
            f"{table.sha256}; nothing was written"
        )


@dataclass(frozen=True)
class GetReport:
    """What :func:`get_references` did: files written and files already present and verified."""

    out_dir: Path
    written: tuple[str, ...]
    kept: tuple[str, ...]

    @property
    def message(self) -> str:
        parts = []
        if self.written:
            parts.append(f"wrote {len(self.written)} ({', '.join(self.written)})")
        if self.kept:
            parts.append(f"kept {len(self.kept)} already present and verified")
        return f"{self.out_dir}: " + "; ".join(parts) + " (sha256 checked)"


def get_references(
    manifest: Manifest,
    out_dir: str | os.PathLike = DEFAULT_OUT,
    *,
    source_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    overwrite: bool = False,
) -> GetReport:
    """Obtain every table of ``manifest`` into ``out_dir``, verified.

    A file already in ``out_dir`` with the right hash is kept (nothing is fetched for it); one
    with another hash is refused unless ``overwrite``. The others come from ``source_dir`` (see
    :func:`read_local`) or, without it, from ``base_url`` (default: ``$LATENTGEO_REFERENCES_URL``,
    else raw.githubusercontent.com). Every hash is checked before anything is written; each file
    is then written atomically.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LatentgeoError(f"output {out_dir} exists and is not a folder")
    base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    needed, kept = [], []
    for table in manifest.tables:
        target = out_dir / table.filename
        if target.is_file() and file_sha256(target) == table.sha256:
            kept.append(table.filename)
        elif target.exists() and not overwrite:
            raise LatentgeoError(
                f"{target} exists with another sha256 than the manifest's {table.sha256}; "
                "remove it or pass --overwrite"
            )
        else:
            needed.append(table)
    fetched: dict[str, bytes] = {}
    for table in needed:
        if source_dir is not None:
            data, origin = read_local(manifest, table, source_dir), str(source_dir)
        else:
            origin = manifest.url(table, base_url)
            data = read_url(origin)
        check_sha256(table, data, origin)
        fetched[table.filename] = data
    for name, data in fetched.items():
        with atomic_output(out_dir / name) as tmp:
            tmp.write_bytes(data)
    return GetReport(out_dir, tuple(fetched), tuple(kept))


def verify_references(manifest: Manifest, folder: str | os.PathLike = DEFAULT_OUT) -> dict[str, Path]:
    """Paths of the manifest's tables in ``folder`` by role, each checked against its SHA-256.

    A missing or different file raises :class:`LatentgeoError` that says how to get it.
    """
    folder = Path(folder)
    out = {}
    for table in manifest.tables:
        path = folder / table.filename
        if not path.is_file():
            raise LatentgeoError(
                f"{path} is missing; get the published tables with "
                f"`latentgeo references get --manifest {manifest.source} --out {folder}`"
            )
        actual = file_sha256(path)
        if actual != table.sha256:
            raise LatentgeoError(
                f"{path}: sha256 {actual} does not match the manifest's {table.sha256}; "
                f"get it again with `latentgeo references get --overwrite`"
            )
        out[table.role] = path
    return out
