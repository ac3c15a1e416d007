"""`RunLength`: how long a run is, in one value: the epochs a tracker plans, the share of the last one, and whether a
fixed number of optimizer steps (HF's max_steps) ends the run instead. Built once, from TrainingArguments-style
numbers, and read by the tracker, the resume check and the loop alike (0.3 passed four loose numbers, computed in
two places).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RunLength:
    num_epochs: int  # epochs planned; a fractional run's last, partial epoch included
    last_epoch_fraction: float = 1.0  # share of the last epoch's optimizer steps trained (num_train_epochs=2.5: 0.5)
    fixed_steps: bool = False  # max_steps ends the run, not the epochs
    max_steps: int = 0  # the fixed step count (0: none)

    @classmethod
    def from_epochs(cls, epochs: float) -> "RunLength":
        """num_train_epochs=1.5: one epoch and the first half (in optimizer steps) of the next, as the stock Trainer."""
        epochs = float(epochs)
        if not epochs > 0:
            raise ValueError(f"num_train_epochs must be > 0 with GEKO (or set max_steps), got {epochs}.")
        whole = math.ceil(epochs)
        return cls(whole, epochs - (whole - 1))

    @classmethod
    def from_max_steps(cls, max_steps: int, num_samples: int, unit: int) -> "RunLength":
        """max_steps fixes the optimizer steps; epochs follow one another until it is reached (planned: as many as
        the steps take on full data)."""
        steps_per_full_epoch = max(-(-int(num_samples) // int(unit)), 1)
        return cls(max(-(-int(max_steps) // steps_per_full_epoch), 1), 1.0, True, int(max_steps))

    @classmethod
    def from_args(cls, args, num_samples: int, unit: int) -> "RunLength":
        """From TrainingArguments: max_steps when set (> 0), else num_train_epochs."""
        if args.max_steps > 0:
            return cls.from_max_steps(args.max_steps, num_samples, unit)
        return cls.from_epochs(args.num_train_epochs)

    @classmethod
    def from_state(cls, d: dict) -> "RunLength":
        """From a tracker's state_dict (states of geko_hf <= 0.3 lack the later fields: their defaults)."""
        return cls(int(d["num_epochs"]), float(d.get("last_epoch_fraction", 1.0)), bool(d.get("fixed_steps", False)),
                   int(d.get("max_steps", 0)))

    @property
    def epochs(self) -> float:
        """The run in epochs of data (2.5 for num_train_epochs=2.5)."""
        return self.num_epochs - 1 + self.last_epoch_fraction

    def words(self) -> str:
        """The setting as the user gave it: `num_train_epochs=2.5` or `max_steps=90`."""
        if self.fixed_steps:
            if self.max_steps:
                return f"max_steps={self.max_steps}"
            return f"max_steps (about {self.num_epochs} full-data epochs)"  # (states of geko_hf <= 0.3)
        return f"num_train_epochs={self.epochs:g}"

    def as_kwargs(self) -> dict:
        """The tracker's constructor arguments."""
        return asdict(self)
