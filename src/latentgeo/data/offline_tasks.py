"""The offline GLUE-style suite, derived from packaged corpora (``data/tasks/offline/``).

GLUE cannot be had offline, so three tasks of different kinds stand in, each with a fixed,
seeded split, balanced labels and no text shared between train and validation:

* ``bbc-topic`` (SST-2-like single text, 5 classes): BBC News headline + lead paragraph → topic.
  Classes are downsampled to the smallest (386 articles); split by article.
* ``wiki-acceptability`` (CoLA-like, Matthews correlation): a real Wikipedia sentence (label 1) or
  a sentence with its interior words shuffled (label 0): word order is the only signal, so a
  bag-of-words model is at chance and the task measures what the encoder knows of syntax.
  (Swapping only two words, tried first, left the base model near chance after the default
  profile's short fine-tuning, MCC ≈ 0.04: no range for the study.) Split by page, so a
  sentence and its corruption never straddle the split; each source sentence is used once.
* ``wiki-adjacency`` (MRPC-like pair task, mean of accuracy and F1): two consecutive sentences
  of a page (label 1) or a sentence and one from another page of the same split (label 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from latentgeo.data.corpus import document_sentences
from latentgeo.data.sources import BBC_CLASSES, Document
from latentgeo.data.text import normalise

VALIDATION_FRACTION = 0.2
BBC_LEAD_WORDS = 80
MAX_TRAIN = 3000
MAX_VALIDATION = 600
WIKI_MIN_WORDS = 8
WIKI_MAX_WORDS = 40

Split = dict[str, list[dict]]


def _split_indices(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(n)
    n_val = int(round(n * VALIDATION_FRACTION))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _shuffled(rows: list[dict], rng: np.random.Generator) -> list[dict]:
    return [rows[i] for i in rng.permutation(len(rows))]


def bbc_topic(bbc: dict[str, list[Document]], seed: int) -> Split:
    """Balanced 5-way topic classification of BBC News headline + lead."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    per_class_texts: list[list[str]] = []
    for cls in BBC_CLASSES:
        texts = []
        for doc in bbc[cls]:
            words = " ".join((doc.title + ".",) + doc.paragraphs).split()
            text = normalise(" ".join(words[:BBC_LEAD_WORDS]))
            if text not in seen:  # the BBC set holds a few duplicate articles
                seen.add(text)
                texts.append(text)
        per_class_texts.append(texts)
    per_class = min(len(t) for t in per_class_texts)
    splits: Split = {"train": [], "validation": []}
    for label, texts in enumerate(per_class_texts):
        keep = np.sort(rng.permutation(len(texts))[:per_class])
        texts = [texts[i] for i in keep]
        train, val = _split_indices(len(texts), rng)
        splits["train"] += [{"text": texts[i], "label": label} for i in train]
        splits["validation"] += [{"text": texts[i], "label": label} for i in val]
    return {k: _shuffled(v, rng) for k, v in splits.items()}


def _page_split(pages: Sequence[Document], rng: np.random.Generator) -> dict[str, list[Document]]:
    train, val = _split_indices(len(pages), rng)
    return {"train": [pages[i] for i in train], "validation": [pages[i] for i in val]}


def _wiki_sentences(doc: Document) -> list[str]:
    return [s for s in document_sentences(doc) if len(s.split()) <= WIKI_MAX_WORDS]


def shuffle_interior_words(sentence: str, rng: np.random.Generator) -> str | None:
    """The sentence with its interior words in a new seeded order (first and last word kept,
    so capitalisation and final punctuation give nothing away); None if no new order exists."""
    words = sentence.split()
    interior = words[1:-1]
    if len({w.lower() for w in interior}) < 2:
        return None
    for _ in range(20):
        shuffled = [interior[i] for i in rng.permutation(len(interior))]
        if [w.lower() for w in shuffled] != [w.lower() for w in interior]:
            return " ".join([words[0], *shuffled, words[-1]])
    return None


def wiki_acceptability(pages: Sequence[Document], seed: int) -> Split:
    """Original (1) vs. interior-shuffled (0) sentences, balanced, split by page."""
    rng = np.random.default_rng(seed)
    out: Split = {}
    seen: set[str] = set()
    for split, docs in _page_split(pages, rng).items():
        sentences = []
        for doc in docs:
            for s in _wiki_sentences(doc):
                if s not in seen:
                    seen.add(s)
                    sentences.append(s)
        sentences = [sentences[i] for i in rng.permutation(len(sentences))]
        n = min(len(sentences), MAX_TRAIN if split == "train" else MAX_VALIDATION)
        n -= n % 2
        rows = []
        for k, s in enumerate(sentences[:n]):
            corrupted = shuffle_interior_words(s, rng) if k % 2 else None
            if k % 2 and corrupted is not None:
                rows.append({"sentence": corrupted, "label": 0})
            elif k % 2 == 0:
                rows.append({"sentence": s, "label": 1})
        # Keep exact balance even if a sentence could not be corrupted.
        n_pos = sum(r["label"] for r in rows)
        n_neg = len(rows) - n_pos
        pos = [r for r in rows if r["label"] == 1][: min(n_pos, n_neg)]
        neg = [r for r in rows if r["label"] == 0][: min(n_pos, n_neg)]
        out[split] = _shuffled(pos + neg, rng)
    return out


def wiki_adjacency(pages: Sequence[Document], seed: int) -> Split:
    """Adjacent (1) vs. unrelated (0) sentence pairs, balanced, split by page."""
    rng = np.random.default_rng(seed)
    out: Split = {}
    for split, docs in _page_split(pages, rng).items():
        per_page = [_wiki_sentences(doc) for doc in docs]
        positives = []
        for p, sents in enumerate(per_page):
            for k in range(0, len(sents) - 1, 2):  # disjoint pairs: each sentence used once
                positives.append((p, sents[k], sents[k + 1]))
        positives = [positives[i] for i in rng.permutation(len(positives))]
        n = min(len(positives), (MAX_TRAIN if split == "train" else MAX_VALIDATION) // 2 * 2)
        half = n // 2
        rows = [{"sentence1": a, "sentence2": b, "label": 1} for _, a, b in positives[:half]]
        donors = [q for q, sents in enumerate(per_page) if sents]
        for p, a, _ in positives[half : 2 * half]:
            other = donors[rng.integers(len(donors))]
            if other == p:  # any page but this one
                other = donors[(donors.index(p) + 1) % len(donors)]
            b = per_page[other][rng.integers(len(per_page[other]))]
            rows.append({"sentence1": a, "sentence2": b, "label": 0})
        out[split] = _shuffled(rows, rng)
    return out
