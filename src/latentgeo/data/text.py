"""Text cleaning and sentence splitting, shared by every corpus.

Plain regular expressions, no models: the output must be byte-identical on every machine.
"""

from __future__ import annotations

import re
import unicodedata

_WS = re.compile(r"\s+")
# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket), followed by
# whitespace and an upper-case letter, digit or opening quote. Abbreviations such as "U.S. Army"
# are split wrongly now and then; the length and markup filters below drop most such fragments.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z0-9])")
_WIKI_QUOTES = re.compile(r"'{2,}")
_MARKUP = re.compile(r"[\[\]{}|<>=*#_~^\\]|https?:|&[a-z]+;")
# Traces of removed templates: "( )", "(, ", " ,", "()" and friends.
_DEBRIS = re.compile(r"\(\s*[,;]?\s*\)|\(\s*[,;]|\s[,;.:]|,,|\s{2,}")
_WORD = re.compile(r"\S+")


def normalise(text: str) -> str:
    """NFC-normalise and collapse runs of whitespace to single spaces."""
    return _WS.sub(" ", unicodedata.normalize("NFC", text)).strip()


def split_sentences(paragraph: str) -> list[str]:
    """Split one paragraph of prose into sentences (normalised)."""
    paragraph = normalise(paragraph)
    if not paragraph:
        return []
    return [s.strip() for s in _SENTENCE_END.split(paragraph) if s.strip()]


def wiki_paragraphs(filtered: str) -> list[str]:
    """Prose paragraphs of a page already passed through gensim's ``filter_wiki``.

    Headings (``== ... ==``), list items, table rows and indented lines are dropped, and the
    bold/italic quote markup is removed.
    """
    paragraphs = []
    for block in filtered.split("\n"):
        block = block.strip()
        if not block or block[0] in "=*#:;|!{}<" or block.startswith("'''''"):
            continue
        paragraphs.append(_WIKI_QUOTES.sub("", block))
    return paragraphs


def word_count(sentence: str) -> int:
    return len(_WORD.findall(sentence))


def is_clean_sentence(sentence: str, min_words: int, max_words: int) -> bool:
    """A prose sentence of ``min_words``..``max_words`` words without markup or template debris."""
    n = word_count(sentence)
    if not (min_words <= n <= max_words):
        return False
    if sentence[-1] not in ".!?" or not (sentence[0].isupper() or sentence[0].isdigit()):
        return False
    if _MARKUP.search(sentence) or _DEBRIS.search(sentence):
        return False
    if sentence.count("(") != sentence.count(")") or sentence.count('"') % 2:
        return False
    return True
