"""`GEKOSampler`: a plain torch Sampler that yields the tracker's epoch plan.

Rules it follows (see ../shared/notes/hf-trainer-facts.md):
- a plain `Sampler`, never a `RandomSampler` subclass (accelerate would swap it for its own);
- the SAME global sequence on every rank: accelerate's BatchSamplerShard deals whole batches to ranks;
- no `generator` attribute and no global RNG: the order is a pure function of (seed, epoch, state);
- `set_epoch` is idempotent (Trainer calls it twice per epoch) and `__iter__` has no side effects, so HF's
  mid-epoch resume, which re-iterates the sampler to skip batches, sees the same sequence again.
"""

from __future__ import annotations

from torch.utils.data import Sampler


class GEKOSampler(Sampler):
    def __init__(self, tracker, epoch: int = 0):
        self.tracker = tracker
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.tracker.plan(self.epoch))

    def __iter__(self):
        return iter(self.tracker.plan(self.epoch).tolist())
