"""Where the stages run: local worker processes, batch jobs (dask-jobqueue), or a running scheduler.

:func:`resolve_cluster` turns the profile's ``cluster:`` section and the command-line flags into a
:class:`ClusterChoice` and refuses bad combinations before anything starts; :func:`open_client`
starts (or connects to) the cluster. Each Dask worker runs one stage at a time (one worker thread:
the task only waits on the stage's process); the stage itself gets ``threads`` OpenMP/MKL/torch
threads, so that workers × threads ≤ cores on every node.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, replace

from latentgeo.config.schema import CLUSTER_BACKENDS, ClusterParams, JobqueueParams
from latentgeo.errors import LatentgeoError
from latentgeo.repro.worker import ignore_sigint

# Imported inside the functions that use them (heavy, or rarely needed): dask_jobqueue, distributed.

# Worker processes of `latentgeo repro` on one machine when neither the flag nor the profile says:
# two measured fastest on the 2-core development machine (docs/cluster.md); never more than cores.
DEFAULT_LOCAL_WORKERS = 2
JOBQUEUE_CLASSES = {"slurm": "SLURMCluster", "pbs": "PBSCluster", "sge": "SGECluster", "lsf": "LSFCluster"}
ADDRESS_SCHEMES = ("tcp://", "tls://", "inproc://", "ucx://")

# Dask settings for the clusters `latentgeo repro` starts. Dask's defaults suit many short tasks;
# here each task is one stage, a shell command that runs for seconds to minutes while the worker's
# own thread only polls it. At the defaults the Dask processes around the stages kept busy ~14 % of
# a core during a full run on 2 cores (the two workers' event loops ~4 % each, the runner's ~6 %,
# sampled per thread), 7x what they take with these settings (bench/runner_overhead.py): every
# event loop checks its own health every 20 ms, each worker samples its threads' stacks every
# 10 ms for a profile no one reads (the runner starts no dashboard), and the nannies look at
# their worker's memory every 100 ms.
# Checked less often, they leave those cycles to the stages; a stage's log, its outputs and the
# runner's Ctrl-C handling do not depend on them.
RUNNER_DASK_CONFIG = {
    "distributed.worker.profile.enabled": False,  # the statistical profiler of the worker's tasks
    "distributed.admin.tick.interval": "1s",  # event-loop health check (warns after tick.limit, 3 s)
    "distributed.worker.memory.monitor-interval": "1s",  # the nanny's look at its worker's memory
    "distributed.admin.system-monitor.interval": "2s",  # CPU/memory/network samples for the dashboard
}


def dask_environment(config: dict[str, object] = RUNNER_DASK_CONFIG) -> dict[str, str]:
    """``config`` as the DASK_* environment variables a batch job's worker reads at start-up
    (Dask's convention: upper case, ``__`` between levels, ``-`` kept as ``_``)."""
    return {"DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
            for key, value in config.items()}


@dataclass(frozen=True)
class ClusterChoice:
    """A resolved cluster: ``kind`` is local, a jobqueue backend, or address."""

    kind: str
    workers: int  # local: worker processes; jobqueue: jobs; address: unused (the scheduler's own)
    threads: int  # threads per stage
    address: str | None = None
    gpu_groups: frozenset[str] = frozenset()
    jobqueue: JobqueueParams = JobqueueParams()

    def describe(self) -> str:
        if self.kind == "address":
            return f"the Dask scheduler at {self.address}, {self.threads} thread(s) per stage"
        unit = "worker process(es)" if self.kind == "local" else f"{self.kind} job(s)"
        return f"{self.workers} {unit}, {self.threads} thread(s) per stage"


def local_cores() -> int:
    """Cores this process may use (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_cluster(section: ClusterParams, *, cluster: str | None = None, workers: int | None = None,
                    threads: int | None = None, cores: int | None = None) -> ClusterChoice:
    """Flags override the profile; refuse what cannot work before anything starts."""
    if workers is not None and workers < 1:
        raise LatentgeoError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise LatentgeoError(f"--threads must be at least 1, got {threads}")
    cores = cores or local_cores()
    kind, address = section.backend, section.address
    if address:
        kind = "address"
    if cluster is not None:
        if cluster.startswith(ADDRESS_SCHEMES):
            kind, address = "address", cluster
        elif cluster in CLUSTER_BACKENDS:
            kind, address = cluster, None
        else:
            raise LatentgeoError(f"--cluster {cluster!r}: expected one of {', '.join(CLUSTER_BACKENDS)} "
                                 "or a scheduler address tcp://host:port")
    n = workers or section.workers
    if kind == "local":
        n = n or min(DEFAULT_LOCAL_WORKERS, cores)
        t = threads or section.threads_per_stage or max(1, cores // n)
    elif kind == "address":
        n = n or 1
        t = threads or section.threads_per_stage or 1
    else:
        n = n or 1
        jq = section.jobqueue
        per_worker = (jq.cores // (jq.processes or 1)) if jq.cores else 1
        t = threads or section.threads_per_stage or max(1, per_worker)
    return ClusterChoice(kind=kind, workers=n, threads=t, address=address,
                         gpu_groups=frozenset(section.gpu_stages), jobqueue=section.jobqueue)


def local_gpu_count() -> int:
    """GPUs this machine shows (``nvidia-smi -L``; CUDA_VISIBLE_DEVICES narrows them)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if not smi:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def jobqueue_kwargs(kind: str, jq: JobqueueParams, threads: int) -> dict:
    """Keyword arguments of the dask-jobqueue cluster class for ``jq`` (unset keys: Dask config).

    Every worker runs one stage at a time (``--nthreads 1``: the stage's own threads come from the
    environment); GPUs are offered as the worker resource ``GPU`` (GPUs per job / processes)."""
    kw: dict = {k: v for k, v in {
        "cores": jq.cores, "memory": jq.memory, "processes": jq.processes, "walltime": jq.walltime,
        "queue": jq.queue, "account": jq.account, "interface": jq.interface,
        "local_directory": jq.local_directory, "log_directory": jq.log_directory,
    }.items() if v is not None}
    directives = list(jq.job_extra_directives)
    worker_args = ["--nthreads", "1"]
    if jq.gpus:
        per_worker = jq.gpus // (jq.processes or 1)
        worker_args += ["--resources", f"GPU={per_worker}"]
        if kind == "slurm" and not any("gres" in d or "gpus" in d for d in directives):
            directives.append(f"--gres=gpu:{jq.gpus}")
    kw["job_extra_directives"] = directives
    kw["worker_extra_args"] = worker_args
    prologue = list(jq.job_script_prologue)
    # The stage's thread caps also for anything the worker itself imports.
    prologue += [f"export OMP_NUM_THREADS={threads} MKL_NUM_THREADS={threads}"]
    # The runner's Dask settings, for workers that read their config in their own job.
    prologue += ["export " + " ".join(f"{k}={v}" for k, v in dask_environment().items())]
    kw["job_script_prologue"] = prologue
    return kw


def jobqueue_cluster(choice: ClusterChoice):
    """The dask-jobqueue cluster object of ``choice`` (starts its scheduler, submits nothing)."""
    import dask_jobqueue

    cls = getattr(dask_jobqueue, JOBQUEUE_CLASSES[choice.kind])
    try:
        return cls(silence_logs="error", **jobqueue_kwargs(choice.kind, choice.jobqueue, choice.threads))
    except ValueError as err:  # e.g. cores/memory neither in the profile nor in Dask's config
        raise LatentgeoError(f"cluster.jobqueue: {err}") from None


def connect(address: str, timeout: float):
    """A client of the scheduler at ``address``; a clear error when nothing answers in ``timeout`` s."""
    from distributed import Client

    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError) as err:
        raise LatentgeoError(f"no Dask scheduler answers at {address} within {timeout:g} s "
                             f"({type(err).__name__})") from None


def usable_gpu_groups(choice: ClusterChoice) -> ClusterChoice:
    """``choice`` with GPU requests dropped where they cannot be met: a local machine with fewer
    GPUs than workers (each worker pins one GPU) runs those stages on whatever device they pick.
    Jobqueue workers offer GPUs from the profile; a user's scheduler is trusted to offer them."""
    if choice.kind == "local" and choice.gpu_groups and local_gpu_count() < choice.workers:
        return replace(choice, gpu_groups=frozenset())
    return choice


def open_client(choice: ClusterChoice, *, connect_timeout: float = 20.0,
                dask_config: dict[str, object] | None = None):
    """Start the cluster of ``choice`` and return ``(client, cluster)``; cluster is None for an
    address (a user's scheduler is not ours to close). The clusters it starts get ``dask_config``
    (default :data:`RUNNER_DASK_CONFIG`; ``{}``: Dask's own settings)."""
    import dask
    import distributed  # noqa: F401 - see below

    if choice.kind == "address":
        return connect(choice.address, connect_timeout), None
    if choice.kind in JOBQUEUE_CLASSES:
        import dask_jobqueue  # noqa: F401 - see below
    # Read when the scheduler, nannies and workers are created (local workers get the config
    # from their nanny), so it need not outlive the start. The packages above are imported first:
    # importing one adds its default settings to Dask's config, and leaving `config.set` restores
    # the config as it was on entry, which would take those defaults away again.
    with dask.config.set(RUNNER_DASK_CONFIG if dask_config is None else dask_config):
        return _start_cluster(choice)


def _start_cluster(choice: ClusterChoice):
    from distributed import Client, LocalCluster

    if choice.kind == "local":
        resources = {"GPU": 1} if choice.gpu_groups else None
        cluster = LocalCluster(n_workers=choice.workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR, resources=resources)
        client = Client(cluster)
        client.run(ignore_sigint)  # Ctrl-C is the client's to handle (see ignore_sigint)
        return client, cluster
    check_submit_command(choice.kind)
    cluster = jobqueue_cluster(choice)
    cluster.scale(jobs=choice.workers)
    return Client(cluster), cluster


def check_submit_command(kind: str) -> None:
    """Refuse a batch backend whose submit command (sbatch, qsub, bsub) is not on the PATH: the
    jobs would fail to submit in the background and the run would wait for workers forever."""
    import dask_jobqueue

    command = getattr(dask_jobqueue, JOBQUEUE_CLASSES[kind]).job_cls.submit_command
    if shutil.which(command) is None:
        raise LatentgeoError(f"--cluster {kind}: `{command}` is not on the PATH; run on a {kind} "
                             "login node, or give a scheduler address instead")
