"""Pinned reference tables: manifest checks, local and HTTP fetching, sha256 before any write.

Every file here is a stand-in the tests write themselves; the network path is served by a local
HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import subprocess
import threading
from functools import partial
from pathlib import Path

import pytest

from latentgeo.cli import main
from latentgeo.errors import LatentgeoError
from latentgeo.analysis.references import (
    BASE_URL_ENV,
    get_references,
    load_manifest,
    verify_references,
)

REPOSITORY = "someone/tables"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = {
    "small": ("results/metric files/small_metrics.csv", b",x,new_average\nm1,1.0,0.5\n"),
    "alternative": ("results/metric files/alt_metrics.csv", b",x,glue_average,model\na,2.0,0.7,a\n"),
}


def write_manifest(path: Path, files: dict = FILES, commit: str = COMMIT) -> Path:
    tables = [
        {"role": role, "path": rel, "sha256": hashlib.sha256(data).hexdigest(), "rows": 1}
        for role, (rel, data) in files.items()
    ]
    path.write_text(json.dumps({"repository": REPOSITORY, "commit": commit, "tables": tables}))
    return path


def write_checkout(root: Path, files: dict = FILES) -> Path:
    for rel, data in files.values():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture
def manifest(tmp_path) -> Path:
    return write_manifest(tmp_path / "manifest.json")


def test_manifest_of_the_repository_is_valid():
    m = load_manifest(Path(__file__).resolve().parents[1] / "references" / "manifolds.json")
    assert m.repository == "amarbut/manifolds"
    assert m.commit == "7cec37817a182f64aed7cec71760c78a07236655"
    assert [t.role for t in m.tables] == ["bert-small", "bert-base", "roberta", "alternative"]
    assert [t.rows for t in m.tables] == [128, 7, 36, 13]
    assert m.url(m.table("alternative")) == (
        "https://raw.githubusercontent.com/amarbut/manifolds/7cec37817a182f64aed7cec71760c78a07236655/"
        "results/metric%20files/alt_model_metrics.csv"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(commit="abc"), "commit 'abc' is not 40 lowercase hex digits"),
        (lambda d: d["tables"][0].update(sha256="XYZ"), "sha256 of .* is not 64 lowercase hex"),
        (lambda d: d["tables"][1].update(role="small"), "roles must be unique"),
        (lambda d: d["tables"][0].update(path="../escape.csv"), "must be relative"),
        (lambda d: d.pop("tables"), "lacks a field"),
        (lambda d: d.update(repository="no-slash"), "is not owner/name"),
    ],
)
def test_bad_manifests_are_refused(tmp_path, manifest, edit, message):
    data = json.loads(manifest.read_text())
    edit(data)
    manifest.write_text(json.dumps(data))
    with pytest.raises(LatentgeoError, match=message):
        load_manifest(manifest)


@pytest.mark.parametrize("layout", ["checkout", "flat"])
def test_get_from_a_local_folder_writes_verified_files(tmp_path, manifest, layout):
    source = tmp_path / "src"
    if layout == "checkout":
        write_checkout(source)
    else:
        source.mkdir()
        for rel, data in FILES.values():
            (source / Path(rel).name).write_bytes(data)
    out = tmp_path / "out"
    report = get_references(load_manifest(manifest), out, source_dir=source)
    assert sorted(report.written) == ["alt_metrics.csv", "small_metrics.csv"] and report.kept == ()
    assert (out / "small_metrics.csv").read_bytes() == FILES["small"][1]
    assert sorted(p.name for p in out.iterdir()) == ["alt_metrics.csv", "small_metrics.csv"]  # no temporaries
    # A second call keeps what is there and verified, and fetches nothing.
    again = get_references(load_manifest(manifest), out, source_dir=tmp_path / "nowhere-needed")
    assert again.written == () and len(again.kept) == 2
    paths = verify_references(load_manifest(manifest), out)
    assert paths == {"small": out / "small_metrics.csv", "alternative": out / "alt_metrics.csv"}


def test_get_from_a_git_directory_without_work_tree(tmp_path):
    work = write_checkout(tmp_path / "work")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "tables"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    manifest = load_manifest(write_manifest(tmp_path / "m.json", commit=commit))
    report = get_references(manifest, tmp_path / "out", source_dir=bare)
    assert len(report.written) == 2
    assert (tmp_path / "out" / "alt_metrics.csv").read_bytes() == FILES["alternative"][1]


def test_a_local_sha_mismatch_writes_nothing(tmp_path, manifest):
    source = write_checkout(tmp_path / "src")
    (source / FILES["alternative"][0]).write_bytes(b"tampered\n")
    out = tmp_path / "out"
    with pytest.raises(LatentgeoError) as info:
        get_references(load_manifest(manifest), out, source_dir=source)
    message = str(info.value)
    assert "alt_metrics.csv" in message
    assert hashlib.sha256(b"tampered\n").hexdigest() in message
    assert hashlib.sha256(FILES["alternative"][1]).hexdigest() in message
    assert not out.exists() or not any(out.iterdir())


def test_a_missing_local_file_is_named(tmp_path, manifest):
    source = write_checkout(tmp_path / "src")
    (source / FILES["small"][0]).unlink()
    with pytest.raises(LatentgeoError, match="small_metrics.csv: found neither"):
        get_references(load_manifest(manifest), tmp_path / "out", source_dir=source)


# ------------------------------------------------------------------------------ over HTTP


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve tmp_path/www on 127.0.0.1 at a free port; yields (base_url, www root)."""
    for name in ("no_proxy", "NO_PROXY"):  # a proxy from the environment must not intercept
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    www = tmp_path / "www"
    www.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_get_over_http_quotes_the_path_and_checks_hashes(tmp_path, manifest, server):
    base_url, www = server
    write_checkout(www / REPOSITORY / COMMIT)  # "results/metric files/…": a space in the path
    out = tmp_path / "out"
    report = get_references(load_manifest(manifest), out, base_url=base_url)
    assert len(report.written) == 2
    assert (out / "small_metrics.csv").read_bytes() == FILES["small"][1]


def test_http_sha_mismatch_is_refused_before_anything_is_written(tmp_path, manifest, server):
    base_url, www = server
    root = write_checkout(www / REPOSITORY / COMMIT)
    (root / FILES["alternative"][0]).write_bytes(b"not the published table\n")
    out = tmp_path / "out"
    with pytest.raises(LatentgeoError) as info:
        get_references(load_manifest(manifest), out, base_url=base_url)
    assert "alt_metrics.csv" in str(info.value) and "does not match" in str(info.value)
    assert hashlib.sha256(b"not the published table\n").hexdigest() in str(info.value)
    # small_metrics.csv came first and verified, but nothing is written unless all verify.
    assert not out.exists() or not any(out.iterdir())


def test_http_errors_name_the_url(tmp_path, manifest, server, monkeypatch):
    base_url, _ = server  # serves nothing: 404
    monkeypatch.setenv(BASE_URL_ENV, base_url)
    with pytest.raises(LatentgeoError, match=r"cannot fetch http://127\.0\.0\.1:\d+/someone/tables/.*HTTP 404"):
        get_references(load_manifest(manifest), tmp_path / "out")


def test_existing_file_with_another_hash_needs_overwrite(tmp_path, manifest):
    source = write_checkout(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "small_metrics.csv").write_bytes(b"stale\n")
    with pytest.raises(LatentgeoError, match="exists with another sha256"):
        get_references(load_manifest(manifest), out, source_dir=source)
    assert (out / "small_metrics.csv").read_bytes() == b"stale\n"
    with pytest.raises(LatentgeoError, match="does not match the manifest"):
        verify_references(load_manifest(manifest), out)
    get_references(load_manifest(manifest), out, source_dir=source, overwrite=True)
    assert (out / "small_metrics.csv").read_bytes() == FILES["small"][1]


def test_verify_names_a_missing_file_and_how_to_get_it(tmp_path, manifest):
    with pytest.raises(LatentgeoError, match="small_metrics.csv is missing; get the published tables with"):
        verify_references(load_manifest(manifest), tmp_path / "empty")


def test_cli_get_and_verify(tmp_path, manifest, server, capsys):
    base_url, www = server
    write_checkout(www / REPOSITORY / COMMIT)
    out = tmp_path / "out"
    assert main(["references", "get", "--manifest", str(manifest), "--out", str(out),
                 "--base-url", base_url]) == 0
    assert "wrote 2" in capsys.readouterr().out
    assert main(["references", "verify", "--manifest", str(manifest), "--out", str(out)]) == 0
    assert "2 tables match" in capsys.readouterr().out
    (out / "alt_metrics.csv").write_bytes(b"changed\n")
    assert main(["references", "verify", "--manifest", str(manifest), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "alt_metrics.csv" in err and "does not match" in err and "Traceback" not in err
