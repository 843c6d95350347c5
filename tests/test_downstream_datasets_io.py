"""Task data: the GLUE loader on files in GLUE's column layout, the offline-suite reader, checks."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from latentgeo.downstream import datasets_io
from latentgeo.errors import LatentgeoError, OfflineError
from latentgeo.downstream.tasks import get_task

# GLUE's column layout (as ``datasets.load_dataset("nyu-mll/glue", config)`` gives it), our own text.
GLUE_FIXTURES = {
    "cola": {
        "train": [
            {"sentence": "The cat sat on the mat.", "label": 1, "idx": 0},
            {"sentence": "Mat the on sat cat the.", "label": 0, "idx": 1},
            {"sentence": "She reads a book every night.", "label": 1, "idx": 2},
        ],
        "validation": [
            {"sentence": "He walked home slowly.", "label": 1, "idx": 0},
            {"sentence": "Home slowly walked he the.", "label": 0, "idx": 1},
        ],
    },
    "mrpc": {
        "train": [
            {"sentence1": "The firm reported higher profits.", "sentence2": "Profits at the firm rose.",
             "label": 1, "idx": 0},
            {"sentence1": "It rained all day.", "sentence2": "The match was won in extra time.",
             "label": 0, "idx": 1},
        ],
        "validation": [
            {"sentence1": "Prices fell sharply.", "sentence2": "Prices dropped a lot.", "label": 1, "idx": 0},
        ],
    },
    "stsb": {
        "train": [
            {"sentence1": "A man plays a guitar.", "sentence2": "A man is playing guitar.", "label": 4.8, "idx": 0},
            {"sentence1": "A dog runs.", "sentence2": "The stock market closed.", "label": 0.2, "idx": 1},
            {"sentence1": "Two kids play.", "sentence2": "Children are playing.", "label": 3.9, "idx": 2},
            {"sentence1": "A woman cooks.", "sentence2": "A woman sleeps.", "label": 1.1, "idx": 3},
        ],
        "validation": [
            {"sentence1": "A bird sings.", "sentence2": "A bird is singing.", "label": 4.6, "idx": 0},
            {"sentence1": "A car drives.", "sentence2": "The sky is blue.", "label": 0.4, "idx": 1},
            {"sentence1": "A boy swims.", "sentence2": "A child swims.", "label": 3.5, "idx": 2},
        ],
    },
    "mnli": {
        split: [
            {"premise": "A man is eating.", "hypothesis": "Someone eats.", "label": 0, "idx": 0},
            {"premise": "A man is eating.", "hypothesis": "He might be hungry.", "label": 1, "idx": 1},
            {"premise": "A man is eating.", "hypothesis": "Nobody eats.", "label": 2, "idx": 2},
        ]
        for split in ("train", "validation_matched", "validation_mismatched")
    },
}


def write_glue(root: Path, config: str, splits: dict[str, list[dict]]) -> None:
    folder = root / config
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def glue_fixture_loader(root: Path, cache: Path):
    """Stands in for ``datasets.load_dataset`` with the same call and result: a DatasetDict."""
    import datasets

    def load(path: str, name: str):
        assert path == datasets_io.GLUE_HUB_ID
        files = {p.stem: str(p) for p in sorted((root / name).glob("*.jsonl"))}
        return datasets.load_dataset("json", data_files=files, cache_dir=str(cache))

    return load


@pytest.fixture
def glue_root(tmp_path):
    root = tmp_path / "glue"
    for config, splits in GLUE_FIXTURES.items():
        write_glue(root, config, splits)
    return root


@pytest.mark.parametrize("name", ["cola", "mrpc", "stsb", "mnli"])
def test_glue_loader_reads_glue_layout(glue_root, tmp_path, name):
    task = get_task(name, "glue")
    data = datasets_io.load_glue(task, glue_fixture_loader(glue_root, tmp_path / "cache"))
    expected = GLUE_FIXTURES[name]
    assert list(data.validation) == list(task.validation_splits)
    assert data.sizes() == {split: len(rows) for split, rows in expected.items()}
    for ds in [data.train, *data.validation.values()]:
        assert ds.column_names == [*task.text_fields, "label"]  # idx dropped
    assert data.train[0][task.text_fields[0]] == expected["train"][0][task.text_fields[0]]
    np.testing.assert_allclose(data.train["label"], [r["label"] for r in expected["train"]], rtol=1e-6)


def test_glue_loader_refuses_bad_labels_and_missing_splits(glue_root, tmp_path):
    loader = glue_fixture_loader(glue_root, tmp_path / "cache")
    rows = [dict(r) for r in GLUE_FIXTURES["cola"]["train"]]
    rows[1]["label"] = 2
    write_glue(glue_root, "cola", {"train": rows})
    with pytest.raises(LatentgeoError, match=r"GLUE cola/train: record 2: label 2 is out of range; allowed: 0\.\.1"):
        datasets_io.load_glue(get_task("cola"), loader)
    (glue_root / "mrpc" / "validation.jsonl").unlink()
    with pytest.raises(LatentgeoError, match=r"splits \['validation'\] are missing"):
        datasets_io.load_glue(get_task("mrpc"), loader)


def test_glue_without_network_fails_fast():
    # conftest sets HF_*_OFFLINE: the default loader must refuse at once, naming the data set.
    start = time.perf_counter()
    with pytest.raises(OfflineError, match="GLUE task 'cola'.*offline mode"):
        datasets_io.load_glue(get_task("cola"))
    assert time.perf_counter() - start < 2.0


def write_offline(root: Path, task: str, splits: dict[str, list]) -> Path:
    folder = root / task
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def adjacency_rows(n: int) -> list[dict]:
    return [{"sentence1": f"first sentence {i}", "sentence2": f"second sentence {i}", "label": i % 2}
            for i in range(n)]


def test_offline_reader_and_seeded_subsample(tmp_path):
    root = write_offline(tmp_path, "wiki-adjacency",
                         {"train": adjacency_rows(40), "validation": adjacency_rows(10)})
    task = get_task("wiki-adjacency")
    data = datasets_io.read_offline_task(task, root)
    assert data.sizes() == {"train": 40, "validation": 10}
    assert data.train.column_names == ["sentence1", "sentence2", "label"]
    assert data.train["label"][:4] == [0, 1, 0, 1]

    small = datasets_io.subsample(data, 12, 5, seed=3)
    again = datasets_io.subsample(data, 12, 5, seed=3)
    assert small.sizes() == {"train": 12, "validation": 5}
    assert small.train["sentence1"] == again.train["sentence1"]
    assert small.validation["validation"]["sentence1"] == again.validation["validation"]["sentence1"]
    # The scored examples do not depend on the training size.
    other = datasets_io.subsample(data, 30, 5, seed=3)
    assert other.validation["validation"]["sentence1"] == small.validation["validation"]["sentence1"]
    assert datasets_io.subsample(data, None, None, seed=3).sizes() == data.sizes()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda rows: rows[3].update(label=2), r"record 4: label 2 is out of range; allowed: 0\.\.1"),
        (lambda rows: rows[0].update(label=-1), "label -1 is out of range"),
        (lambda rows: rows[2].update(label=True), "not an integer class id"),
        (lambda rows: rows[1].update(label=0.5), "not an integer class id"),
        (lambda rows: rows[5].pop("sentence2"), "record 6 has no field 'sentence2'"),
        (lambda rows: rows[0].update(sentence1=None), "field 'sentence1' is not a string"),
    ],
)
def test_offline_reader_refuses_bad_records(tmp_path, mutate, match):
    rows = adjacency_rows(8)
    mutate(rows)
    root = write_offline(tmp_path, "wiki-adjacency", {"train": rows, "validation": adjacency_rows(4)})
    with pytest.raises(LatentgeoError, match=match) as err:
        datasets_io.read_offline_task(get_task("wiki-adjacency"), root)
    assert "train.jsonl" in str(err.value)


def test_offline_reader_refuses_empty_split_and_missing_files(tmp_path):
    root = write_offline(tmp_path, "wiki-adjacency", {"train": adjacency_rows(8), "validation": []})
    with pytest.raises(LatentgeoError, match="validation.jsonl: the split is empty"):
        datasets_io.read_offline_task(get_task("wiki-adjacency"), root)
    with pytest.raises(LatentgeoError, match="task files not found.*latentgeo data build"):
        datasets_io.read_offline_task(get_task("bbc-topic"), root)
    with pytest.raises(LatentgeoError, match="not an offline-suite task"):
        datasets_io.read_offline_task(get_task("cola"), root)


def test_subsample_indices_are_sorted_unique_and_seeded():
    idx = datasets_io.subsample_indices(100, 10, seed=0)
    assert len(set(idx.tolist())) == 10 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, datasets_io.subsample_indices(100, 10, seed=0))
    assert not np.array_equal(idx, datasets_io.subsample_indices(100, 10, seed=1))
    np.testing.assert_array_equal(datasets_io.subsample_indices(5, 10, seed=0), np.arange(5))
