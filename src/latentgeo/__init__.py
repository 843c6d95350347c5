"""latentgeo: latent-space geometry, translation and stitching of transformer encoders.

The package holds all logic of the repository; notebooks under ``notebooks/`` call it and
tell the story. See README.md for the pipeline and ``latentgeo --help`` for the command line.
"""

__version__ = "0.1.0"
