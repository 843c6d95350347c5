"""`latentgeo repro`: DVC's stage graph on a Dask cluster, recorded by DVC as `dvc repro` records it.

Most tests use a tiny synthetic DVC repository (a few `echo > file` stages, no git) and an
in-process Dask cluster shared by the module, so each runs in a second or two. The last test
compares the real smoke pipeline, run on a LocalCluster of two worker processes, with the plain
sequential `dvc repro` of one model's branch of it (the shared `smoke_repo` and
`smoke_branch_repo` fixtures, which run in the suite's background: tests/conftest.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from latentgeo.config.schema import ClusterParams, JobqueueParams
from latentgeo.errors import LatentgeoError
from latentgeo.repro import FAILED, RAN, RESTORED, SKIPPED, UP_TO_DATE, reproduce
from latentgeo.repro import pipeline as repro_pipeline
from latentgeo.repro.cluster import (RUNNER_DASK_CONFIG, ClusterChoice, dask_environment, jobqueue_cluster,
                                    open_client, resolve_cluster)
from latentgeo.repro.schedule import Scheduler
from latentgeo.repro.worker import (StageCommand, run_stage_command, stage_environment, thread_environment,
                                    worker_slot)

pytestmark = pytest.mark.slow  # DVC pipelines on Dask worker processes

# a → b ─┐
# x@1, x@2 ┴→ c ; bad → after (bad fails while its command is broken)
PIPELINE = textwrap.dedent("""\
    stages:
      a:
        cmd: echo "start a" >> journal && echo a > a.txt && echo "end a" >> journal
        outs: [a.txt]
      b:
        cmd: echo "start b" >> journal && cat a.txt > b.txt && echo b >> b.txt && echo "end b" >> journal
        deps: [a.txt]
        outs: [b.txt]
      x:
        foreach: [1, 2]
        do:
          cmd: echo "start x${item}" >> journal && echo ${item} > x${item}.txt && echo "end x${item}" >> journal
          outs: ["x${item}.txt"]
      c:
        cmd: echo "start c" >> journal && cat b.txt x1.txt x2.txt > c.txt && echo "end c" >> journal
        deps: [b.txt, x1.txt, x2.txt]
        outs: [c.txt]
      bad:
        cmd: BAD_COMMAND
        outs: [bad.txt]
      after:
        cmd: cat bad.txt > after.txt
        deps: [bad.txt]
        outs: [after.txt]
    """)
FAILING = "echo partial > bad.txt && exit 3"
FIXED = "echo fixed > bad.txt"


def make_repo(path: Path, bad_command: str = FIXED) -> Path:
    from dvc.repo import Repo

    path.mkdir(parents=True)
    Repo.init(str(path), no_scm=True).close()
    (path / "dvc.yaml").write_text(PIPELINE.replace("BAD_COMMAND", bad_command))
    (path / ".dvcignore").write_text("journal\n")
    return path


def dvc_status(repo: Path) -> dict:
    """`dvc status` of ``repo`` (DVC resolves dvc.yaml against the working directory)."""
    from dvc.repo import Repo

    with contextlib.chdir(repo), Repo(str(repo)) as r:
        return r.status()


def journal(repo: Path) -> list[str]:
    path = repo / "journal"
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture(scope="module")
def scheduler_address():
    """An in-process Dask cluster of two single-thread workers (starts in well under a second)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def repro(repo: Path, address: str, *targets: str, **kw):
    return reproduce(list(targets), root=repo, cluster=address, **kw)


# -- scheduling on the synthetic repository ----------------------------------------------------------

def test_dependency_order_and_dvc_lock_identical_to_dvc_repro(tmp_path, scheduler_address):
    from dvc.repo import Repo

    ours = make_repo(tmp_path / "ours")
    outcome = repro(ours, scheduler_address)
    assert outcome.ok and set(outcome.names(RAN)) == {"a", "b", "x@1", "x@2", "c", "bad", "after"}
    events = journal(ours)
    for up, down in [("a", "b"), ("b", "c"), ("x1", "c"), ("x2", "c")]:
        assert events.index(f"end {up}") < events.index(f"start {down}"), events
    assert dvc_status(ours) == {}
    # The same pipeline through DVC itself: the lock (order and hashes) and cache come out the same.
    sequential = make_repo(tmp_path / "sequential")
    with contextlib.chdir(sequential), Repo(str(sequential)) as r:
        r.reproduce()
    assert (ours / "dvc.lock").read_bytes() == (sequential / "dvc.lock").read_bytes()

    def cache_files(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in (root / ".dvc" / "cache").rglob("*") if p.is_file())

    assert cache_files(ours) == cache_files(sequential)  # run-cache entries included
    again = repro(ours, scheduler_address)
    assert set(again.names(UP_TO_DATE)) == set(outcome.names(RAN)) and not again.names(RAN)


def test_failure_stops_dependents_only_and_rerun_continues(tmp_path, scheduler_address):
    repo = make_repo(tmp_path / "repo", bad_command=FAILING)
    outcome = repro(repo, scheduler_address)
    assert outcome.states["bad"] == FAILED and outcome.states["after"] == SKIPPED
    assert "exited 3" in outcome.errors["bad"]
    assert set(outcome.names(RAN)) == {"a", "b", "x@1", "x@2", "c"}
    assert not (repo / "bad.txt").exists()  # written before the failure: removed
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert set(lock) == {"a", "b", "x@1", "x@2", "c"}
    # Fix the command: only the failed stage and its dependent run; the rest is kept.
    (repo / "dvc.yaml").write_text((repo / "dvc.yaml").read_text().replace(FAILING, FIXED))
    (repo / "journal").unlink()
    rerun = repro(repo, scheduler_address)
    assert set(rerun.names(RAN)) == {"bad", "after"}
    assert set(rerun.names(UP_TO_DATE)) == {"a", "b", "x@1", "x@2", "c"}
    assert journal(repo) == []  # a, b, x, c did not run again
    assert (repo / "after.txt").read_text() == "fixed\n"
    assert dvc_status(repo) == {}


def test_targets_select_their_upstream_and_run_cache_restores(tmp_path, scheduler_address):
    repo = make_repo(tmp_path / "repo")
    outcome = repro(repo, scheduler_address, "b")
    assert list(outcome.states) == ["a", "b"] and outcome.names(RAN) == ["a", "b"]
    (repo / "b.txt").unlink()
    (repo / "journal").unlink()
    restored = repro(repo, scheduler_address, "b")
    assert restored.states == {"a": UP_TO_DATE, "b": RESTORED}  # as `dvc repro`: from the run-cache
    assert journal(repo) == [] and (repo / "b.txt").read_text() == "a\nb\n"


def test_interrupt_removes_outputs_in_flight_and_keeps_finished(tmp_path, scheduler_address, monkeypatch):
    import latentgeo.repro as repro_module

    repo = make_repo(tmp_path / "repo")
    yml = (repo / "dvc.yaml").read_text()
    (repo / "dvc.yaml").write_text(yml + "  slow:\n"
                                   "    cmd: echo partial > slow.txt && sleep 60 && echo done >> slow.txt\n"
                                   "    deps: [a.txt]\n"
                                   "    outs: [slow.txt]\n")
    real_wait = repro_module._LazyClient.wait_any

    interrupted = []

    def wait_then_interrupt(self, futures, timeout=1.0):
        """Ctrl-C once `slow` has begun writing its output (so `a`, its upstream, is recorded; its
        lock entry may still be due: the lock is written at most every few minutes)."""
        if not interrupted and (repo / "slow.txt").exists():
            interrupted.append(True)
            raise KeyboardInterrupt
        return real_wait(self, futures, timeout)

    monkeypatch.setattr(repro_module._LazyClient, "wait_any", wait_then_interrupt)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        repro(repo, scheduler_address, "slow", "a")
    assert time.monotonic() - start < 30  # the sleep was ended, not waited for
    assert not (repo / "slow.txt").exists()
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    assert set(lock) == {"a"}  # finished, its entry written at Ctrl-C; the interrupted stage left none
    monkeypatch.undo()
    assert repro(repo, scheduler_address, "a").states == {"a": UP_TO_DATE}


def test_ctrl_c_in_a_terminal_stops_local_worker_processes_cleanly(tmp_path):
    """A real Ctrl-C: SIGINT to the whole process group of `latentgeo repro` on two local worker
    processes, while a stage has written half its output."""
    import signal
    import subprocess
    import sys

    repo = make_repo(tmp_path / "repo")
    (repo / "dvc.yaml").write_text("stages:\n"
                                   "  slow:\n"
                                   "    cmd: echo partial > slow.txt && sleep 120 && echo done >> slow.txt\n"
                                   "    outs: [slow.txt]\n")
    proc = subprocess.Popen([sys.executable, "-m", "latentgeo.cli", "repro", "--workers", "2"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not (repo / "slow.txt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (repo / "slow.txt").exists(), proc.communicate()[0]
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal sends the foreground group
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert not (repo / "slow.txt").exists() and not (repo / "dvc.lock").exists()
    leftovers = subprocess.run(["pgrep", "-f", f"sleep 120 && echo done"], capture_output=True, text=True)
    assert leftovers.stdout == "", "the stage's processes outlived the run"


def test_sigterm_stops_local_worker_processes_cleanly(tmp_path):
    """SIGTERM to the client alone (a batch system cancelling the job) is handled as Ctrl-C: the
    running stage's processes end, its half-written output is removed, exit status 143."""
    import signal
    import subprocess
    import sys

    repo = make_repo(tmp_path / "repo")
    (repo / "dvc.yaml").write_text("stages:\n"
                                   "  slow:\n"
                                   "    cmd: echo partial > slow.txt && sleep 121 && echo done >> slow.txt\n"
                                   "    outs: [slow.txt]\n")
    proc = subprocess.Popen([sys.executable, "-m", "latentgeo.cli", "repro", "--workers", "2"], cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (repo / "slow.txt").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (repo / "slow.txt").exists(), proc.communicate()[0]
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, output
    assert "terminated (SIGTERM)" in output
    assert not (repo / "slow.txt").exists() and not (repo / "dvc.lock").exists()
    leftovers = subprocess.run(["pgrep", "-f", "sleep 121 && echo done"], capture_output=True, text=True)
    assert leftovers.stdout == "", "the stage's processes outlived the run"


class Done:
    """A synchronous stand-in for a Dask future: the stage's command runs when it is submitted."""

    def __init__(self, spec):
        self.value = run_stage_command(spec)

    def result(self):
        return self.value


def run_scheduler(repo_dir: Path, targets: list[str], **scheduler_options):
    """Plan ``targets`` of ``repo_dir`` and run them with :class:`Scheduler` (no cluster)."""
    from dvc.repo import lock_repo

    repo = repro_pipeline.open_repo(repo_dir)
    try:
        with lock_repo(repo):  # DVC writes its cache only under the repository lock
            return Scheduler(repo, repro_pipeline.make_plan(repo, targets), **scheduler_options).run()
    finally:
        repo.close()


def test_gpu_stages_ask_for_one_gpu_and_threads_reach_the_command(tmp_path, monkeypatch):
    """The scheduler's requests, with a synchronous stand-in for Dask (no cluster)."""
    repo_dir = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo_dir)  # DVC resolves targets against the working directory
    requests = {}

    def submit(spec, resources):
        requests[spec.name] = (resources, spec.gpu, spec.env["OMP_NUM_THREADS"])
        return Done(spec)

    outcome = run_scheduler(repo_dir, ["c"], submit=submit, wait_any=lambda fs, timeout=1.0: set(fs),
                            threads=3, gpu_groups=frozenset({"x"}))
    assert outcome.ok
    assert requests["x@1"] == ({"GPU": 1}, True, "3") and requests["x@2"] == ({"GPU": 1}, True, "3")
    assert requests["a"] == (None, False, "3")


@pytest.mark.parametrize("slots, most", [(2, 2), (0, 1)])
def test_stages_are_handed_out_only_while_a_worker_slot_is_free(tmp_path, monkeypatch, slots, most):
    """Stale stages wait in the scheduler until the cluster has a free slot (``capacity()``), so
    none waits behind a long stage in a busy worker's queue while another worker is idle; with no
    slot known yet (batch workers still joining), one stage still runs. A synchronous stand-in for
    Dask whose futures finish one per wait, oldest first: a, x@1 and x@2 are ready together, so
    without the limit all three would be in flight at once."""
    repo_dir = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo_dir)
    in_flight, peak = [], []

    def submit(spec, resources):
        in_flight.append(Done(spec))
        peak.append(len(in_flight))
        return in_flight[-1]

    def wait_any(futures, timeout=1.0):
        assert in_flight[0] in futures
        return {in_flight.pop(0)}

    outcome = run_scheduler(repo_dir, ["c"], submit=submit, wait_any=wait_any, capacity=lambda: slots)
    assert outcome.ok and sorted(outcome.names(RAN)) == ["a", "b", "c", "x@1", "x@2"]
    assert max(peak) == most


# With no interval the lock is written after every round of hand-outs, in plan order up to the
# first unsettled stage: a, x@1 and x@2 run in the first round, b in the second (with a's entry
# written before it ends), c in the third.
@pytest.mark.parametrize("interval, written_before_c", [(0.0, ["a"]), (1e9, [])])
def test_lock_entries_are_written_at_most_once_per_interval_and_all_at_the_end(
        tmp_path, monkeypatch, interval, written_before_c):
    """dvc.lock is rewritten during a run at most every ``lock_interval_s`` (each rewrite parses and
    dumps the whole file), and every entry is written when the run ends. What the lock holds when
    the last stage (c) is handed out shows which."""
    repo_dir = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo_dir)
    seen = {}

    def submit(spec, resources):
        lock = repo_dir / "dvc.lock"
        seen[spec.name] = sorted(yaml.safe_load(lock.read_text())["stages"]) if lock.exists() else []
        return Done(spec)

    outcome = run_scheduler(repo_dir, ["c"], submit=submit, wait_any=lambda fs, timeout=1.0: set(fs),
                            lock_interval_s=interval)
    assert outcome.ok and seen["c"] == written_before_c
    assert sorted(yaml.safe_load((repo_dir / "dvc.lock").read_text())["stages"]) == ["a", "b", "c", "x@1", "x@2"]
    assert not set(dvc_status(repo_dir)) & {"a", "b", "c", "x@1", "x@2"}


# -- the worker ---------------------------------------------------------------------------------------

def test_worker_runs_commands_with_thread_caps_and_removes_outputs_on_failure(tmp_path):
    out = tmp_path / "out.txt"
    ok = run_stage_command(StageCommand(name="s", commands=(f"echo $OMP_NUM_THREADS $MKL_NUM_THREADS > {out}",),
                                        wdir=str(tmp_path), outs=(str(out),), env=thread_environment(2)))
    assert ok.ok and out.read_text() == "2 2\n"
    outdir = tmp_path / "dir"
    failed = run_stage_command(StageCommand(
        name="s", commands=(f"mkdir -p {outdir} && echo x > {outdir}/f && echo oops >&2 && false",),
        wdir=str(tmp_path), outs=(str(outdir),), log_file=str(tmp_path / "s.log")))
    assert not failed.ok and failed.returncode == 1 and "oops" in failed.log_tail
    assert not outdir.exists()


def test_worker_reports_the_cpu_time_of_the_commands_process_tree(tmp_path):
    burn = f"{sys.executable} -c 'import time; t = time.process_time(); exec(\"while time.process_time() - t < 0.4: pass\")'"
    # `; true` keeps the shell from exec-ing python: the CPU time is a grandchild's, as a kernel's is
    busy = run_stage_command(StageCommand(name="busy", commands=(f"{burn}; true",), wdir=str(tmp_path), outs=()))
    idle = run_stage_command(StageCommand(name="idle", commands=("sleep 0.5",), wdir=str(tmp_path), outs=()))
    assert busy.ok and 0.4 <= busy.cpu_seconds <= busy.seconds + 0.05
    assert idle.ok and idle.seconds >= 0.5 and idle.cpu_seconds < 0.2


def test_stage_environment_drops_the_dask_nannys_additions():
    env = stage_environment({"PATH": "/bin", "MALLOC_TRIM_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"},
                            thread_environment(4), python_bin="/venv/bin")
    assert env["OMP_NUM_THREADS"] == "4" and "MALLOC_TRIM_THRESHOLD_" not in env
    # The worker's interpreter first, so a stage's `python -m latentgeo...` finds the project.
    assert env["PATH"] == os.pathsep.join(["/venv/bin", "/bin"])
    assert stage_environment({"PATH": "/venv/bin:/bin"}, {}, python_bin="/venv/bin")["PATH"] == "/venv/bin:/bin"
    assert stage_environment({}, {})["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)


def test_worker_slot_from_dask_worker_names():
    assert worker_slot(0) == 0 and worker_slot(3) == 3
    assert worker_slot("SLURMCluster-12-5") == 5  # dask-jobqueue: <cluster>-<job>-<process>
    assert worker_slot("tcp://node:8786 worker") == 0


# -- clusters and bad input --------------------------------------------------------------------------

def test_workers_times_threads_fit_the_cores():
    section = ClusterParams()
    assert (resolve_cluster(section, workers=2, cores=2).threads) == 1
    assert (resolve_cluster(section, workers=1, cores=2).threads) == 2
    assert (resolve_cluster(section, cores=16).workers, resolve_cluster(section, cores=16).threads) == (2, 8)
    assert resolve_cluster(ClusterParams(workers=4), cores=16).threads == 4
    assert resolve_cluster(ClusterParams(workers=4), workers=8, cores=16).workers == 8  # the flag wins
    assert resolve_cluster(section, cluster="tcp://h:8786").kind == "address"
    slurm = ClusterParams(backend="slurm", workers=3, jobqueue=JobqueueParams(cores=32, processes=8))
    assert (resolve_cluster(slurm).workers, resolve_cluster(slurm).threads) == (3, 4)


def test_slurm_job_script_asks_for_gpus_and_one_stage_per_worker():
    section = ClusterParams(backend="slurm", gpu_stages=["finetune"], jobqueue=JobqueueParams(
        cores=32, memory="256GB", processes=8, gpus=8, walltime="04:00:00", queue="gpu", account="lab",
        job_script_prologue=["source /shared/latentgeo/.venv/bin/activate"]))
    cluster = jobqueue_cluster(resolve_cluster(section))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p gpu", "#SBATCH -A lab", "#SBATCH --gres=gpu:8", "#SBATCH -t 04:00:00",
                 "#SBATCH --cpus-per-task=32", "source /shared/latentgeo/.venv/bin/activate",
                 "export OMP_NUM_THREADS=4 MKL_NUM_THREADS=4"):
        assert line in script, (line, script)
    assert "--nworkers 8" in script and "--resources GPU=1" in script and script.rstrip().endswith("--nthreads 1 --resources GPU=1")
    assert "export " + " ".join(f"{k}={v}" for k, v in dask_environment().items()) in script


def test_the_runners_dask_settings_as_environment_variables_read_back():
    """What a batch job's worker reads from DASK_* variables is the runner's config."""
    import dask

    env = dask_environment()
    assert env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] == "False"
    collected = dask.config.collect_env(env)
    for key, value in RUNNER_DASK_CONFIG.items():
        assert dask.config.get(key, config=collected) == value, key


def test_a_cluster_started_before_distributed_is_imported_keeps_dasks_defaults(tmp_path):
    """In a fresh interpreter (as `latentgeo repro` starts): importing distributed inside the
    settings' context would lose its defaults when the context ends (KeyError: 'distributed' in
    the scheduler once a worker leaves)."""
    script = textwrap.dedent("""
        import sys
        from latentgeo.repro.cluster import ClusterChoice, open_client
        assert "distributed" not in sys.modules
        client, cluster = open_client(ClusterChoice(kind="local", workers=1, threads=1))
        import dask
        print(dask.config.get("distributed.scheduler.events-cleanup-delay"))
        client.close()
        cluster.close()
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() and "KeyError" not in done.stderr


def test_local_workers_and_scheduler_start_with_the_runners_dask_settings():
    """The settings reach the processes that run the stages, and leave the caller's config as it was."""
    import dask
    import distributed  # noqa: F401 - its defaults in Dask's config, to compare with

    before = dask.config.get("distributed.admin.tick.interval")
    client, cluster = open_client(ClusterChoice(kind="local", workers=1, threads=1))
    try:
        seen = client.run(lambda dask_worker: (dask.config.get("distributed.worker.profile.enabled"),
                                               "profile" in dask_worker.periodic_callbacks,
                                               dask_worker._tick_interval))
        assert list(seen.values()) == [(False, False, 1.0)]
        assert cluster.scheduler._tick_interval == 1.0
    finally:
        client.close()
        cluster.close()
    assert dask.config.get("distributed.admin.tick.interval") == before


def test_pbs_job_script_from_the_same_section():
    section = ClusterParams(backend="pbs", jobqueue=JobqueueParams(cores=8, memory="32GB", processes=2,
                                                                    walltime="01:00:00"))
    cluster = jobqueue_cluster(resolve_cluster(section))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#PBS -l walltime=01:00:00" in script and "--nworkers 2" in script and "--nthreads 1" in script


def test_invalid_cluster_sections_are_refused():
    from latentgeo.config.schema import validate_params

    base = yaml.safe_load((Path(__file__).resolve().parents[1] / "profiles" / "smoke.yaml").read_text())
    for section, words in [({"backend": "kubernetes"}, "cluster.backend"),
                           ({"workers": 0}, "cluster.workers"),
                           ({"address": "host:8786"}, "tcp://host:port"),
                           ({"jobqueue": {"gpus": 3, "processes": 2}}, "multiple of processes"),
                           ({"wrokers": 2}, "cluster.wrokers")]:
        with pytest.raises(LatentgeoError, match=words.replace(".", r"\.")):
            validate_params({**base, "cluster": section}, "p.yaml")


def test_bad_input_is_refused_before_any_stage_runs(tmp_path, scheduler_address):
    repo = make_repo(tmp_path / "repo")
    with pytest.raises(LatentgeoError, match="unknown target 'nope'"):
        repro(repo, scheduler_address, "a", "nope")
    with pytest.raises(LatentgeoError, match="--workers must be at least 1"):
        reproduce([], root=repo, workers=0)
    params = repo / "params.yaml"
    base = yaml.safe_load((Path(__file__).resolve().parents[1] / "profiles" / "smoke.yaml").read_text())
    params.write_text(yaml.safe_dump({**base, "cluster": {"backend": "kubernetes"}}))
    with pytest.raises(LatentgeoError, match="cluster.backend"):
        reproduce([], root=repo)
    params.unlink()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(LatentgeoError, match=f"no Dask scheduler answers at tcp://127.0.0.1:{port}"):
        reproduce([], root=repo, cluster=f"tcp://127.0.0.1:{port}", connect_timeout=5)
    assert time.monotonic() - start < 30
    if shutil.which("sbatch") is None:  # this machine: no Slurm
        with pytest.raises(LatentgeoError, match="`sbatch` is not on the PATH"):
            reproduce([], root=repo, cluster="slurm")
    assert not list(repo.glob("*.txt")) and not (repo / "dvc.lock").exists()


def test_cli_refuses_bad_input_with_exit_status_2(tmp_path, monkeypatch, capsys):
    from latentgeo.cli import main

    repo = make_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    for args, words in [(["nope"], "unknown target 'nope'"),
                        (["--cluster", "kubernetes"], "expected one of local")]:
        assert main(["repro", *args]) == 2
        assert words in capsys.readouterr().err, args
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage error, status 2
        main(["repro", "--workers", "0"])
    assert exit_info.value.code == 2 and "must be at least 1" in capsys.readouterr().err
    assert not list(repo.glob("*.txt"))


def test_lock_entries_of_stages_no_longer_defined_are_reported_and_pruned_on_request(tmp_path, scheduler_address):
    """DVC keeps the lock entry of a stage removed from dvc.yaml (here the foreach item x@2 and the
    stage after). A successful run of the whole pipeline names them; with prune_lock it removes
    them; a run of targets does neither. Whether a stage that comes back reruns is DVC's run-cache's
    call: after (it has a dependency) is restored, x@2 (none: never run-cached) reruns. A .dvc file
    (as data.dvc in the project) has no lock entry."""
    from dvc.repo import Repo

    repo = make_repo(tmp_path / "repo")
    (repo / "data.txt").write_text("tracked\n")
    with Repo(str(repo)) as r:
        r.add(str(repo / "data.txt"))
    assert repro(repo, scheduler_address).ok
    full = (repo / "dvc.yaml").read_text()
    shorter = full.replace("foreach: [1, 2]", "foreach: [1]").replace("x1.txt x2.txt", "x1.txt")
    shorter = shorter.replace("deps: [b.txt, x1.txt, x2.txt]", "deps: [b.txt, x1.txt]")
    shorter = shorter.split("\n  after:")[0] + "\n"
    (repo / "dvc.yaml").write_text(shorter)

    def locked() -> set[str]:
        return set(yaml.safe_load((repo / "dvc.lock").read_text())["stages"])

    partial = repro(repo, scheduler_address, "a", prune_lock=True)
    assert partial.ok and partial.orphans == [] and not partial.pruned and {"x@2", "after"} <= locked()
    kept = repro(repo, scheduler_address)
    assert kept.ok and sorted(kept.orphans) == ["after", "x@2"] and not kept.pruned
    assert {"x@2", "after"} <= locked()
    pruned = repro(repo, scheduler_address, prune_lock=True)
    assert pruned.pruned and sorted(pruned.orphans) == ["after", "x@2"]
    assert locked() == {"a", "b", "x@1", "c", "bad"} and dvc_status(repo) == {}
    assert repro(repo, scheduler_address).orphans == []
    (repo / "dvc.yaml").write_text(full)
    back = repro(repo, scheduler_address)
    assert back.ok and "after" in back.names(RESTORED) and back.names(RAN) == ["x@2"]


def test_lock_stage_names_are_read_without_a_full_parse():
    text = textwrap.dedent("""\
        schema: '2.0'
        stages:
          a:
            cmd: echo a
            deps:
            - path: x
            params:
              params.yaml:
                finetune.seed: 0
          "x@1:odd":
            cmd: echo
          finetune@m-a0-s1-bbc-topic:
            outs: []
        other:
          z:
        """)
    assert repro_pipeline.locked_stage_names(text) == ["a", "x@1:odd", "finetune@m-a0-s1-bbc-topic"]
    committed = Path(__file__).resolve().parents[1] / "dvc.lock"
    if committed.is_file():  # the real lock: the same names as a whole YAML parse
        lock = committed.read_text()
        assert repro_pipeline.locked_stage_names(lock) == list(yaml.safe_load(lock)["stages"])


def test_lock_path_is_where_dvc_keeps_the_lock(tmp_path):
    from dvc.dvcfile import ProjectFile
    from dvc.repo import Repo

    repo = Repo.init(str(tmp_path), no_scm=True)
    for path in ("dvc.yaml", "sub/dvc.yaml", "sub/pipe.yaml"):
        dvcfile = ProjectFile(repo, str(tmp_path / path))
        assert repro_pipeline.lock_path(dvcfile.path) == dvcfile._lockfile.path  # DVC's own, private


def test_cli_reports_lock_entries_and_prunes_on_request(tmp_path, monkeypatch, capsys):
    from latentgeo.cli import main
    from latentgeo.repro.schedule import Outcome

    calls = []

    def fake(*args, prune_lock=False, **kw):
        calls.append(prune_lock)
        return Outcome(states={"a": UP_TO_DATE}, orphans=["x@2", "x@3", "after", "old"], pruned=prune_lock)

    monkeypatch.setattr("latentgeo.cli.commands.repro.reproduce", fake)
    assert main(["repro"]) == 0
    out = capsys.readouterr().out
    assert "dvc.lock keeps 4 entries of stages dvc.yaml no longer defines (x@2, x@3, after, …)" in out
    assert "`latentgeo repro --prune-lock` removes them" in out
    assert main(["repro", "--prune-lock"]) == 0
    assert "dvc.lock: removed 4 entries" in capsys.readouterr().out and calls == [False, True]


# -- the smoke pipeline on two worker processes --------------------------------------------------------

@pytest.mark.pipeline
@pytest.mark.slow
def test_smoke_pipeline_on_two_worker_processes_matches_sequential_dvc_repro(smoke_repo, smoke_branch_repo):
    """`smoke_repo` is `make repro PROFILE=smoke`: `latentgeo repro` on a LocalCluster of two
    worker processes (this machine's default: 1 thread per stage). `smoke_branch_repo` is a fresh
    copy after the plain sequential `dvc repro` (as WORKERS=0 does) of one model's branch
    (pipeline_utils.BRANCH_TARGETS: every stage its measures and one fine-tuning cell need), with
    the same thread count and on the same floating-point path (both run in the suite's background:
    tests/conftest.py). The measures must agree to the byte, the fine-tuning record but for its
    wall time, and the stages' lock entries too. (The whole graph's order and lock file:
    test_dependency_order_and_dvc_lock_identical_to_dvc_repro.)"""
    from pipeline_utils import BRANCH_MODEL, BRANCH_TARGETS, BRANCH_TASK

    logs = list((smoke_repo / ".dvc" / "tmp" / "repro").glob("finetune@*.log"))
    assert logs, "make repro did not run the stages through latentgeo repro's workers"
    sequential = smoke_branch_repo

    measures = f"results/measures/{BRANCH_MODEL}.json"
    assert (smoke_repo / measures).read_bytes() == (sequential / measures).read_bytes()

    # Fine-tuning records carry the run's wall time (wall_time_s), so their bytes, and the hash
    # of the folder holding them, differ between any two runs: compare them without it.
    timed = ("executed/", "results/finetune")

    def lock_entries(repo: Path) -> dict:
        """The branch's dvc.lock entries with every hash, except those of files that hold run
        times (the executed notebooks, the fine-tuning records), compared below without them."""
        def entries(items):
            return [(e["path"], None if e["path"].startswith(timed) else e.get("md5"))
                    for e in items or []]

        lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
        return {name: (s["cmd"], entries(s.get("deps")), entries(s.get("outs")), s.get("params"))
                for name, s in lock.items() if name in ran}

    ran = set(yaml.safe_load((sequential / "dvc.lock").read_text())["stages"])
    assert {*BRANCH_TARGETS, f"embed@{BRANCH_MODEL}", f"perturb@{BRANCH_MODEL}"} == ran
    assert lock_entries(smoke_repo) == lock_entries(sequential)

    def finetune_record(repo: Path) -> dict:
        record = json.loads((repo / "results" / "finetune" / BRANCH_MODEL / f"{BRANCH_TASK}.json").read_text())
        record.pop("wall_time_s")
        return record

    assert finetune_record(smoke_repo) == finetune_record(sequential)
