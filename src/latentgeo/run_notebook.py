"""papermill's command line, started in a fraction of the time: ``python -m latentgeo.run_notebook``.

Every DVC stage executes its notebook through papermill, so papermill's start-up is paid once per
stage (about 70 times in the default run). Two thirds of it are imports no stage uses: papermill's
I/O layer tries the cloud back-ends (``gcsfs``, ``pyarrow.fs`` for HDFS, PyGitHub), and nbformat's
``jsonschema`` compiles a Lark grammar for RFC 3987 IRIs (``rfc3987_syntax``) that only its
``iri`` format checker needs; notebook validation itself uses ``fastjsonschema``. Marking those
modules absent before papermill is imported makes each optional import fail at once, which
papermill and jsonschema already handle (the back-ends report "missing dependency" if a path ever
names them; IRI strings go unchecked). Importing papermill drops from ~2 s to ~0.4 s on 2 cores.

The launcher also sets :data:`KERNEL_MALLOC_ENV` for the kernels it starts (see there): glibc's
allocator then keeps freed memory for reuse instead of handing large blocks back to the system,
which each fine-tuning step otherwise pays for in page faults. And it silences, in the kernels
only, tqdm's warning that ipywidgets is missing (:data:`KERNEL_WARNING_FILTER`) and the kernel's
start-up warning about its unencrypted local connection and the error it may log when interrupted
at shutdown (:data:`KERNEL_ARGUMENTS`).

The arguments are papermill's own (``python -m latentgeo.run_notebook --help``); only local paths
are supported, which is all ``dvc.yaml`` passes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping

# Deferred to the functions that use them, so that importing this module stays light: papermill.

# Optional imports of papermill and jsonschema that no stage needs (see the module docstring).
UNUSED_OPTIONAL_MODULES = ("gcsfs", "pyarrow", "github", "rfc3987_syntax")


# glibc malloc settings inherited by the notebook kernels. By default an allocation above a
# threshold (128 KiB, raised as blocks are freed, to at most 32 MiB) is a fresh mmap, handed back
# to the system when freed: a training step frees and allocates the 47 MB gradient of minilm's
# word embeddings (30522 × 384 float32) and so faults in zeroed pages every step (~80 ms a step).
# Served from the heap and never trimmed, the memory is reused: fine-tuning trains 8-10 % faster
# (bbc-topic, two alternating pairs of fresh runs), results bit-identical. The same remedy as
# PyTorch's CPU tuning guide's advice to preload jemalloc/tcmalloc, without the extra library;
# other C libraries ignore these variables. A value already set is kept.
KERNEL_MALLOC_ENV = {
    "MALLOC_MMAP_MAX_": "0",  # no mmap-backed allocations: large blocks come from the heap
    "MALLOC_TRIM_THRESHOLD_": str(64 << 30),  # 64 GiB: the heap's free top is never given back
}


# tqdm.auto, imported by transformers and by our measures' progress bars, looks for ipywidgets
# inside a kernel and, finding none, warns "IProgress not found" and falls back to text bars. Text
# bars are what an executed notebook should hold (widget bars are saved as widget state, which
# no static viewer shows), so the environment leaves ipywidgets out and the kernels are told to
# ignore that one warning (Python reads PYTHONWARNINGS at start-up; the message is matched at its
# start). Without it every executed notebook began with the warning.
KERNEL_WARNING_FILTER = "ignore:IProgress not found"


def set_kernel_warning_filter(environ: MutableMapping[str, str] = os.environ) -> str:
    """Append :data:`KERNEL_WARNING_FILTER` to ``environ``'s PYTHONWARNINGS, keeping the filters
    already there (Python applies the last matching one, so it wins for this message only);
    returns the new value."""
    present = [f for f in environ.get("PYTHONWARNINGS", "").split(",") if f]
    if KERNEL_WARNING_FILTER not in present:
        present.append(KERNEL_WARNING_FILTER)
    environ["PYTHONWARNINGS"] = ",".join(present)
    return environ["PYTHONWARNINGS"]


# Command-line arguments of every kernel the launcher starts (nbclient's ``extra_arguments``).
# ipykernel 7 logs at each start that the kernel "is running over TCP without encryption": it
# talks to papermill on the loopback interface, every message signed with the connection file's
# key, as Jupyter kernels always have, and the warning came once per stage into the output of
# `dvc repro`. And jupyter_client interrupts (SIGINT) every kernel it shuts down, before asking it
# to stop: when the signal lands while the kernel is still finishing its last message, ipykernel
# logs "ERROR | KeyboardInterrupt caught in kernel." although nothing failed (seen on a loaded CI
# machine, a race). So the kernel application's own log is kept to critical messages only. What
# the notebook's code raises, warns or prints goes to its cells' outputs, not to this log, and a
# failing cell still fails the stage; a kernel that dies is reported by papermill itself.
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=CRITICAL",)


def use_kernel_arguments(arguments: tuple[str, ...] = KERNEL_ARGUMENTS) -> None:
    """Make papermill's default engine (nbclient) start each kernel with ``arguments`` appended to
    its command line. Affects this process's papermill only."""
    from papermill.engines import NBClientEngine, papermill_engines

    class KernelArgumentsEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            kwargs.setdefault("extra_arguments", list(arguments))
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register(None, KernelArgumentsEngine)  # the engine papermill's CLI uses
    papermill_engines.register("nbclient", KernelArgumentsEngine)


def set_kernel_malloc_env(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Put :data:`KERNEL_MALLOC_ENV` into ``environ`` where unset; returns what it set."""
    added = {k: v for k, v in KERNEL_MALLOC_ENV.items() if k not in environ}
    environ.update(added)
    return added


def block_unused_imports(modules: tuple[str, ...] = UNUSED_OPTIONAL_MODULES) -> list[str]:
    """Mark ``modules`` absent (``import`` then raises ImportError) unless already imported.

    Returns the names it blocked. A ``None`` entry in ``sys.modules`` is Python's documented way
    to make an import fail; it affects this process only (the notebook's kernel is another one).
    """
    blocked = [name for name in modules if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    return blocked


def main(argv: list[str] | None = None) -> None:
    """Run papermill's CLI (``argv``: its arguments; default ``sys.argv[1:]``)."""
    block_unused_imports()
    set_kernel_malloc_env()  # read by glibc when each kernel process starts
    set_kernel_warning_filter()  # read by Python when each kernel process starts
    use_kernel_arguments()
    from papermill.cli import papermill

    papermill.main(args=sys.argv[1:] if argv is None else argv, prog_name="python -m latentgeo.run_notebook")


if __name__ == "__main__":  # pragma: no cover
    main()
