"""`GEKOSampler`: a plain torch Sampler that yields the tracker's epoch plan.

Rules it follows (what transformers 5.x and accelerate 1.x do with a custom training sampler):
- a plain `Sampler`, never a `RandomSampler` subclass (accelerate would swap it for its own);
- the SAME global sequence on every rank: accelerate's BatchSamplerShard deals whole batches to ranks;
- no `generator` attribute and no global RNG: the order is a pure function of (seed, epoch, state);
- `set_epoch` is idempotent (Trainer calls it twice per epoch) and `__iter__` has no side effects, so HF's
  mid-epoch resume, which re-iterates the sampler to skip batches, sees the same sequence again.
"""

from __future__ import annotations

from torch.utils.data import Sampler


class GEKOSampler(Sampler):
    """`epoch=None`: follow the tracker (the epoch GEKO is in; `set_epoch` is then ignored), for your own loop.
    An int: that epoch until `set_epoch` says otherwise, as HF's Trainer drives it."""

    def __init__(self, tracker, epoch: int | None = 0):
        self.tracker = tracker
        self.follow = epoch is None
        self.epoch = tracker.epoch if epoch is None else int(epoch)
        self.resume: tuple[int, int] | None = None  # (epoch, samples already trained in it): see start_at

    def start_at(self, epoch: int, offset: int) -> None:
        """Yield epoch `epoch`'s plan from position `offset` on (samples of the GLOBAL sequence, all ranks): a
        mid-epoch resume that needs no fast-forward through the dataloader (HF's `ignore_data_skip=True`)."""
        self.resume = (int(epoch), int(offset))

    def set_epoch(self, epoch: int) -> None:
        if not self.follow:
            self.epoch = int(epoch)

    def _current(self) -> int:
        return self.tracker.epoch if self.follow else self.epoch

    def _plan(self):
        epoch = self._current()
        plan = self.tracker.plan(epoch)
        if self.resume is not None and self.resume[0] == epoch:
            plan = plan[self.resume[1]:]
        return plan

    def __len__(self) -> int:
        return len(self._plan())

    def __iter__(self):
        return _python_ints(self._plan())


_CHUNK = 1 << 16  # ids turned into Python ints a chunk at a time


def _python_ints(plan):
    """The plan's ids as Python ints (what a DataLoader passes to dataset[i]), without a list of the whole epoch:
    at 10 M samples `plan.tolist()` held 10 M int objects (~360 MB) for the whole epoch."""
    for start in range(0, len(plan), _CHUNK):
        yield from plan[start:start + _CHUNK].tolist()
