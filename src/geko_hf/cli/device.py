"""The command line's device policy: bf16 where it is fast, `use_cpu` when there is no GPU.

`geko-hf train` and `geko-hf sft` set these as parser defaults (the user's flags still win); the console
names the precision chosen. torch is imported only when asked.
"""

from __future__ import annotations


def device_defaults() -> dict:
    """bf16 where it is fast. HF refuses bf16 on a machine without GPU unless use_cpu=True, so set that too."""
    import torch

    on_cpu = not torch.cuda.is_available() and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available())
    return {"bf16": bf16_supported(), "use_cpu": on_cpu}


def bf16_supported() -> bool:
    """bf16 by default where it is fast: CUDA with bf16, or a CPU with AVX512-BF16/AMX (autocast halves the
    step time of MiniLM/SmolLM2 on such CPUs; elsewhere CPU bf16 is emulated and slower than fp32)."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return False
    cpu = getattr(torch, "cpu", None)
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(cpu, probe, None)  # private probes: absent in some torch builds -> fp32
        try:
            if fn is not None and fn():
                return True
        except Exception:  # pragma: no cover - a probe that fails means "unknown": stay in fp32
            pass
    return False
