"""Which label does a token logit score? Decided from the model, the way `Trainer.compute_loss` decides it.

A causal LM's logit at position t predicts label t + 1 (the loss shifts labels by one); an encoder-decoder's
(decoder labels), a masked LM's and a token classifier's logit at t scores label t. Reading one as the other
scores every token against its neighbour: a BART that gets every token right looks entirely wrong.

transformers makes the same decision for label smoothing: shift exactly when the model's class is a causal-LM
class (`MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`, see `Trainer.compute_loss`). We add the other auto-mappings so that
a known class is never guessed, and the `*ForCausalLM` / `*LMHeadModel` naming convention for custom causal LMs.
"""

from __future__ import annotations


def _unwrap(model):
    """The transformers model under DDP/DataParallel, torch.compile (`OptimizedModule._orig_mod`) and peft wrappers."""
    for _ in range(2):  # DDP around a compiled model, or the other way round
        model = getattr(model, "module", model)
        model = getattr(model, "_orig_mod", model)  # Trainer(torch_compile=True) hands compute_loss the compiled module
    if hasattr(model, "get_base_model") and hasattr(model, "peft_config"):
        model = model.get_base_model()
    return model


def _flat(values):
    for v in values:
        yield from (v if isinstance(v, (tuple, list)) else (v,))


def _names(*mappings) -> set:
    from transformers.models.auto import modeling_auto as auto

    return {name for m in mappings for name in _flat(getattr(auto, m, {}).values())}


# In the causal-LM auto-mapping, yet their own loss scores the logit at t against label t (XLM's XLMPredLayer,
# XLNetLMHeadModel.forward in transformers): XLM is a masked/translation LM, XLNet a permutation LM.
UNSHIFTED_CAUSAL_MAPPED = frozenset({"XLMWithLMHeadModel", "XLNetLMHeadModel"})


def shifts_labels(model) -> bool | None:
    """True: logit t predicts label t + 1; False: logit t scores label t; None: cannot tell (refuse, don't guess)."""
    inner = _unwrap(model)
    name = inner._get_name() if hasattr(inner, "_get_name") else type(inner).__name__
    if name in UNSHIFTED_CAUSAL_MAPPED:
        return False
    if name in _names("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"):
        return True
    if getattr(getattr(inner, "config", None), "is_encoder_decoder", False):
        return False
    if name in _names("MODEL_FOR_MASKED_LM_MAPPING_NAMES", "MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES",
                      "MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES"):
        return False
    if name.endswith(("ForCausalLM", "LMHeadModel")):
        return True
    if name.endswith(("ForMaskedLM", "ForTokenClassification")):
        return False
    return None
