"""The up-front refusals: what GEKO cannot drive, said when the trainer is built or its data loaded, never deep
inside `train()`: a TRL trainer other than SFTTrainer, TRL packing, an iterable, empty or pre-packed dataset, and
ranks that share a batch. Each error names the setting and the way out.
"""

from __future__ import annotations


def refuse_unsupported_trainer(trainer) -> None:
    """TRL trainers other than SFTTrainer do not train one row per sample on token labels: refuse them by name."""
    for cls in type(trainer).__mro__:
        if cls.__module__.split(".")[0] != "trl":
            continue
        if cls.__name__ == "SFTTrainer":
            refuse_packing(trainer.args)  # the callback path meets the trainer only after TRL packed its data
            return
        raise ValueError(
            f"GEKO does not support TRL's {cls.__name__}: its training rows are not one sample each with token labels "
            "(preference pairs, prompt groups or generated completions), so GEKO could neither score a sample nor "
            "skip it without breaking the method. Train it without GEKOCallback; GEKO supports transformers.Trainer "
            "(and its subclasses such as Seq2SeqTrainer) and TRL's SFTTrainer."
        )


def refuse_packing(args) -> None:
    """TRL packs once, at init, into rows that mix several samples and keep only input_ids/labels: a packed row is
    no sample GEKO can track or skip (and padding-free packing would give each document another row's id)."""
    if getattr(args, "packing", False):
        raise ValueError(
            "GEKO does not support TRL's `packing=True`: TRL packs the dataset once, at init, into rows that mix "
            "several samples and keep only input_ids/labels, so GEKO can neither track a sample nor skip it. Use "
            "`packing=False, padding_free=True` (no padding compute either, one sample per sequence, with "
            "`max_length=None` and pre-truncated data), or plain `packing=False`."
        )


def check_train_dataset(dataset) -> None:
    """A map-style, non-empty dataset (None is left to HF: train() without one fails there)."""
    if dataset is None:
        return
    from torch.utils.data import IterableDataset

    if not hasattr(dataset, "__len__") or isinstance(dataset, IterableDataset):
        raise ValueError(
            f"GEKO picks samples by index every epoch, so it needs a map-style train_dataset with a length, got "
            f"{type(dataset).__name__}. Load the data as a `datasets.Dataset` (not streaming, no to_iterable_dataset) "
            "or a torch map-style Dataset, or train this one without GEKO."
        )
    if len(dataset) == 0:
        raise ValueError("The train_dataset is empty (0 rows): GEKO has no samples to track. Check the data loading "
                         "and any filtering (TRL drops rows that end up with no tokens).")
    if "seq_lengths" in (getattr(dataset, "column_names", None) or ()):
        raise ValueError(
            "The train_dataset has a `seq_lengths` column: its rows are pre-packed (several documents each, as "
            "trl.pack_dataset makes them), so a row is no single sample GEKO can track or skip. Pass the unpacked "
            "dataset, one sample per row (with padding_free=True for packing's speed)."
        )


def data_parallel_batch(trainer) -> tuple[int, int]:
    """(samples per optimizer step, samples per global micro-batch) as the Trainer really uses them.

    The micro-batch is `trainer._train_batch_size` (auto_find_batch_size changes it; DataParallel multiplies it by
    the GPUs of one process) times the data-parallel world, or alone under accelerate's `split_batches`. Ranks that share a batch (tensor, context or sequence
    parallelism) would record every sample several times and split the sampler's unit: refused.
    """
    sizes = {name: getattr(trainer, f"get_{name}_size", lambda: 1)() for name in ("tp", "cp", "sp")}
    shared = {name: size for name, size in sizes.items() if size and size > 1}
    if shared:
        raise ValueError(
            f"GEKO does not support ranks that share a batch ({', '.join(f'{k}_size={v}' for k, v in shared.items())}"
            "): every sample would be recorded once per rank of the group. Use data parallelism only (DDP, FSDP or "
            "DeepSpeed ZeRO) with GEKO."
        )
    micro = getattr(trainer, "_train_batch_size", None) or trainer.args.per_device_train_batch_size
    # accelerate's split_batches deals each loader batch out in slices, one per process: that batch is the global one
    split = getattr(getattr(trainer, "accelerator", None), "split_batches", False)
    batch = micro if split else micro * max(trainer.args.world_size, 1)
    return batch * trainer.args.gradient_accumulation_steps, batch
