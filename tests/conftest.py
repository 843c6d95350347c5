"""Shared test set-up: never touch the network, keep torch to the machine's cores."""

from __future__ import annotations

import os

# Set before transformers/datasets are imported anywhere: tests must never reach a hub.
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
