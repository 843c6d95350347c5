"""The sequence pool for latent sampling (``data/corpus/sequences.jsonl``).

The paper sampled 5,000 sequences of Penn Treebank + WikiText-2 (its own sample is the
``paper-sequences`` source, written as given by :func:`records_as_given`). Offline, the Wikipedia excerpt
(encyclopaedic prose, like WikiText-2) and the Lee news articles (newswire, like the Wall Street
Journal text of PTB) stand in. Sentences are cleaned of markup, kept when 8–60 words long,
deduplicated, and put in a seeded random order so that any prefix of the file (a profile's
``n_sequences``) mixes both sources.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from latentgeo.data.sources import Document
from latentgeo.data.text import is_clean_sentence, split_sentences, word_count

MIN_WORDS = 8
MAX_WORDS = 60


def document_sentences(doc: Document, *, strict: bool = True) -> list[str]:
    """Clean sentences of one document, in order.

    ``strict`` applies the prose filter (capitalised, terminal punctuation, no markup debris);
    pre-tokenised hub corpora (PTB is lower-case without punctuation) use the length filter only.
    """
    out = []
    for para in doc.paragraphs:
        for sentence in split_sentences(para) if strict else [para]:
            if strict:
                ok = is_clean_sentence(sentence, MIN_WORDS, MAX_WORDS)
            else:
                ok = MIN_WORDS <= word_count(sentence) <= MAX_WORDS
            if ok:
                out.append(sentence)
    return out


def build_corpus(docs: Iterable[Document], seed: int, *, strict: bool = True) -> list[dict]:
    """Deduplicated sentence records ``{"id", "source", "text"}`` in a seeded random order."""
    seen: set[str] = set()
    records = []
    for doc in docs:
        for k, sentence in enumerate(document_sentences(doc, strict=strict)):
            if sentence in seen:
                continue
            seen.add(sentence)
            records.append({"id": f"{doc.source}:{doc.doc_id}:{k}", "source": doc.source, "text": sentence})
    order = np.random.default_rng(seed).permutation(len(records))
    return [records[i] for i in order]


def records_as_given(texts: Iterable[str], source: str) -> list[dict]:
    """Records ``{"id": "<source>:<i>", "source", "text"}`` of ``texts`` in their order, the
    texts untouched: no cleaning, length filter, deduplication or reordering.

    For a sample someone else drew (the paper's 5,000 sequences), which must reach the models
    exactly as it was used. ``i`` is zero-padded to a fixed width so ids sort in file order.
    """
    texts = list(texts)
    width = len(str(max(len(texts) - 1, 0)))
    return [{"id": f"{source}:{i:0{width}d}", "source": source, "text": t} for i, t in enumerate(texts)]
