"""Fail fast, and clearly, when something needs the Hugging Face hub and there is no network.

Without this check ``transformers``/``datasets`` either fail with a long traceback (offline mode)
or hang for ~20 s retrying. We probe once, with a short timeout, and raise :class:`OfflineError`.
"""

from __future__ import annotations

import functools
import os
import socket

from latentgeo.errors import OfflineError

HUB_HOST = "huggingface.co"
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def offline_flag_set() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARS)


@functools.lru_cache(maxsize=1)
def _hub_reachable(timeout_s: float = 3.0) -> bool:
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


def require_hub(what: str) -> None:
    """Raise :class:`OfflineError` naming ``what`` unless the hub can be reached."""
    if offline_flag_set():
        raise OfflineError(
            f"{what} must be downloaded from the Hugging Face hub, but offline mode is set "
            f"({'/'.join(OFFLINE_VARS)}). Unset it with network access, or use a packaged model "
            "(e.g. minilm-l6) or a local folder."
        )
    if not _hub_reachable():
        raise OfflineError(
            f"{what} must be downloaded from the Hugging Face hub, but {HUB_HOST} cannot be "
            "reached (no network). The embedded default profile runs offline on packaged models "
            "and corpora; the paper profile needs network access."
        )
