"""Per-sample gradient weights without touching the loss: a backward hook on the model's output tensor.

Why a hook: the trainer's loss must stay the parent's own (bit-equal to the stock Trainer / SFTTrainer, the
same `num_items_in_batch` normalisation, the same logged value). A batch's loss is a sum of per-sample terms,
each a function of that sample's rows (or, padding-free, positions) of the output, so multiplying the gradient
flowing into those rows by w_i is exactly the gradient of sum_i w_i * loss_i, whatever the loss function.
The logged loss stays the unweighted one, comparable with a stock run.
"""

from __future__ import annotations

import torch

from .stats import output_field, segment_index


def output_tensor(outputs):
    """The tensor the loss is computed from: `logits`, or TRL's fused head's per-token `log_probs`."""
    for name in ("logits", "log_probs"):
        t = output_field(outputs, name)
        if t is not None:
            return t, name
    return None, None


def weight_sample_gradients(outputs, inputs: dict, weights, num_samples: int) -> None:
    """Scale the gradient of sample i's part of the output by weights[i] during the coming backward."""
    t, name = output_tensor(outputs)
    if t is None:
        raise ValueError(
            "light_sample_rate < 1 weights samples' gradients through the model's `logits` (or TRL's fused "
            "`log_probs`), but the model returned neither. Set light_sample_rate=1.0 for this model."
        )
    if not t.requires_grad:
        return
    # float32 weights, applied to a float32 copy of the gradient: in bf16 1/0.3 would be 3.328, not 3.333
    w = torch.as_tensor(weights, dtype=torch.float32, device=t.device)
    if num_samples == t.shape[0]:  # one sample per row
        scale = w.view(-1, *([1] * (t.dim() - 1)))
    else:  # padding-free: several samples in a row, told apart by position_ids
        # position j's loss is its prediction of label j + 1, and the label's sample is the one it trains
        segments = segment_index(inputs, num_samples)[:, 1:]
        if name == "logits":  # logits keep all T positions (the last predicts nothing); the fused head drops it
            segments = torch.cat([segments, segments[:, -1:]], dim=1)
        scale = w[segments.clamp(0, num_samples - 1)]  # trailing pad positions carry no loss
        scale = scale.view(*scale.shape, *([1] * (t.dim() - scale.dim())))
    t.register_hook(lambda grad: None if grad is None else (grad.float() * scale).to(grad.dtype))  # None: DDP's
    # unused-parameter pass
