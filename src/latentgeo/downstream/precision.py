"""Numeric precision of fine-tuning: the allowed values and a check of the hardware for bf16."""

from __future__ import annotations

import warnings

from latentgeo.errors import LatentgeoError

# Deferred to the functions that use them, so that importing this module stays light: torch.

PRECISIONS = ("fp32", "bf16")


def native_bf16_cpu() -> bool | None:
    """Whether this CPU has native bfloat16 dot products (AVX512-BF16 or AMX); None: unknown.

    The probes are private torch functions (``torch.cpu._is_avx512_bf16_supported``, present since
    torch 2.1), hence the fallback to "unknown" rather than a guess.
    """
    import torch

    probes = [getattr(torch.cpu, name, None)
              for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    answers = [bool(probe()) for probe in probes if probe is not None]
    return any(answers) if answers else None


def check_precision_supported(precision: str) -> None:
    """Refuse ``bf16`` on a GPU without bfloat16; warn when a CPU would only emulate it.

    Called before any data or model is loaded. On a CPU, emulated bfloat16 gives the same kind of
    result but runs slower than float32, so it is a warning, not an error.
    """
    if precision != "bf16":
        return
    import torch

    if torch.cuda.is_available():
        if not torch.cuda.is_bf16_supported():
            raise LatentgeoError(
                f"precision bf16: GPU {torch.cuda.get_device_name()} has no bfloat16 support; "
                "set finetune.precision: fp32 (or --precision fp32)"
            )
    elif native_bf16_cpu() is False:
        warnings.warn(
            "precision bf16: this CPU has no native bfloat16 dot products (AVX512-BF16 or AMX), "
            "so bfloat16 is emulated and slower than float32 here; set finetune.precision: fp32 "
            "(or --precision fp32) for speed",
            stacklevel=2,
        )
