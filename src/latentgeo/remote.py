"""Remote storage: pull what the project's DVC remote holds and say plainly what it could not give.

``dvc pull`` alone is a poor guide when things go wrong: an HTTP remote that does not answer is
reported as "missing cache files", a single object missing from a remote stops a whole pull
(nothing is checked out, not even outputs that arrived complete), and a corrupted object is only
caught when the remote has ``verify = true`` (then DVC drops it with a debug-level note). This
module wraps the DVC command line in three steps:

1. **probe** the default remote with DVC's own file system for it (same URL, same credentials from
   ``.dvc/config.local``), under a time limit: a remote that refuses, rejects the credentials or
   does not answer is reported as unreachable, and nothing is pulled;
2. **pull** (``dvc pull``; not ``--allow-missing``, which makes DVC 3.67 exit 0 after dropping a
   corrupted object, and crash on an object missing from an SSH or HTTP remote, abandoning the
   objects still queued);
3. when the pull fails, **check out** whatever complete objects did arrive (``dvc checkout``; DVC
   checks an output out whole or not at all, so nothing half-written lands in the workspace),
   fetch each output still missing on its own (after one failed transfer DVC abandons others
   queued with it), check out again, and name the outputs that stay missing and the objects that
   were missing or corrupted.

:func:`pull` returns a :class:`PullReport` whose ``message`` is one line for the user; the caller
decides what a status means (``latentgeo remote pull`` falls back for everything except corruption,
which it reports as an error).
"""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from latentgeo.errors import LatentgeoError

# Deferred to the functions that use them, so that importing this module stays light: dvc.

PROBE_TIMEOUT_S = 30.0
FALLBACK = "`make repro` computes them locally"

_CORRUPTED = re.compile(r"corrupted cache file '([^']+)'")
_FAILED_TRANSFER = re.compile(r"failed to transfer '([0-9a-f]{32}(?:\.dir)?)'")
_MISSING_LISTED = re.compile(r"^md5: ([0-9a-f]{32}(?:\.dir)?)\s*$", re.M)
_CONNECT = re.compile(r"failed to connect to \S+ \([^)]*\) - (.+)")
_CHECKOUT_FAILED = re.compile(r"Checkout failed for following targets:\s*\n(.*?)(?:\nIs your cache|\Z)", re.S)
_NO_HASH = re.compile(r"No file hash info found for '([^']+)'")
_SUMMARY = re.compile(r"^(\d+ files? (?:fetched|added|modified|deleted).*|Everything is up to date\.)$", re.M)


@dataclass(frozen=True)
class Remote:
    """The default DVC remote as the merged configuration (repo + ``--local``) defines it."""

    name: str
    url: str
    verify: bool

    def __str__(self) -> str:
        return f"remote storage {self.name!r} ({self.url})"


@dataclass(frozen=True)
class PullReport:
    """What a pull achieved.

    ``status``: ``"pulled"`` (everything), ``"partial"`` (some outputs missing on the remote),
    ``"corrupted"`` (some objects failed their hash check), ``"unreachable"`` (the remote refused,
    rejected the credentials or did not answer) or ``"no-remote"`` (none configured).
    ``reason`` says why in a clause; ``message`` is the full line for the user (reason, what was
    and was not pulled, what to do). ``missing_outputs`` are workspace paths left absent;
    ``missing_objects`` / ``corrupted_objects`` are DVC object ids (md5, ``.dir`` for folders).
    """

    status: str
    reason: str
    message: str
    remote: Remote | None = None
    missing_outputs: tuple[str, ...] = ()
    missing_objects: tuple[str, ...] = ()
    corrupted_objects: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def run_dvc(*args: str, cwd: str | Path = ".", timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m dvc ARGS`` in ``cwd`` with no terminal input (DVC must never prompt here)."""
    return subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout, check=False)


def default_remote(repo_root: str | Path = ".") -> Remote | None:
    """The default remote of the DVC repository at ``repo_root``, or None when none is set.

    Raises :class:`LatentgeoError` when the default names a remote that is not defined, and DVC's
    own errors when ``repo_root`` is not a DVC repository or its configuration does not parse.
    """
    from dvc.repo import Repo

    with Repo(str(repo_root)) as repo:
        name = repo.config["core"].get("remote")
        if not name:
            return None
        if name not in repo.config["remote"]:
            raise LatentgeoError(f"default remote {name!r} is not defined in .dvc/config or .dvc/config.local")
        conf = repo.config["remote"][name]
        return Remote(name=name, url=str(conf["url"]), verify=bool(conf.get("verify", False)))


def _probe_once(repo_root: str, name: str) -> None:
    from dvc.repo import Repo

    with Repo(repo_root) as repo:
        remote = repo.cloud.get_remote(name)
        try:
            remote.fs.info(remote.path)
        except FileNotFoundError as err:
            # "Not found" is an answer (a static HTTP host may serve objects but no listing of
            # its root; a folder remote may not exist yet), so the pull still gets its chance;
            # but fsspec's HTTP file system also reports a refused connection this way.
            cause = _connection_failure(err.__cause__ or err.__context__)
            if cause is not None:
                raise cause from None


def _connection_failure(err: BaseException | None) -> BaseException | None:
    """The first network failure (refused, reset, timed out, DNS) in an exception's chain, if any."""
    while err is not None:
        if isinstance(err, (ConnectionError, TimeoutError)) or (
                isinstance(err, OSError) and not isinstance(err, FileNotFoundError)):
            return err
        err = err.__cause__ or err.__context__
    return None


def probe(remote: Remote, repo_root: str | Path = ".", timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Contact ``remote`` once; None when it answered, else a short reason.

    A server that accepts the connection but never answers (DVC's SSH login timeout is 30 min)
    is given up on after ``timeout`` seconds; the worker thread is left behind as a daemon.
    """
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            _probe_once(str(repo_root), remote.name)
            outcome.append(None)
        except BaseException as err:  # noqa: BLE001 - every failure is a reason to report
            outcome.append(err)

    worker = threading.Thread(target=attempt, name=f"probe-{remote.name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    err = outcome[0]
    return None if err is None else _reason(err)


def _reason(err: BaseException) -> str:
    """One line naming why a connection failed, without DVC's or asyncssh's repetitions."""
    text = " ".join(str(err).split()) or type(err).__name__
    head, sep, tail = text.partition(": ")
    if sep and tail == head:  # asyncssh repeats its message: "Permission denied ...: Permission denied ..."
        text = head
    return text[:300]


def _object_id(cache_path: str) -> str:
    """``…/files/md5/b1/946ac9…`` → ``b1946ac9…`` (DVC's object id)."""
    parts = Path(cache_path).parts
    return parts[-2] + parts[-1]


def _unique(items) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _summary(stdout: str) -> str:
    found = _SUMMARY.findall(stdout)
    return found[-1].rstrip(".") if found else "nothing new to fetch"


def _short(ids: tuple[str, ...], limit: int = 3) -> str:
    shown = ", ".join(i[:8] + ("…" if len(i) > 8 else "") for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _paths(paths: tuple[str, ...], limit: int = 4) -> str:
    return ", ".join(paths[:limit]) + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _checkout(targets: tuple[str, ...], repo_root: str | Path) -> tuple[str, tuple[str, ...], bool]:
    """Check out whatever is complete in the cache: (DVC's stdout, outputs it could not, all done?).

    DVC checks an output out whole or not at all, so the outputs it names are simply absent.
    Outputs with no hash recorded yet (their stage never ran) are left out: no remote has them,
    and `dvc repro` makes them.
    """
    checkout = run_dvc("checkout", *targets, cwd=repo_root)
    text = checkout.stdout + "\n" + checkout.stderr
    failed = _CHECKOUT_FAILED.search(text)
    root = Path(repo_root).resolve()
    unrecorded = {_relative(p, root) for p in _NO_HASH.findall(text)}
    listed = [line.strip() for line in failed.group(1).splitlines()] if failed else []
    outputs = _unique(o for o in listed if o and o not in unrecorded)
    done = not outputs and (checkout.returncode == 0 or failed is not None)
    return checkout.stdout, outputs, done


def _relative(path: str, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return path


def _fetch_each(outputs: tuple[str, ...], repo_root: str | Path) -> int:
    """Fetch each output on its own; return how many arrived.

    After one failed transfer, DVC abandons transfers still queued in the same batch (which ones
    varies from run to run), so one missing object can keep complete outputs from arriving.
    Fetched in-process: one DVC start-up instead of one per output.
    """
    from dvc.repo import Repo

    logging.disable(logging.CRITICAL)  # DVC's own warnings: the caller summarises the failures
    arrived = 0
    try:
        with Repo(str(repo_root)) as repo:
            for output in outputs:
                try:
                    repo.fetch(targets=[str(Path(repo_root, output).resolve())])
                    arrived += 1
                except Exception:  # noqa: BLE001, S112 - a missing object: the output stays missing
                    continue
    finally:
        logging.disable(logging.NOTSET)
    return arrived


def pull(targets: tuple[str, ...] | list[str] = (), *, repo_root: str | Path = ".",
         probe_timeout: float = PROBE_TIMEOUT_S, timeout: float | None = None) -> PullReport:
    """Pull ``targets`` (default: every output) from the default remote; never raises for the remote.

    ``timeout`` bounds the whole ``dvc pull`` (None: no bound; large pipelines take long).
    """
    targets = tuple(targets)
    try:
        remote = default_remote(repo_root)
    except Exception as err:  # noqa: BLE001 - NotDvcRepoError, ConfigError: name it, no traceback
        reason = f"the DVC configuration is unusable ({_reason(err)})"
        return PullReport("no-remote", reason, f"{reason}; nothing pulled; {FALLBACK}")
    if remote is None:
        reason = "no default DVC remote is configured (see docs/remote-storage.md)"
        return PullReport("no-remote", reason, f"{reason}; nothing pulled; {FALLBACK}")
    notes = () if remote.verify else (
        f"note: {remote} does not verify downloads, so a corrupted object would be accepted; "
        f"`dvc remote modify --local {remote.name} verify true` makes DVC check every hash",)

    why = probe(remote, repo_root, probe_timeout)
    if why is not None:
        reason = f"{remote} unreachable ({why})"
        return PullReport("unreachable", reason, f"{reason}; nothing pulled; {FALLBACK}", remote, notes=notes)

    try:
        pulled = run_dvc("pull", "--verbose", *targets, cwd=repo_root, timeout=timeout)
    except subprocess.TimeoutExpired:
        pulled = None
    log = "" if pulled is None else pulled.stdout + "\n" + pulled.stderr
    corrupted = _unique(_object_id(p) for p in _CORRUPTED.findall(log))
    missing = _unique(m for m in _FAILED_TRANSFER.findall(log) + _MISSING_LISTED.findall(log)
                      if m not in corrupted)
    # Belt and braces: success means exit 0 *and* no object dropped on the way.
    if pulled is not None and pulled.returncode == 0 and not corrupted and not missing:
        return PullReport("pulled", "", f"pulled from {remote}: {_summary(pulled.stdout)}", remote, notes=notes)

    connect = _CONNECT.search(log)
    stopped = (f"no answer within {timeout:g} s" if pulled is None
               else _reason(Exception(connect.group(1))) if connect else None)
    checked_out, outputs, done = _checkout(targets, repo_root)
    if outputs and not stopped and _fetch_each(outputs, repo_root):
        checked_out, outputs, done = _checkout(targets, repo_root)
    absent = _paths(outputs) or "some outputs"
    found = dict(remote=remote, missing_outputs=outputs, missing_objects=missing, notes=notes)

    if corrupted:
        reason = (f"{remote} holds {len(corrupted)} corrupted object(s) ({_short(corrupted)}: contents do "
                  "not match their hash)")
        return PullReport("corrupted", reason, f"{reason}; not checked out: {absent}; push a good copy "
                          f"again, or let `make repro` recompute", corrupted_objects=corrupted, **found)
    if done:
        return PullReport("pulled", "", f"pulled from {remote}: {_summary(checked_out)}", **found)
    if stopped:
        reason = f"{remote} stopped answering ({stopped})"
        return PullReport("unreachable", reason, f"{reason}; not pulled: {absent}; {FALLBACK}", **found)
    reason = f"{remote} lacks {len(missing)} object(s) for {absent}" if missing else f"{remote} lacks {absent}"
    return PullReport("partial", reason, f"{reason}; pulled what it has; {FALLBACK}", **found)
