"""The quantizer kinds of the cell measures: the names a profile and the command line accept.

A leaf apart from the FAISS code (:mod:`.quantizers`), so that the profile schema, which every
stage loads, does not make every stage depend on that code.
"""

from __future__ import annotations

# faiss.ProductQuantizer and faiss.LocalSearchQuantizer (the paper's two), faiss.ResidualQuantizer.
QUANTIZER_KINDS = ("pq", "lsq", "rq")
