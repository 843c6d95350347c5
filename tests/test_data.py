"""data/: deterministic build, the offline suite's promises, the hub path with a stand-in loader."""

from __future__ import annotations

import collections
import shutil
from pathlib import Path

import pytest

from latentgeo import io
from latentgeo.cli import main
from latentgeo.data import build, corpus, offline_tasks, sources
from latentgeo.errors import LatentgeoError, OfflineError
from latentgeo.downstream.tasks import OFFLINE_TASKS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "data"
    assert main(["data", "build", "--out", str(out)]) == 0
    return out


@pytest.mark.slow  # builds data/ (and runs DVC)
def test_build_matches_data_dvc(built, tmp_path, monkeypatch):
    """A fresh build hashes to what data.dvc records, so `dvc status data.dvc` is clean.

    The recorded hash was made by earlier builds in other processes: matching it is also the test
    that the build is deterministic. DVC runs in this process (its Python API, what its `commit`
    and `status` commands call), saving a start-up per command.
    """
    from dvc.repo import Repo

    repo = tmp_path / "repo"
    repo.mkdir()
    monkeypatch.chdir(repo)  # DVC resolves a stage's paths against the working directory
    with Repo.init(str(repo), no_scm=True) as dvc_repo:
        shutil.copy(ROOT / "data.dvc", repo / "data.dvc")
        shutil.copytree(built, repo / "data")
        dvc_repo.commit("data.dvc", force=True)
        assert (repo / "data.dvc").read_bytes() == (ROOT / "data.dvc").read_bytes(), (
            "the build hashes differently from data.dvc")
        assert dvc_repo.status(["data.dvc"]) == {}
        (repo / "data" / "corpus" / "sequences.jsonl").write_text("tampered\n")
        changed = dvc_repo.status(["data.dvc"])
    assert "data.dvc" in changed and "modified" in str(changed["data.dvc"]), changed


@pytest.mark.slow  # builds data/
def test_manifest_lists_every_file_with_its_hash(built):
    manifest = io.read_json(built / "manifest.json")
    assert manifest["source"] == "packaged"
    assert manifest["corpus_sources"] == ["lee", "wikipedia"]
    for rel, info in manifest["files"].items():
        assert len(io.read_jsonl(built / rel)) == info["records"]
        assert io.file_sha256(built / rel) == info["sha256"]


@pytest.mark.slow  # builds data/
def test_corpus_is_clean_deduplicated_and_mixed(built):
    rows = io.read_jsonl(built / "corpus" / "sequences.jsonl")
    texts = [r["text"] for r in rows]
    assert len(rows) > 10_000
    assert len(set(texts)) == len(texts)
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) >= corpus.MIN_WORDS and max(lengths) <= corpus.MAX_WORDS
    assert not any(ch in t for t in texts for ch in "[]{}|<>=")
    assert not any("''" in t for t in texts)
    first = collections.Counter(r["source"] for r in rows[:400])
    assert first["wikipedia"] > 100 and first["lee"] > 10  # any prefix mixes both sources


@pytest.mark.slow  # builds data/
@pytest.mark.parametrize("task", sorted(OFFLINE_TASKS))
def test_offline_tasks_are_balanced_disjoint_and_well_formed(built, task):
    spec = OFFLINE_TASKS[task]
    splits = {s: io.read_jsonl(built / "tasks" / "offline" / task / f"{s}.jsonl") for s in ("train", "validation")}
    for rows in splits.values():
        assert rows
        counts = collections.Counter(r["label"] for r in rows)
        assert sorted(counts) == list(range(spec.num_labels))
        assert max(counts.values()) - min(counts.values()) <= 1 if task != "bbc-topic" else True
        for r in rows:
            assert set(r) == {*spec.text_fields, "label"}
    if task == "bbc-topic":  # balanced before the per-class 80/20 split
        counts = collections.Counter(r["label"] for s in splits.values() for r in s)
        assert len(set(counts.values())) == 1
    train_texts = {r[f] for r in splits["train"] for f in spec.text_fields}
    val_texts = {r[f] for r in splits["validation"] for f in spec.text_fields}
    if task == "wiki-acceptability":  # no source sentence on both sides, corrupted or not
        norm = lambda t: tuple(sorted(t.split()))  # noqa: E731
        assert not {norm(t) for t in train_texts} & {norm(t) for t in val_texts}
    assert not train_texts & val_texts


def test_shuffle_interior_words_keeps_the_words_and_the_ends():
    import numpy as np

    s = "The quick brown fox jumps over the lazy dog."
    out = offline_tasks.shuffle_interior_words(s, np.random.default_rng(0))
    assert out != s and sorted(out.split()) == sorted(s.split())
    assert out.split()[0] == "The" and out.split()[-1] == "dog."
    assert out == offline_tasks.shuffle_interior_words(s, np.random.default_rng(0))  # seeded
    for impossible in ("One two three.", "A the THE end."):  # one interior word / one up to case
        assert offline_tasks.shuffle_interior_words(impossible, np.random.default_rng(0)) is None


def test_build_refuses_a_folder_with_content(tmp_path, capsys):
    (tmp_path / "x").write_text("x")
    assert main(["data", "build", "--out", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["x"]


class _StandIn:
    """Plays datasets.load_dataset for PTB and WikiText-2 with hand-written rows."""

    def __init__(self):
        self.calls = []

    def __call__(self, name, config=None, split=None):
        self.calls.append((name, config, split))
        if name == "ptb_text_only":
            return [{"sentence": "the company said its profit rose N % in the third quarter <unk> ok"},
                    {"sentence": "too short"}]
        if name == "wikitext":
            return [{"text": " = Heading = \n"}, {"text": ""},
                    {"text": " The river rises in the hills and flows for forty miles to the sea . \n"}]
        raise AssertionError(name)


def test_hub_source_goes_through_the_loader(tmp_path, monkeypatch):
    # The offline suite is the same for every corpus source (the packaged tests check it); building
    # it here would cost ~8 s for nothing this test asserts.
    monkeypatch.setattr(build, "_offline_suite", lambda seed: {})
    loader = _StandIn()
    manifest = build.build_data(tmp_path / "d", source="hub", loader=loader)
    assert ("ptb_text_only", None, "train") in loader.calls
    assert ("wikitext", "wikitext-2-raw-v1", "train") in loader.calls
    rows = io.read_jsonl(tmp_path / "d" / "corpus" / "sequences.jsonl")
    assert sorted(r["source"] for r in rows) == ["ptb", "wikitext-2"]
    assert any("[UNK]" in r["text"] for r in rows)
    assert manifest["source"] == "hub"


def test_hub_source_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(OfflineError, match="Penn Treebank"):
        sources.hub_corpus_documents()


def test_unknown_source_is_refused(tmp_path):
    with pytest.raises(LatentgeoError, match="unknown data source"):
        build.build_data(tmp_path / "d", source="ftp")
