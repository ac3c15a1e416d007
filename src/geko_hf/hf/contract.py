"""What GEKO requires of the Trainer it joins, checked when the trainer is built (never deep inside `train()`).

- the transformers release is inside the range GEKO is tested on (`TRANSFORMERS_RANGE`, tested in CI at both ends);
- the private Trainer methods GEKO still overrides (no public hook does their job) have the parameters GEKO was
  written for, and `set_initial_training_values` returns its values in the documented order;
- the trainer is one GEKO can drive (not a TRL preference/RL trainer), the dataset is map-style and non-empty, and
  every data-parallel rank trains its own batch (the unit of GEKO's plans).

A transformers release that changes one of these fails here, in one sentence that names the method and the range.
"""

from __future__ import annotations

import inspect

TRANSFORMERS_RANGE = (">=5.3", "<6")  # 5.3 introduced Trainer._init_training_state (the resume position hook)

# private Trainer methods GEKO overrides -> the parameters (after self) it was written for
PRIVATE_METHODS = {
    "_get_train_sampler": ("train_dataset",),  # the sampler of get_train_dataloader
    "_set_signature_columns_if_needed": (),  # the columns remove_unused_columns keeps (GEKO adds its id column)
    "set_initial_training_values": ("args", "dataloader"),  # the run's length, from the first epoch
    "_init_training_state": ("max_steps", "num_update_steps_per_epoch", "num_train_epochs",
                             "resume_from_checkpoint", "trial"),  # where a resumed run continues
}
# set_initial_training_values returns (num_train_epochs, num_update_steps_per_epoch, num_examples,
# num_train_samples, total_train_batch_size, steps_in_epoch, max_steps): GEKO edits these three
INITIAL_VALUES_LENGTH = 7
EPOCHS_AT, UPDATE_STEPS_AT, BATCHES_AT = 0, 1, 5


def range_text() -> str:
    return ",".join(TRANSFORMERS_RANGE)


def contract_error(problem: str, version: str | None = None) -> RuntimeError:
    from .. import __version__

    if version is None:
        import transformers

        version = transformers.__version__
    return RuntimeError(
        f"geko_hf {__version__} supports transformers {range_text()} and this is transformers "
        f"{version}: {problem}. Install a supported version: pip install 'transformers{range_text()}'."
    )


def check_transformers_version(version: str | None = None) -> None:
    from packaging.specifiers import SpecifierSet

    if version is None:
        import transformers

        version = transformers.__version__
    if not SpecifierSet(range_text()).contains(version, prereleases=True):
        raise contract_error(f"transformers {version} is outside that range", version)


def check_private_methods(trainer, mixin: type) -> None:
    """The private methods GEKO overrides, as the classes under `mixin` (GEKOMixin) in the trainer's MRO define them,
    have the parameters GEKO was written for (varargs aside)."""
    for name, expected in PRIVATE_METHODS.items():
        parent = _parent_method(type(trainer), name, mixin)
        if parent is None:
            raise contract_error(f"Trainer.{name} does not exist, and GEKO overrides it")
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        params = tuple(p.name for p in list(inspect.signature(parent).parameters.values())[1:] if p.kind not in variadic)
        if params != expected:
            raise contract_error(f"Trainer.{name} takes ({', '.join(params)}) where GEKO expects "
                                 f"({', '.join(expected)})")


def _parent_method(cls: type, name: str, mixin: type):
    """The function GEKOMixin's override reaches through super(): the first definition below the mixin."""
    mro = cls.__mro__
    below = mro[mro.index(mixin) + 1:] if mixin in mro else mro
    for base in below:
        if name in vars(base):
            return vars(base)[name]
    return None


def initial_values_positions(values, args, dataloader) -> tuple[int, int, int]:
    """Where set_initial_training_values put (num_train_epochs, num_update_steps_per_epoch, steps_in_epoch), after
    checking the tuple has the documented length and those two step counts match the dataloader."""
    if len(values) != INITIAL_VALUES_LENGTH:
        raise contract_error(f"Trainer.set_initial_training_values returned {len(values)} values where GEKO expects "
                             f"{INITIAL_VALUES_LENGTH}")
    if hasattr(dataloader, "__len__"):
        batches = len(dataloader)
        steps = max(-(-batches // args.gradient_accumulation_steps), 1)
        if (values[UPDATE_STEPS_AT], values[BATCHES_AT]) != (steps, batches):
            raise contract_error(
                f"Trainer.set_initial_training_values returned {values[UPDATE_STEPS_AT]} update steps and "
                f"{values[BATCHES_AT]} batches per epoch at positions {UPDATE_STEPS_AT} and {BATCHES_AT}, where GEKO "
                f"expects {steps} and {batches} for this dataloader")
    return EPOCHS_AT, UPDATE_STEPS_AT, BATCHES_AT


# -- the trainer and its data ---------------------------------------------------------------------------------
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
