"""The paper's sequence pickle: read without unpickling, fetched over HTTP, pinned by sha256.

Every pickle here is built by the test itself (``pickle.dumps`` of stand-in strings, or of
hostile objects, which dumping never runs) and served from a local HTTP server on 127.0.0.1.
The paper's own file is not part of this repository.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import pickle
import pickletools
import socket
import threading
from pathlib import Path

import pytest

from latentgeo import io
from latentgeo.cli import main
from latentgeo.data import build, sources
from latentgeo.data.paper_pickle import read_string_collection
from latentgeo.errors import LatentgeoError, OfflineError

# Stand-ins in the style of the paper's lines: lower-cased PTB with "unk", WikiText with case.
LINES = [
    "abc sports was looking for ways to lift unk ratings for monday night football",
    "the river rises in the hills and flows for forty miles to the sea",
    "The Du Fu poems were collected after his death in several editions",
    "a second line about the markets of the north",
]
PICKLE_PATH = f"/{sources.PAPER_COMMIT}/{sources.PAPER_SEQUENCES_PATH}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _RunsOnLoad:
    """Unpickling this would call os.mkdir(path): the reader must refuse it, not run it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _first_foreign_opcode(data: bytes) -> tuple[str, int]:
    """Plain reference: the first opcode a flat list/set of strings does not use, and its byte."""
    plain = {"PROTO", "FRAME", "EMPTY_LIST", "EMPTY_SET", "MARK", "LIST", "SHORT_BINUNICODE",
             "BINUNICODE", "BINUNICODE8", "UNICODE", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE",
             "GET", "BINGET", "LONG_BINGET", "APPEND", "APPENDS", "ADDITEMS", "STOP"}
    for op, _, pos in pickletools.genops(data):
        if op.name not in plain:
            return op.name, pos
    raise AssertionError("no foreign opcode")


# ----------------------------------------------------------------------------- the reader


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_a_list_of_strings_reads_as_pickle_would(protocol):
    lines = LINES + [LINES[1]]  # a list keeps its duplicates; memo gets are used for them
    data = pickle.dumps(lines, protocol=protocol)
    got = read_string_collection(data)
    assert list(got.strings) == pickle.loads(data) == lines
    assert got.container == "list"
    assert got.protocol == (protocol if protocol >= 2 else 0)


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_set_reads_in_file_order_like_the_papers_file(protocol):
    data = pickle.dumps(set(LINES), protocol=protocol)
    got = read_string_collection(data)
    in_file = [arg for op, arg, _ in pickletools.genops(data) if op.name.endswith("UNICODE")]
    assert got.container == "set" and list(got.strings) == in_file
    assert set(got.strings) == pickle.loads(data)


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_set_at_protocol_2_or_3_is_refused_it_is_a_call(protocol):
    data = pickle.dumps(set(LINES), protocol=protocol)
    with pytest.raises(LatentgeoError, match=r"opcode GLOBAL at byte 2 is not allowed"):
        read_string_collection(data)


def test_a_reduce_payload_is_refused_and_never_run(tmp_path):
    target = tmp_path / "made-by-the-pickle"
    for protocol in (2, 4, 5):
        data = pickle.dumps(["fine", _RunsOnLoad(str(target))], protocol=protocol)
        name, pos = _first_foreign_opcode(data)
        assert name in ("GLOBAL", "STACK_GLOBAL")
        with pytest.raises(LatentgeoError, match=rf"opcode {name} at byte {pos} is not allowed"):
            read_string_collection(data, "stand-in.pkl")
        assert not target.exists()


@pytest.mark.parametrize(
    "payload, opcode",
    [
        ([1, 2, 3], "BININT1"),
        (["text", 7], "BININT1"),
        ({"a": "b"}, "EMPTY_DICT"),
        (["text", b"bytes"], "SHORT_BINBYTES"),
        (("a", "b"), "TUPLE2"),
        (["text", 1.5], "BINFLOAT"),
        (None, "NONE"),
    ],
    ids=["ints", "int-in-strings", "dict", "bytes", "tuple", "float", "none"],
)
def test_anything_but_strings_is_refused_naming_opcode_and_position(payload, opcode):
    data = pickle.dumps(payload, protocol=4)
    name, pos = _first_foreign_opcode(data)
    assert name == opcode
    with pytest.raises(LatentgeoError, match=rf"^x\.pkl: opcode {opcode} at byte {pos} is not allowed"):
        read_string_collection(data, "x.pkl")


@pytest.mark.parametrize(
    "payload, message",
    [
        (["a", ["b"]], r"opcode EMPTY_LIST at byte \d+ would create a second or nested container"),
        ("just a string", r"opcode STOP at byte \d+ ends a pickle whose result is not a single list or set"),
        ([], "holds an empty list: no sequences"),
        (["a", "  "], r"opcode SHORT_BINUNICODE at byte \d+ holds a blank string"),
    ],
    ids=["nested", "bare-string", "empty", "blank"],
)
def test_ill_formed_collections_are_refused(payload, message):
    with pytest.raises(LatentgeoError, match=message):
        read_string_collection(pickle.dumps(payload, protocol=4))


def test_a_self_reference_truncation_and_trailing_bytes_are_refused():
    loop: list = ["a"]
    loop.append(loop)
    with pytest.raises(LatentgeoError, match=r"opcode BINGET at byte \d+ refers back to the container"):
        read_string_collection(pickle.dumps(loop, protocol=4))
    whole = pickle.dumps(LINES, protocol=4)
    for cut in (1, len(whole) // 2, len(whole) - 1):
        with pytest.raises(LatentgeoError, match="truncated or malformed"):
            read_string_collection(whole[:cut])
    with pytest.raises(LatentgeoError, match=r"3 bytes follow the STOP opcode"):
        read_string_collection(whole + b"\x80\x04.")
    with pytest.raises(LatentgeoError, match="truncated or malformed"):
        read_string_collection(b"")


# ------------------------------------------------------------------ fetching over HTTP


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture
def server(monkeypatch):
    """A local HTTP server; ``serve(data)`` publishes ``data`` at the pickle's path and returns
    the base URL. Proxies are bypassed for 127.0.0.1."""
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    files: dict[str, bytes] = {}
    handler = type("Handler", (_Files,), {"files": files})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}/amarbut/manifolds"

    def serve(data: bytes) -> str:
        files[f"/amarbut/manifolds{PICKLE_PATH}"] = data
        return base

    yield serve
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_fetch_reads_what_the_server_holds(server, protocol):
    data = pickle.dumps(LINES, protocol=protocol)
    base = server(data)
    got = sources.fetch_paper_sequences(base, expected_sha256=_sha(data))
    assert list(got.texts) == LINES
    assert got.url == f"{base}{PICKLE_PATH}" and got.sha256 == _sha(data) and got.n_bytes == len(data)
    assert (got.container, got.protocol) == ("list", protocol)


def test_fetch_checks_the_hash_before_reading(server, tmp_path):
    target = tmp_path / "made-by-the-pickle"
    hostile = pickle.dumps([_RunsOnLoad(str(target))], protocol=4)
    base = server(hostile)
    with pytest.raises(LatentgeoError, match="does not match the pinned"):
        sources.fetch_paper_sequences(base, expected_sha256=_sha(b"something else"))
    with pytest.raises(LatentgeoError, match="opcode STACK_GLOBAL"):  # right hash, still refused
        sources.fetch_paper_sequences(base, expected_sha256=_sha(hostile))
    assert not target.exists()


def test_the_default_hash_is_the_pinned_one(server):
    data = pickle.dumps(LINES, protocol=4)
    with pytest.raises(LatentgeoError, match=f"does not match the pinned {sources.PAPER_SEQUENCES_SHA256}"):
        sources.fetch_paper_sequences(server(data))


def test_urls_and_refusals_of_the_download(server, monkeypatch):
    assert sources.paper_sequences_url() == (
        "https://raw.githubusercontent.com/amarbut/manifolds/"
        "7cec37817a182f64aed7cec71760c78a07236655/VM_transfer/sample_sequences.pkl")
    monkeypatch.setenv(sources.PAPER_BASE_URL_ENV, "https://mirror.example/m/")
    assert sources.paper_sequences_url().startswith("https://mirror.example/m/7cec378")
    base = server(pickle.dumps(LINES))
    with pytest.raises(LatentgeoError, match="HTTP 404"):
        sources.fetch_paper_sequences(base + "/elsewhere")
    with pytest.raises(LatentgeoError, match="is not http"):
        sources.fetch_paper_sequences("file:///etc")
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(OfflineError, match="need network access"):
        sources.fetch_paper_sequences(f"http://127.0.0.1:{closed}")


# --------------------------------------------------------------------- into data/


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def small_suite(monkeypatch):
    """The offline suite (built from packaged corpora, ~13 s, tested in test_data.py) replaced
    by one row per split: these tests are about the corpus."""
    suite = {"bbc-topic": {"train": [{"text": "a b c", "label": 0}],
                           "validation": [{"text": "d e f", "label": 1}]}}
    monkeypatch.setattr(build, "_offline_suite", lambda seed: suite)


def test_build_writes_the_sequences_as_given(server, small_suite, monkeypatch, tmp_path):
    data = pickle.dumps(set(LINES), protocol=4)
    base = server(data)
    monkeypatch.setattr(sources, "PAPER_SEQUENCES_SHA256", _sha(data))
    out = tmp_path / "data"
    manifest = build.build_data(out, source="paper-sequences", paper_base_url=base)
    in_file = [arg for op, arg, _ in pickletools.genops(data) if op.name.endswith("UNICODE")]
    rows = io.read_jsonl(out / "corpus" / "sequences.jsonl")
    assert [r["text"] for r in rows] == in_file  # untouched: case, length, order
    assert [r["id"] for r in rows] == [f"paper-sequences:{i}" for i in range(len(LINES))]
    assert {r["source"] for r in rows} == {"paper-sequences"}
    assert io.read_sequences(out / "corpus" / "sequences.jsonl") == in_file
    assert manifest["source"] == "paper-sequences"
    assert manifest["corpus_origin"] == {
        "url": sources.paper_sequences_url(sources.PAPER_RAW_BASE_URL),  # not the mirror's
        "repository": "amarbut/manifolds",
        "commit": sources.PAPER_COMMIT, "path": "VM_transfer/sample_sequences.pkl",
        "sha256": _sha(data), "bytes": len(data),
        "pickle": {"container": "set", "protocol": 4, "strings": len(LINES)}}
    assert io.read_json(out / "manifest.json") == manifest
    assert (out / "tasks" / "offline" / "bbc-topic" / "train.jsonl").is_file()  # the offline suite too


@pytest.mark.parametrize("served", ["wrong-hash", "hostile", "truncated"])
def test_build_writes_nothing_when_the_file_is_refused(server, small_suite, monkeypatch, tmp_path, served):
    good = pickle.dumps(LINES, protocol=4)
    data = {"wrong-hash": good + b" ",  # right bytes plus one: another hash
            "hostile": pickle.dumps([_RunsOnLoad(str(tmp_path / "made"))], protocol=4),
            "truncated": good[:-5]}[served]
    base = server(data)
    monkeypatch.setattr(sources, "PAPER_SEQUENCES_SHA256",
                        _sha(good) if served == "wrong-hash" else _sha(data))
    before = _tree(tmp_path)
    with pytest.raises(LatentgeoError):
        build.build_data(tmp_path / "data", source="paper-sequences", paper_base_url=base)
    assert _tree(tmp_path) == before  # no data/, no temporary sibling, nothing run


def test_cli_builds_from_a_mirror_named_in_the_environment(server, small_suite, monkeypatch, tmp_path,
                                                          capsys):
    data = pickle.dumps(LINES, protocol=5)
    monkeypatch.setenv(sources.PAPER_BASE_URL_ENV, server(data))
    monkeypatch.setattr(sources, "PAPER_SEQUENCES_SHA256", _sha(data))
    assert main(["data", "build", "--source", "paper-sequences", "--out", str(tmp_path / "d")]) == 0
    assert f"corpus/sequences.jsonl: {len(LINES)} records" in capsys.readouterr().out
    monkeypatch.setattr(sources, "PAPER_SEQUENCES_SHA256", _sha(b"pinned elsewhere"))
    assert main(["data", "build", "--source", "paper-sequences", "--out", str(tmp_path / "e")]) == 2
    assert "does not match the pinned" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
