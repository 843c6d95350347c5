"""The DVC side of ``latentgeo repro``: which stages, in which order, and recording them.

Everything here runs in the client process, which holds DVC's repository lock for the whole run,
so dvc.lock, the cache and the run-cache are written by DVC itself, by one process:

* the plan is DVC's own (``dvc.repo.reproduce.plan_repro`` over the active stage graph), so
  targets, frozen stages and dependency edges mean what they mean to ``dvc repro``;
* a stage is decided when every stage it depends on is settled, with ``Stage.changed`` (as
  ``Stage.reproduce`` does), so a stage whose upstream re-ran to identical bytes is skipped;
* a stale stage first tries the run-cache (``stage_cache.restore``) like ``dvc repro``; only a miss
  is sent to a worker, and after its command succeeds the client calls ``Stage.save`` (with the
  run-cache when ``dvc repro`` would), ``Stage.commit`` and dumps its lock entry (the entries due
  at one moment in one rewrite: :func:`dump_locks`);
* lock entries are dumped in plan order (a stage waits until every earlier stage of the plan is
  settled), so dvc.lock comes out exactly as after a sequential ``dvc repro``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from latentgeo.errors import LatentgeoError
from latentgeo.repro.worker import StageCommand, thread_environment

# Deferred to the functions that use them, so that importing this module stays light: dvc.

LOG_DIR = Path(".dvc") / "tmp" / "repro"


@dataclass
class Plan:
    """Stages to consider in DVC's order (dependencies first) and each one's upstream stages."""

    stages: list  # dvc.stage.Stage, dependencies before dependents
    upstream: dict  # Stage -> list[Stage] it depends on (all within ``stages``)

    def dependents(self, stage) -> set:
        """Every stage of the plan that depends on ``stage``, directly or not."""
        found, todo = set(), [stage]
        while todo:
            s = todo.pop()
            for other in self.stages:
                if s in self.upstream[other] and other not in found:
                    found.add(other)
                    todo.append(other)
        return found


def open_repo(root: str | os.PathLike = "."):
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Repo(str(root))
    except NotDvcRepoError:
        raise LatentgeoError(f"{Path(root).resolve()} is not a DVC repository (no .dvc/ found)") from None


def collect_targets(repo, targets: list[str]) -> list:
    """The stages named by ``targets`` (stage names, foreach groups, dvc.yaml or .dvc paths), as
    ``dvc repro`` collects them; all of dvc.yaml when empty. Unknown targets are refused."""
    from dvc.dvcfile import PROJECT_FILE
    from dvc.exceptions import DvcException
    from dvc.repo.reproduce import collect_stages

    if not targets:
        # The whole dvc.yaml, in its order, from the index DVC builds for the graph anyway:
        # collecting it apart would parse dvc.lock a second time (~2 s of a 135-stage no-op).
        project_file = os.path.join(repo.root_dir, PROJECT_FILE)
        return [s for s in repo.index.stages if s.dvcfile.path == project_file]
    stages = []
    for target in targets:
        try:
            stages.extend(collect_stages(repo, [target]))
        except DvcException as err:
            raise LatentgeoError(f"unknown target {target!r}: {err}") from None
    return list(dict.fromkeys(stages))


def make_plan(repo, targets: list[str]) -> Plan:
    """DVC's reproduction plan for ``targets``: its active graph (frozen stages cut loose from their
    dependencies), post-ordered so that every stage comes after what it depends on."""
    from dvc.repo.reproduce import get_active_graph, plan_repro

    stages = collect_targets(repo, targets)
    graph = get_active_graph(repo.index.graph)
    order = plan_repro(graph, stages)
    in_plan = set(order)
    upstream = {s: [u for u in graph.successors(s) if u in in_plan] for s in order}
    return Plan(order, upstream)


def is_command_stage(stage) -> bool:
    """Stages a worker must run: not frozen, with a command (data sources are checked locally)."""
    return bool(stage.cmd) and not stage.frozen and not stage.is_import


def needs_run(stage, upstream: list) -> bool:
    """``Stage.reproduce``'s test, asked once every upstream stage is settled."""
    return stage.changed(False, upstream)


def settle_without_command(stage, upstream: list) -> bool:
    """A frozen stage or a data source (data.dvc): exactly what ``dvc repro`` does with it here
    (verify its outputs exist, record them). True when DVC recorded something."""
    from dvc.repo.reproduce import _reproduce_stage

    return _reproduce_stage(stage, upstream=upstream) is not None


def prepare_run(stage) -> bool:
    """Before a stale command stage runs, what ``Stage.run`` + ``run_stage`` do first: remove its
    outputs, then try the run-cache. True when the run-cache restored the stage (nothing to run)."""
    from dvc.stage.cache import RunCacheNotFoundError

    stage.remove_outs(ignore_remove=False, force=False)
    try:
        stage.repo.stage_cache.restore(stage)
    except RunCacheNotFoundError:
        stage.save_deps()  # the dependencies as they are when the command starts
        return False
    return True


def record(stage) -> None:
    """``Stage.run``'s ending: hash deps and outs (run-cache entry when ``dvc repro`` makes one) and
    move outputs into the cache. The lock entry is dumped separately (:func:`dump_locks`)."""
    no_cache_outs = any(not out.use_cache for out in stage.outs if not (out.is_metric or out.is_plot))
    stage.save(allow_missing=False, run_cache=not no_cache_outs)
    stage.commit(allow_missing=False)


def dump_locks(stages: list) -> None:
    """Write the dvc.lock entries of ``stages``, in this order, as ``dvc repro`` does after each
    stage, but in one rewrite of each lock file: DVC re-reads and rewrites the whole YAML file for
    every entry (~3 s for the default profile's 0.5 MB dvc.lock), which a run of 70 stages would
    otherwise pay 70 times in the client, after the last stage has finished."""
    batches: dict[str, list] = {}
    for stage in stages:
        batches.setdefault(stage.dvcfile.path, []).append(stage)
    for batch in batches.values():
        batch[0].dvcfile.dump_stages(batch, update_pipeline=False)


def orphan_lock_entries(repo) -> dict[str, list[str]]:
    """Per lock file (its path), the entries of stages its dvc.yaml no longer defines.

    DVC keeps such entries for good: a task dropped from the profile, the models of a profile
    switched away from. Switching back to that profile finds its stages up to date through them;
    without them each stage must come back from DVC's run-cache (a checkout, where the run-cache
    still holds the run: not after ``dvc gc``, not in a fresh clone) or run again."""
    defined: dict[str, set[str]] = {}
    for stage in repo.index.stages:
        if not getattr(stage, "name", None):  # a .dvc file: no lock entry
            continue
        defined.setdefault(lock_path(stage.dvcfile.path), set()).add(stage.name)
    orphans = {}
    for path, names_defined in defined.items():
        if repo.fs.exists(path):
            names = [name for name in locked_stage_names(repo.fs.read_text(path)) if name not in names_defined]
            if names:
                orphans[path] = names
    return orphans


def lock_path(dvcfile_path: str) -> str:
    """The lock file DVC keeps beside a pipeline file: ``dvc.yaml`` → ``dvc.lock`` in its folder."""
    return os.path.splitext(dvcfile_path)[0] + ".lock"


def locked_stage_names(text: str) -> list[str]:
    """The stage names of a dvc.lock's text, in file order, without parsing the whole file (a YAML
    parse of the default profile's lock takes ~0.7 s, on every run): the keys DVC writes two
    spaces in under ``stages:``, each read as YAML so that a quoted name comes out as DVC meant it."""
    import yaml

    names, inside = [], False
    for line in text.splitlines():
        if not line.startswith(" "):
            inside = line.rstrip() == "stages:"
        elif inside and line.startswith("  ") and not line.startswith("   ") and line.rstrip().endswith(":"):
            names.append(str(yaml.safe_load(line.strip()[:-1])))
    return names


def lock_entry_names(repo, orphans: dict[str, list[str]]) -> list[str]:
    """The entries of :func:`orphan_lock_entries` as names: ``stage``, or ``path:stage`` for a lock
    file other than the top one."""
    names = []
    for path, stages in orphans.items():
        where = os.path.relpath(path, repo.root_dir)
        names += [name if where == "dvc.lock" else f"{where}:{name}" for name in stages]
    return names


def remove_lock_entries(repo, orphans: dict[str, list[str]]) -> None:
    """Delete the given entries (:func:`orphan_lock_entries`) from their lock files, keeping the
    rest of each file as it is."""
    from dvc.utils.serialize import modify_yaml

    for path, names in orphans.items():
        with modify_yaml(path, fs=repo.fs) as data:
            for name in names:
                del data["stages"][name]


def output_paths(stage) -> tuple[str, ...]:
    """Absolute paths of the declared outputs (outs, metrics, plots) of ``stage`` that a failed or
    interrupted run must not leave behind: all but ``persist: true`` ones, which DVC keeps across
    runs on purpose (``Stage.remove_outs`` leaves them too)."""
    return tuple(os.path.abspath(out.fs_path) for out in stage.outs if not out.persist)


def log_path(repo, stage) -> str:
    safe = stage.addressing.replace(os.sep, "_").replace(":", "_")
    return os.path.join(repo.root_dir, str(LOG_DIR), f"{safe}.log")


def stage_group(stage) -> str:
    """A matrix/foreach cell's group name as written in dvc.yaml (``finetune@a0-s1`` → ``finetune``)."""
    return stage.name.split("@", 1)[0] if stage.name else stage.addressing


def stage_command(repo, stage, *, threads: int, gpu: bool, stop_file: str | None = None) -> StageCommand:
    """What a worker needs to run ``stage``: its command lines, working directory, outputs, and the
    environment DVC gives a stage (DVC_ROOT, DVC_STAGE) plus this cluster's thread caps."""
    from dvc.env import DVC_ROOT, DVC_STAGE

    commands = stage.cmd if isinstance(stage.cmd, list) else stage.cmd.splitlines()
    env = {DVC_ROOT: repo.root_dir, DVC_STAGE: stage.addressing, **thread_environment(threads)}
    return StageCommand(name=stage.addressing, commands=tuple(commands), wdir=stage.wdir,
                        outs=output_paths(stage), env=env, log_file=log_path(repo, stage), gpu=gpu,
                        stop_file=stop_file)
