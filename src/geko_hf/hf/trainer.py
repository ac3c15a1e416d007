"""`GEKOTrainer`: the stock `transformers.Trainer` plus GEKO (`GEKOMixin + Trainer`, the overrides in mixin.py).

The callback-only path (`Trainer(..., callbacks=[GEKOCallback()])`) mixes the same class into the trainer at
init, so both ways in run literally the same code.
"""

from __future__ import annotations

from transformers import Trainer

from .callback import GEKOCallback
from .mixin import GEKOMixin


class GEKOTrainer(GEKOMixin, Trainer):
    """`transformers.Trainer` with GEKO.

    Extra arguments (the seed's API): `geko_config` (a GEKOConfig; default: from GEKOTrainingArguments'
    geko_ fields, else GEKOConfig()), `compute_correctness(outputs, batch) -> BoolTensor[B]`,
    `compute_confidence(outputs, batch) -> Tensor[B]`, `lora_config` (a peft LoraConfig, applied to the model);
    and `compute_sample_loss(outputs, batch) -> Tensor[B]`: with all three hooks any head works (regression, QA);
    `observe_only=True`: train exactly as `Trainer` does and only record the data map (policy "observe").
    """

    def __init__(self, model=None, args=None, *more, geko_config=None, compute_correctness=None,
                 compute_confidence=None, compute_sample_loss=None, lora_config=None, callbacks=None, observe_only=False,
                 **kwargs):
        callback = GEKOCallback.bound_to(self, geko_config, observe_only=observe_only,
                                         compute_correctness=compute_correctness,
                                         compute_confidence=compute_confidence, compute_sample_loss=compute_sample_loss)
        if lora_config is not None:
            from .lora import apply_lora

            model = apply_lora(model, lora_config)
        super().__init__(model, args, *more, callbacks=[*(callbacks or []), callback], **kwargs)
