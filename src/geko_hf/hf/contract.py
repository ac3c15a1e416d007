"""What GEKO requires of the Trainer it joins, checked when the trainer is built (never deep inside `train()`).

- the transformers release is inside the range GEKO is tested on (`TRANSFORMERS_RANGE`, tested in CI at both ends);
- the private Trainer methods GEKO still overrides (no public hook does their job) have the parameters GEKO was
  written for, and `set_initial_training_values` returns its values in the documented order.
(What GEKO refuses in the user's trainer, data and batch layout is in preflight.py.)

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
