"""The callback-only path's one piece of magic, alone here: `Trainer(..., callbacks=[GEKOCallback()])` swaps the
trainer instance's class for one with `GEKOMixin` in front, because the sampler, the loss and the checkpoint hooks
of a Trainer are its methods and no TrainerCallback event can replace them. `GEKOTrainer` / `GEKOSFTTrainer` need
no swap: they are that class from the start.
"""

from __future__ import annotations

from .mixin import GEKOMixin


def swap_in_geko(trainer) -> None:
    """Make `trainer` a GEKOMixin instance of a class that keeps the user's name, module and methods."""
    if not isinstance(trainer, GEKOMixin):
        trainer.__class__ = geko_class_for(type(trainer))


def geko_class_for(cls):
    """`cls` with GEKOMixin in front (cached), for the callback-only path.

    Why a class and not a callback alone: the sampler, the loss and the checkpoint hooks of a Trainer are its
    methods, and no TrainerCallback event can replace them. The new class keeps the user's class name, module and
    every method GEKOMixin does not override, and `isinstance(trainer, cls)` stays true."""
    if issubclass(cls, GEKOMixin):
        return cls
    if cls not in _CLASS_CACHE:
        _CLASS_CACHE[cls] = type(cls.__name__, (GEKOMixin, cls),
                                 {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return _CLASS_CACHE[cls]


_CLASS_CACHE: dict = {}
