"""GEKO for TRL's `SFTTrainer`: change the class name, keep everything else.

    trainer = GEKOSFTTrainer(model, args=GEKOSFTConfig(..., geko_preset="balanced"), train_dataset=ds,
                             peft_config=LoraConfig(...))   # or lora_config=, the seed's spelling

`GEKOSFTConfig` is TRL's `SFTConfig` plus the `geko_` fields (as `GEKOTrainingArguments` is for
`TrainingArguments`). `GEKOSFTTrainer = GEKOMixin + SFTTrainer`: TRL prepares the data (chat templates,
completion-only and assistant-only masks, padding-free batches) and computes the loss exactly as it does alone;
GEKO adds the sample selection and reads per-sample statistics off the same forward pass (TRL's fused LM head:
per-token log-probabilities of the trained tokens only, so prompt and masked tokens never count).

Packing is refused: TRL packs once, at init, keeping only `input_ids`/`labels`, so a row mixes documents whose
identity is lost, and the sampler could only pick packed rows, not samples. `padding_free=True` gives the same
padding-free compute with one sample per sequence, and GEKO splits its statistics per sequence.

trl is an optional extra (`pip install geko_hf[trl]`); `import geko_hf` works without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from transformers import TrainingArguments

from .callback import GEKOCallback
from .mixin import GEKOMixin
from .preflight import refuse_packing
from .training_args import GEKOArguments, geko_config_from_args

INSTALL_HINT = "pip install geko_hf[trl]"

try:
    from trl import SFTConfig, SFTTrainer
except ImportError as e:  # pragma: no cover - exercised in a subprocess test without trl
    raise ImportError(f"GEKOSFTTrainer and GEKOSFTConfig need TRL, which is not installed: {INSTALL_HINT}") from e


@dataclass
class GEKOSFTConfig(SFTConfig, GEKOArguments):
    """TRL's `SFTConfig` + GEKO. Every `GEKOConfig` field is here as `geko_<name>` (CLI `--geko_<name>`)."""

    def __post_init__(self):
        super().__post_init__()
        self.geko_config = geko_config_from_args(self)  # validates; errors name the geko_ field


class GEKOSFTTrainer(GEKOMixin, SFTTrainer):
    """TRL's `SFTTrainer` with GEKO. Takes every `SFTTrainer` argument (peft_config, formatting_func, ...).

    Extra arguments, as `GEKOTrainer`'s: `geko_config` (a GEKOConfig; default: from GEKOSFTConfig's geko_ fields,
    else GEKOConfig()), `compute_correctness(outputs, batch) -> BoolTensor[B]`, `compute_confidence(outputs, batch)
    -> Tensor[B]`, `compute_sample_loss(outputs, batch) -> Tensor[B]` (outputs are TRL's fused-head outputs: per-token
    `log_probs`, `is_top1`, `entropy`, `label_mask`),
    `lora_config` (a peft config: handed to TRL as `peft_config`, then the parameter counts are printed), and
    `observe_only=True`: train exactly as SFTTrainer does and only record the data map (policy "observe").
    """

    def __init__(self, model, args=None, *more, geko_config=None, compute_correctness=None,
                 compute_confidence=None, compute_sample_loss=None, lora_config=None, callbacks=None,
                 observe_only=False, **kwargs):
        refuse_packing(args)  # before TRL packs the data at init
        if isinstance(args, TrainingArguments) and not isinstance(args, SFTConfig):
            # TRL converts foreign arguments to a plain SFTConfig, which has no geko_ fields: convert them here.
            values = args.to_dict()
            values["hub_token"] = args.hub_token  # to_dict hides it
            args = GEKOSFTConfig(**values)
        if lora_config is not None:
            if kwargs.get("peft_config") is not None:
                raise ValueError(
                    "Both `lora_config` and `peft_config` were given. They are the same thing (the seed's name and "
                    "TRL's): pass one."
                )
            kwargs["peft_config"] = lora_config  # TRL wraps the model (added chat tokens, ZeRO-3, QLoRA dtypes)
        callback = GEKOCallback.bound_to(self, geko_config, observe_only=observe_only,
                                         compute_correctness=compute_correctness,
                                         compute_confidence=compute_confidence, compute_sample_loss=compute_sample_loss)
        super().__init__(model, args, *more, callbacks=[*(callbacks or []), callback], **kwargs)
        if lora_config is not None:
            from .lora import print_lora_summary

            print_lora_summary(self.model)
