"""Remote storage through real servers: OpenSSH's sshd and a static HTTP server on loopback.

The promise under test is the README's: `git clone`, pull, and `dvc repro` finds everything up to
date. A *clone* here is a copy of what git would hand over (tracked and committed files, no DVC
cache, no outputs), committed into a new repository. Pulls go through `latentgeo remote pull`, the
command `make pull` runs. The round trip runs on a tiny DVC repository made here (always) and on
the smoke pipeline's outputs (the `smoke_repo` fixture, marked `pipeline`).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline_utils import ROOT, VENV, dvc, git, run, tracked_files

pytestmark = pytest.mark.slow  # DVC remotes through real servers: seconds per test

LATENTGEO = str(VENV / "bin" / "latentgeo")


# --- helpers -----------------------------------------------------------------------------------

def free_port() -> int:
    """A loopback port nobody listens on (closed again at once: also serves as 'unreachable')."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clone_without_outputs(source: Path, dest: Path) -> Path:
    """What `git clone` of ``source`` (with its current state committed) hands a new user."""
    for rel in tracked_files(source):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, target)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "-c", "user.email=test@example.invalid", "-c", "user.name=test", "commit", "-qm", "clone")
    assert not (dest / ".dvc" / "cache").exists() and not (dest / ".dvc" / "config.local").exists()
    return dest


def use_remote(repo: Path, name: str, url: str, *, default: bool = True, keyfile: Path | None = None,
               verify: bool = True, via_cli: bool = False) -> None:
    """Configure a remote in ``.dvc/config.local`` (never committed), as a user with credentials would.

    ``via_cli`` runs the documented `dvc remote add/modify --local` commands; otherwise the same
    lines are appended directly (three DVC start-ups fewer per test).
    """
    if via_cli:
        dvc(repo, "remote", "add", "--local", "--force", *(["--default"] if default else []), name, url)
        if keyfile is not None:
            dvc(repo, "remote", "modify", "--local", name, "keyfile", str(keyfile))
        dvc(repo, "remote", "modify", "--local", name, "verify", str(verify).lower())
        return
    local = repo / ".dvc" / "config.local"
    lines = [f"['remote \"{name}\"']", f"    url = {url}", f"    verify = {str(verify).lower()}"]
    if keyfile is not None:
        lines.append(f"    keyfile = {keyfile}")
    text = local.read_text() if local.exists() else ""
    assert f'"{name}"' not in text, f"remote {name} already configured"
    core = ["[core]", f"    remote = {name}"] if default else []
    local.write_text(text + "\n".join(core + lines) + "\n")


def remote_pull(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return run(repo, LATENTGEO, "remote", "pull", *args, check=False, timeout=300)


def object_path(store: Path, content: bytes) -> Path:
    """Where DVC 3 keeps a file's content on a remote: files/md5/<2 hex>/<30 hex>."""
    digest = hashlib.md5(content).hexdigest()
    return store / "files" / "md5" / digest[:2] / digest[2:]


def workspace_files(repo: Path) -> dict[str, bytes]:
    """Every file outside .git and .dvc, by relative path."""
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*"))
            if p.is_file() and p.relative_to(repo).parts[0] not in (".git", ".dvc")}


def assert_nothing_pulled(clone: Path, before: dict[str, bytes]) -> None:
    """The workspace is exactly what it was: no output, no partial file, no temporary file."""
    assert workspace_files(clone) == before


# --- a tiny DVC repository ---------------------------------------------------------------------

A_TXT, B_TXT = b"alpha " * 1000, b"beta " * 2000


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    """git + DVC: a `dvc add`ed folder raw/ (two files) and one stage raw/ → out.txt, reproduced."""
    repo = tmp_path_factory.mktemp("tiny") / "repo"
    (repo / "raw").mkdir(parents=True)
    (repo / "raw" / "a.txt").write_bytes(A_TXT)
    (repo / "raw" / "b.txt").write_bytes(B_TXT)
    git(repo, "init", "-q")
    dvc(repo, "init", "-q")
    dvc(repo, "add", "-q", "raw")
    dvc(repo, "stage", "add", "-q", "-n", "count", "-d", "raw", "-o", "out.txt",
        "cat raw/a.txt raw/b.txt | wc -c > out.txt")
    dvc(repo, "repro", "-q")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=test@example.invalid", "-c", "user.name=test", "commit", "-qm", "tiny")
    return repo


@pytest.fixture(scope="module")
def folder_store(tiny_repo, tmp_path_factory) -> Path:
    """A local-folder remote holding every object of ``tiny_repo`` (the project default's kind)."""
    store = tmp_path_factory.mktemp("folder-store") / "store"
    use_remote(tiny_repo, "folder", str(store), default=False)
    dvc(tiny_repo, "push", "-q", "-r", "folder")
    return store


def copy_store(store: Path, dest: Path) -> Path:
    """A private copy of a remote, so a test may damage it."""
    return Path(shutil.copytree(store, dest))


# --- OpenSSH's sshd on loopback ----------------------------------------------------------------

@dataclass(frozen=True)
class SSHServer:
    port: int
    user: str
    client_key: Path

    def url(self, path: Path) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"


def _find_sshd() -> str:
    found = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd")
                                          if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.skip("OpenSSH sshd is not installed (Debian: apt-get install openssh-server; "
                    ".ci/run installs it as root), so the SSH remote tests cannot run here")
    if os.geteuid() == 0 and not Path("/run/sshd").is_dir():
        # sshd running as root insists on its privilege-separation folder (the package's service
        # creates it at boot; containers have none).
        try:
            Path("/run/sshd").mkdir(mode=0o755, parents=True)
        except OSError as err:
            pytest.skip(f"sshd needs /run/sshd, which cannot be created here ({err})")
    return found


def _keypair(path: Path) -> Path:
    import asyncssh  # comes with dvc-ssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(str(path))
    key.write_public_key(str(path) + ".pub")
    path.chmod(0o600)
    return path


def _sshd_config(folder: Path, port: int, user: str, authorized: Path, host_key: Path) -> Path:
    config = folder / f"sshd_config_{port}"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host_key}",
        f"AuthorizedKeysFile {authorized}", f"PidFile {folder / 'sshd.pid'}", f"AllowUsers {user}",
        "PubkeyAuthentication yes", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
        "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp", "",
    ]))
    return config


def _wait_listening(proc: subprocess.Popen, port: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """`sshd -D -e -f CONFIG` (foreground: the daemonising form resets connections), own keys."""
    binary = _find_sshd()
    import getpass

    folder = tmp_path_factory.mktemp("sshd")
    user = getpass.getuser()
    host_key = _keypair(folder / "host_ed25519")
    client_key = _keypair(folder / "client_ed25519")
    authorized = folder / "authorized_keys"
    shutil.copy(str(client_key) + ".pub", authorized)
    checked = subprocess.run([binary, "-t", "-f", str(_sshd_config(folder, 22222, user, authorized, host_key))],
                             capture_output=True, text=True)
    if checked.returncode != 0:
        pytest.skip(f"sshd refuses to run here: {checked.stderr.strip()}")
    log = folder / "sshd.log"
    for _attempt in range(3):  # a free port can be taken between asking and binding
        port = free_port()
        config = _sshd_config(folder, port, user, authorized, host_key)
        with open(log, "w") as out:
            proc = subprocess.Popen([binary, "-D", "-e", "-f", str(config)], stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        if _wait_listening(proc, port):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail(f"sshd did not start; its log:\n{log.read_text()}")
    try:
        yield SSHServer(port=port, user=user, client_key=client_key)
    finally:
        # sshd and the per-connection children it forked share the new session's process group.
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


# --- a read-only static HTTP server ------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    methods: list[str]

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def send_head(self):
        self.methods.append(self.command)
        return super().send_head()

    def do_POST(self):  # a static server: anything but reading is refused
        self.methods.append(self.command)
        self.send_error(405, "read-only")

    do_PUT = do_DELETE = do_POST


@pytest.fixture
def http_server():
    """Serve a folder over HTTP on loopback (python's http.server); yields (start(folder) -> url, methods)."""
    servers, methods = [], []

    def start(folder: Path) -> str:
        handler = type("Handler", (_QuietHandler,), {"methods": methods})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 functools.partial(handler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start, methods
    for server in servers:
        server.shutdown()
        server.server_close()


# --- the round trip ----------------------------------------------------------------------------

def _round_trip(source: Path, store: Path, server: SSHServer, clone: Path) -> None:
    url = server.url(store)
    # The documented `dvc remote add/modify --local` commands are run once, by the clone's user.
    use_remote(source, "rt-ssh", url, default=False, keyfile=server.client_key)
    pushed = dvc(source, "push", "-r", "rt-ssh", timeout=600)
    assert "pushed" in pushed.stdout or "Everything is up to date" in pushed.stdout, pushed.stdout
    assert any(store.rglob("*")), "nothing reached the SSH remote"

    clone_without_outputs(source, clone)
    lock = (clone / "dvc.lock").read_text()
    use_remote(clone, "rt-ssh", url, keyfile=server.client_key, via_cli=True)
    assert "up to date" not in dvc(clone, "status").stdout  # outputs are missing before the pull

    pulled = remote_pull(clone)
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout.startswith("pulled from remote storage 'rt-ssh'"), pulled.stdout

    stamps = {p: p.stat().st_mtime_ns for p in clone.rglob("*") if p.is_file() and not {".git", ".dvc"} & set(p.parts)}
    repro = dvc(clone, "repro", timeout=600)
    assert "Running stage" not in repro.stdout, repro.stdout
    assert "up to date" in dvc(clone, "status").stdout
    assert "in sync" in dvc(clone, "status", "--cloud").stdout
    assert (clone / "dvc.lock").read_text() == lock
    changed = [p for p, t in stamps.items() if p.exists() and p.stat().st_mtime_ns != t]
    assert not changed, f"`dvc repro` rewrote {changed[:5]}"


@pytest.mark.covered_by("test_ssh_round_trip_smoke_pipeline")
def test_ssh_round_trip_tiny_repo(tiny_repo, sshd, tmp_path):
    """The round trip on its own, when the smoke pipeline's is not selected (`-m "not pipeline"`,
    `-k`); in a session that runs that one, the same steps are checked there on real outputs."""
    _round_trip(tiny_repo, tmp_path / "ssh-store", sshd, tmp_path / "clone")
    assert (tmp_path / "clone" / "raw" / "a.txt").read_bytes() == A_TXT
    assert (tmp_path / "clone" / "out.txt").read_text().strip() == str(len(A_TXT) + len(B_TXT))


@pytest.mark.pipeline
@pytest.mark.slow
def test_ssh_round_trip_smoke_pipeline(smoke_repo, sshd, tmp_path):
    """The real promise: every output of the smoke pipeline survives push → clone → pull → repro."""
    _round_trip(smoke_repo, tmp_path / "ssh-store", sshd, tmp_path / "clone")
    for rel in ("data/manifest.json", "results/table.csv"):
        assert (tmp_path / "clone" / rel).read_bytes() == (smoke_repo / rel).read_bytes(), rel


# --- integrity ---------------------------------------------------------------------------------

def test_corrupted_object_is_refused_not_checked_out(tiny_repo, folder_store, tmp_path):
    store = copy_store(folder_store, tmp_path / "store")
    damaged = object_path(store, A_TXT)
    assert damaged.is_file()
    corrupt = b"not what was pushed\n"
    damaged.chmod(0o644)
    damaged.write_bytes(corrupt)
    clone = clone_without_outputs(tiny_repo, tmp_path / "clone")
    use_remote(clone, "storage", str(store), verify=True)

    pulled = remote_pull(clone)
    assert pulled.returncode == 2
    assert "corrupted" in pulled.stderr and damaged.parent.name + damaged.name[:6] in pulled.stderr
    assert "not checked out: raw" in pulled.stderr and "Traceback" not in pulled.stderr
    # The corrupted bytes are nowhere in the workspace or the cache; the intact output is there.
    assert not (clone / "raw").exists()
    assert all(corrupt not in data for data in workspace_files(clone).values())
    assert all(p.read_bytes() != corrupt for p in (clone / ".dvc" / "cache").rglob("*") if p.is_file())
    assert (clone / "out.txt").read_text().strip() == str(len(A_TXT) + len(B_TXT))


# --- a read-only HTTP remote -------------------------------------------------------------------

def test_read_only_http_remote_pull(tiny_repo, folder_store, tmp_path, http_server):
    start, methods = http_server
    url = start(folder_store)
    clone = clone_without_outputs(tiny_repo, tmp_path / "clone")
    use_remote(clone, "public", url)

    pulled = remote_pull(clone)
    assert pulled.returncode == 0 and pulled.stdout.startswith("pulled from remote storage 'public'"), pulled
    assert (clone / "raw" / "b.txt").read_bytes() == B_TXT
    repro = dvc(clone, "repro")
    assert "Running stage" not in repro.stdout
    assert "in sync" in dvc(clone, "status", "--cloud").stdout
    assert methods and set(methods) <= {"GET", "HEAD"}, methods

    (clone / "raw" / "c.txt").write_text("new\n")  # a change to share: the static server refuses it
    dvc(clone, "add", "-q", "raw")
    refused = dvc(clone, "push", check=False)
    assert refused.returncode != 0 and not object_path(folder_store, b"new\n").exists()


# --- faults: clear messages, nothing half-written --------------------------------------------

@pytest.mark.parametrize("kind", ["ssh", "http"])
def test_unreachable_remote_falls_back_with_one_line(kind, tiny_repo, tmp_path):
    clone = clone_without_outputs(tiny_repo, tmp_path / "clone")
    port = free_port()
    url = f"ssh://nobody@127.0.0.1:{port}/store" if kind == "ssh" else f"http://127.0.0.1:{port}"
    use_remote(clone, "storage", url)
    before = workspace_files(clone)

    pulled = remote_pull(clone)
    assert pulled.returncode == 0, pulled.stderr
    lines = pulled.stdout.strip().splitlines()
    assert len(lines) == 1 and f"remote storage 'storage' ({url}) unreachable" in lines[0], lines
    assert "refused" in lines[0].lower() or "connect call failed" in lines[0].lower(), lines[0]
    assert "make repro" in lines[0] and "Traceback" not in pulled.stderr
    assert_nothing_pulled(clone, before)

    if kind == "ssh":
        check = run(clone, LATENTGEO, "remote", "check", check=False)
        assert check.returncode == 2 and "unreachable" in check.stderr and "Traceback" not in check.stderr


def test_silent_remote_is_given_up_on(tiny_repo, tmp_path):
    """A server that accepts connections and never answers (DVC alone would wait 30 min)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except (TimeoutError, OSError):
                continue

    threading.Thread(target=hold, daemon=True).start()
    try:
        clone = clone_without_outputs(tiny_repo, tmp_path / "clone")
        use_remote(clone, "storage", f"ssh://nobody@127.0.0.1:{listener.getsockname()[1]}/store")
        before = workspace_files(clone)
        start = time.monotonic()
        pulled = remote_pull(clone, "--probe-timeout", "2")
        assert time.monotonic() - start < 20
        assert pulled.returncode == 0 and "unreachable (no answer within 2 s)" in pulled.stdout, pulled
        assert_nothing_pulled(clone, before)
    finally:
        stop.set()
        for conn in accepted:
            conn.close()
        listener.close()


def test_wrong_credentials_are_named(tiny_repo, sshd, tmp_path):
    stranger = _keypair(tmp_path / "stranger_ed25519")  # not in authorized_keys
    clone = clone_without_outputs(tiny_repo, tmp_path / "clone")
    use_remote(clone, "storage", sshd.url(tmp_path / "store"), keyfile=stranger)
    before = workspace_files(clone)
    pulled = remote_pull(clone)
    assert pulled.returncode == 0
    assert "unreachable (Permission denied" in pulled.stdout, pulled.stdout
    assert_nothing_pulled(clone, before)


@pytest.mark.parametrize("kind", ["folder", "http"])
def test_missing_objects_pull_the_rest_whole(kind, tiny_repo, folder_store, tmp_path, http_server):
    """Over HTTP, DVC 3.67 itself crashes ("unexpected error") on a missing object: still one line."""
    store = copy_store(folder_store, tmp_path / "store")
    object_path(store, B_TXT).unlink()
    clone = clone_without_outputs(tiny_repo, tmp_path / "clone")
    # The folder variant also leaves verification off: the pull says that it should be on.
    use_remote(clone, "storage", str(store) if kind == "folder" else http_server[0](store),
               verify=kind != "folder")

    pulled = remote_pull(clone)
    assert pulled.returncode == 0, pulled.stderr
    assert ("does not verify downloads" in pulled.stderr) == (kind == "folder"), pulled.stderr
    assert "lacks 1 object(s) for raw; pulled what it has" in pulled.stdout, pulled.stdout
    # raw/ is all or nothing: a.txt arrived, but raw/ is not checked out half-complete.
    assert not (clone / "raw").exists()
    assert (clone / "out.txt").read_text().strip() == str(len(A_TXT) + len(B_TXT))
    status = dvc(clone, "status", "--json")
    assert '"count"' in status.stdout  # `dvc repro` knows raw/ is missing


def test_no_remote_or_a_broken_configuration(tiny_repo, tmp_path):
    clone = clone_without_outputs(tiny_repo, tmp_path / "clone")
    pulled = remote_pull(clone)
    assert pulled.returncode == 0 and "no default DVC remote is configured" in pulled.stdout
    (clone / ".dvc" / "config.local").write_text("[core]\n    remote = ghost\n")
    pulled = remote_pull(clone)
    assert pulled.returncode == 0 and "Traceback" not in pulled.stderr
    assert "DVC configuration is unusable" in pulled.stdout and "remote" in pulled.stdout, pulled.stdout


# --- the project's own configuration ----------------------------------------------------------

def test_project_default_remote_is_verified_and_credentials_stay_out_of_git():
    from dvc.config import Config

    config = Config.load_file(str(ROOT / ".dvc" / "config"))  # the committed file only, no config.local
    name = config["core"]["remote"]
    remote = config["remote"][name]
    assert remote["verify"] == "true"
    # A relative URL in .dvc/config is relative to .dvc/: this one is a folder beside the clone.
    assert (ROOT / ".dvc" / remote["url"]).resolve().parent == ROOT.parent
    ignored = subprocess.run(["git", "check-ignore", "-q", ".dvc/config.local"], cwd=ROOT)
    assert ignored.returncode == 0, ".dvc/config.local must be git-ignored (it holds credentials)"
    assert "latentgeo remote pull" in (ROOT / "Makefile").read_text()
