"""Subcommands of the ``latentgeo`` CLI: one module each, exposing ``register(subparsers)``.

Modules import heavy libraries (torch, faiss) inside their handlers, so ``latentgeo --help`` and
``latentgeo params check`` answer in well under a second.
"""
