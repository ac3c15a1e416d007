"""LoRA, the seed's way: `apply_lora(model, lora_config)` wraps the model with PEFT and prints the parameter counts.

peft is an optional extra (`pip install geko_hf[peft]`): it is imported inside the functions, so `import geko_hf`
works without it. The TRL path (`GEKOSFTTrainer(lora_config=...)`) hands the config to TRL's own `peft_config`
instead of calling `apply_lora`, so TRL's adapter handling (added chat tokens, ZeRO-3, QLoRA dtypes) applies; it
prints the same counts.
"""

from __future__ import annotations

import importlib.util
import os

INSTALL_HINT = "pip install geko_hf[peft]"


def is_peft_available() -> bool:
    """Whether the `peft` package can be imported (checked without importing it)."""
    return importlib.util.find_spec("peft") is not None


def parameter_counts(model) -> tuple[int, int]:
    """(trainable, total) parameters. PEFT's own count when available: it counts 4-bit packed weights correctly."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return int(trainable), int(total)


def lora_summary(model) -> str:
    """The seed's block: `[GEKO] LoRA applied` then trainable (with %), total and frozen parameter counts."""
    trainable, total = parameter_counts(model)
    share = 100.0 * trainable / total if total else 0.0
    return (
        "[GEKO] LoRA applied\n"
        f"  Trainable params : {trainable:,} ({share:.2f}%)\n"
        f"  Total params     : {total:,}\n"
        f"  Frozen params    : {total - trainable:,}"
    )


def print_lora_summary(model) -> None:
    """Print `lora_summary` once per job (rank 0 only: every rank holds the same model)."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(lora_summary(model), flush=True)


def apply_lora(model, lora_config):
    """`peft.get_peft_model(model, lora_config)`, printing the parameter counts; returns the PEFT model.

    Only the adapter weights are trainable afterwards. Any `peft.PeftConfig` works (LoRA is the common one).
    """
    if not is_peft_available():
        raise ImportError(f"lora_config / apply_lora need the `peft` package, which is not installed: {INSTALL_HINT}")
    from peft import PeftConfig, PeftModel, get_peft_model

    if not isinstance(lora_config, PeftConfig):
        raise TypeError(
            f"`lora_config` must be a peft config such as `peft.LoraConfig(...)`, got {type(lora_config).__name__}."
        )
    if isinstance(model, PeftModel):
        raise ValueError(
            "The model already carries a PEFT adapter; applying `lora_config` would stack a second one. Pass the base "
            "model with `lora_config`, or pass the PEFT model without `lora_config`."
        )
    model = get_peft_model(model, lora_config)
    print_lora_summary(model)
    return model
