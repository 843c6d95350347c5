"""Atomic outputs and deterministic JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from latentgeo import io
from latentgeo.errors import LatentgeoError


def test_atomic_output_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with io.atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with io.atomic_output(target, directory=True) as tmp:
        (tmp / "a.txt").write_text("a")
        assert not target.exists()
    assert (target / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert target.stat().st_mode & 0o755 == 0o755  # not mkdtemp's private 0700


def test_atomic_file_gets_ordinary_mode(tmp_path):
    path = io.write_json(tmp_path / "x.json", {"a": 1})
    assert path.stat().st_mode & 0o644 == 0o644


def test_json_is_deterministic_and_plain(tmp_path):
    obj = {"b": np.float32(0.5), "a": [np.int64(3), float("nan")], "c": np.arange(2)}
    text = io.dumps_json(obj)
    assert text == io.dumps_json(dict(reversed(list(obj.items()))))
    assert json.loads(text) == {"a": [3, None], "b": 0.5, "c": [0, 1]}


def test_check_output_path(tmp_path):
    (tmp_path / "empty").mkdir()
    assert io.check_output_path(tmp_path / "empty") == tmp_path / "empty"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(LatentgeoError, match="already exists"):
        io.check_output_path(tmp_path / "full")
    assert io.check_output_path(tmp_path / "full", overwrite=True)


def test_read_sequences_text_and_jsonl(tmp_path):
    txt = tmp_path / "s.txt"
    txt.write_text("one\n\n two \n")
    assert io.read_sequences(txt) == ["one", " two "]
    jl = tmp_path / "s.jsonl"
    jl.write_text('{"text": "a"}\n{"text": "b"}\n')
    assert io.read_sequences(jl) == ["a", "b"]
    jl.write_text('{"txt": "a"}\n')
    with pytest.raises(LatentgeoError, match="'text'"):
        io.read_sequences(jl)
    (tmp_path / "e.txt").write_text("\n")
    with pytest.raises(LatentgeoError, match="no sequences"):
        io.read_sequences(tmp_path / "e.txt")
    with pytest.raises(LatentgeoError, match="not found"):
        io.read_sequences(tmp_path / "missing.txt")


def test_file_sha256_matches_hashlib_on_multi_block_file(tmp_path):
    import hashlib

    from latentgeo.io import file_sha256

    path = tmp_path / "blob.bin"
    payload = np.random.default_rng(0).bytes((1 << 20) * 2 + 17)  # crosses two block boundaries
    path.write_bytes(payload)
    assert file_sha256(path) == hashlib.sha256(payload).hexdigest()
