"""`GEKOLoop`: GEKO in any training loop (plain PyTorch, accelerate, Lightning), and the run controller the HF
callback itself uses, so both paths share one plan, one state, one checkpoint format and one report.

    loop = GEKOLoop(len(train), num_epochs=3, batch_size=16, seed=0)
    loader = DataLoader(with_ids(train), batch_size=16, sampler=loop.sampler(), collate_fn=IdCollator(collate))
    for epoch in range(loop.num_epochs):
        for batch in loader:                       # the sampler yields this epoch's plan
            ids = batch.pop("geko_sample_id")
            out = model(**batch)
            loop.record(ids, sample_stats(out, batch))   # per-sample loss/correct/confidence, no host sync
            weights = loop.weights(ids)            # None, or 1/rate for subsampled LIGHT samples
            (out.loss if weights is None else weighted(out, weights)).backward(); opt.step(); opt.zero_grad()
        loop.end_epoch()                           # update the state, repartition, plan the next epoch
        if loop.done: break
    print(loop.report())

Records stay on the device until `end_epoch` (one concatenation every few hundred batches, no per-step sync);
with accelerate pass `accelerator=` to `end_epoch` / `save` so records are gathered across ranks (ids as int64,
values as float32: `gather_for_metrics` would drop real samples under gradient accumulation), put back in training
order, and the next epoch's plan is checked equal on every rank (see ranks.py).
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..core.checkpoint import load_geko_state, save_geko_state
from ..core.config import GEKOConfig
from ..core.run_length import RunLength
from ..core.tracker import GEKOTracker
from .ranks import check_same_plan, global_step_order
from .sampler import GEKOSampler

logger = logging.getLogger("geko_hf")


class StatsBuffer:
    """Per-sample records of the current epoch, kept on the device until the epoch ends (no per-step sync).

    Every `consolidate_every` batches the parts are concatenated on the device: a whole epoch of tiny per-step
    tensors would otherwise hold one allocation each (hundreds of MB of allocator blocks over 100k+ steps).
    """

    consolidate_every = 256

    def __init__(self):
        self.clear()

    def clear(self):
        self.parts: list[tuple] = []  # (ids, loss, correct, confidence, tokens, margin) of one or more batches
        self.sizes: list[int] = []  # records per micro-batch, in order (host ints: the order across ranks, ranks.py)

    @property
    def batches(self) -> int:
        return len(self.sizes)

    def add(self, ids, stats):
        loss = stats.loss.detach().float()
        margin = stats.margin  # None (user hooks): NaN, and the state derives it from correct and confidence
        margin = torch.full_like(loss, float("nan")) if margin is None else margin.detach().float()
        ids = ids.detach().long()
        self.parts.append((ids, loss, stats.correct.detach(), stats.confidence.detach().float(),
                           stats.tokens.detach().long(), margin))
        self.sizes.append(int(ids.shape[0]))  # a shape: no host sync
        if len(self.parts) > self.consolidate_every:  # device-side, no sync
            self.parts = [tuple(torch.cat(c) for c in zip(*self.parts))]

    def drain(self, accelerator=None):
        """Concatenate (and gather across ranks) -> numpy arrays in global step order; empties the buffer."""
        if not self.parts:
            empty = np.zeros(0)
            out = (empty.astype(np.int64), empty, empty.astype(bool), empty, empty.astype(np.int64), empty)
        else:
            cols = [torch.cat(c) for c in zip(*self.parts)]
            world = accelerator.num_processes if accelerator is not None else 1
            if world > 1:
                # each record's micro-batch index on this rank, to restore the training order after the gather
                cols.append(torch.repeat_interleave(torch.arange(len(self.sizes)), torch.tensor(self.sizes))
                            .to(cols[0].device))
                # ids as int64, values as float32, gathered separately (gather_for_metrics would truncate)
                cols = [accelerator.gather(c if c.dtype != torch.bool else c.to(torch.uint8)) for c in cols]
            out = [c.cpu().numpy() for c in cols]
            out[2] = out[2].astype(bool)
            out = tuple(out) if world == 1 else global_step_order(out[:-1], out[-1], world)
        # Batches counted in GLOBAL micro-batches (one per step of every rank's loader), the unit of the full-data
        # reference (ceil(samples / global micro-batch)): ranks run the same number of steps.
        batches = self.batches
        self.clear()
        return out, batches


class GEKOLoop:
    """One GEKO run: the tracker (state, plans, accounting), this epoch's records and their persistence.

    `batch_size` is the micro-batch of one process; `gradient_accumulation_steps` and `world_size` make the unit an
    epoch's plan is rounded to (whole optimizer steps). `num_epochs` may be fractional (2.5: the last epoch trains
    half of its plan's optimizer steps)."""

    def __init__(self, num_samples: int, config: GEKOConfig | None = None, *, num_epochs: float = 1,
                 batch_size: int = 1, gradient_accumulation_steps: int = 1, world_size: int = 1, seed: int = 0,
                 tracker_class=GEKOTracker):
        if num_epochs <= 0:
            raise ValueError(f"`num_epochs` must be > 0, got {num_epochs}.")
        global_batch = int(batch_size) * int(world_size)
        tracker = tracker_class(int(num_samples), config or GEKOConfig(), seed=seed,
                                unit=global_batch * int(gradient_accumulation_steps), batch_size=global_batch,
                                **RunLength.from_epochs(num_epochs).as_kwargs())
        self._bind(tracker)

    @classmethod
    def for_tracker(cls, tracker: GEKOTracker, buffer: StatsBuffer | None = None) -> "GEKOLoop":
        loop = cls.__new__(cls)
        loop._bind(tracker, buffer)
        return loop

    def _bind(self, tracker: GEKOTracker, buffer: StatsBuffer | None = None) -> None:
        self.tracker = tracker
        self.buffer = buffer if buffer is not None else StatsBuffer()
        self.pending: list[tuple] = []  # records drained at a mid-epoch save, applied at epoch end
        self._weights: tuple | None = None  # (epoch, device, table): this epoch's per-sample gradient weights
        self._plan_checked: int | None = None  # the epoch whose plan was last compared across ranks
        self._warned_no_freeze = False  # the warning of _warn_if_nothing_can_freeze was given

    # -- where the run is ----------------------------------------------------------------------------
    @property
    def epoch(self) -> int:
        """Epochs completed (the epoch being trained, counting from 0)."""
        return self.tracker.epoch

    @property
    def num_epochs(self) -> int:
        return self.tracker.num_epochs

    @property
    def done(self) -> bool:
        """True once every epoch ran, or nothing is left to train (every sample FREEZE, pruned or exhausted)."""
        return self.epoch >= self.num_epochs or len(self.plan()) == 0

    def plan(self) -> np.ndarray:
        """This epoch's sample ids, in training order."""
        return self.tracker.plan(self.epoch)

    def sampler(self) -> GEKOSampler:
        """A torch Sampler that yields the current epoch's plan each time it is iterated."""
        return GEKOSampler(self.tracker, epoch=None)

    # -- during an epoch -------------------------------------------------------------------------------
    def record(self, ids: torch.Tensor, stats=None, *, loss=None, correct=None, confidence=None, tokens=None,
               margin=None) -> None:
        """One training batch's per-sample statistics: a `SampleStats` (see `sample_stats`) or the tensors
        (`margin`, p(label) - max other p, is optional: without it GEKO derives one from correct and confidence)."""
        if stats is None:
            from .stats import SampleStats

            if loss is None or correct is None or confidence is None:
                raise ValueError("record() needs `stats`, or all of `loss`, `correct` and `confidence` (one per id).")
            ones = torch.ones_like(torch.as_tensor(loss), dtype=torch.long)
            stats = SampleStats(loss=torch.as_tensor(loss), correct=torch.as_tensor(correct),
                                confidence=torch.as_tensor(confidence),
                                tokens=ones if tokens is None else torch.as_tensor(tokens),
                                margin=None if margin is None else torch.as_tensor(margin))
        ids = torch.as_tensor(ids)
        if len(stats.loss) != len(ids):
            raise ValueError(f"record() got {len(ids)} sample ids but statistics for {len(stats.loss)} samples.")
        self.buffer.add(ids, stats)

    def weights(self, ids: torch.Tensor) -> torch.Tensor | None:
        """Per-sample gradient weights of a batch (None: all 1), looked up on the ids' device without a host sync.
        The table is fixed for an epoch (buckets move only at epoch end), so it is moved to the device once."""
        ids = torch.as_tensor(ids)
        if self._weights is None or self._weights[:2] != (self.epoch, ids.device):
            table = self.tracker.weight_table()
            self._weights = (self.epoch, ids.device, None if table is None else torch.as_tensor(table).to(ids.device))
        table = self._weights[2]
        return None if table is None else table[ids]

    def flush(self, accelerator=None) -> None:
        """Move this epoch's device-side records to the host (gathered across ranks); collective on N processes."""
        columns, batches = self.buffer.drain(accelerator)
        if len(columns[0]) or batches:
            self.pending.append((*columns, batches))

    # -- at the end of an epoch ----------------------------------------------------------------------------
    def end_epoch(self, accelerator=None) -> dict:
        """Apply the epoch's records, repartition, and return the epoch's row (buckets, passes, tokens)."""
        self.flush(accelerator)
        ids, loss, correct, conf, tokens, margin, batches = concat_records(self.pending, copy=False)
        self.pending = []
        epoch = self.epoch
        self.tracker.record(ids, loss, correct, conf, tokens, batches, margin=margin)
        row = self.tracker.end_epoch(epoch, passes=len(ids), batches=batches, tokens=int(tokens.sum()))
        self._warn_if_nothing_can_freeze(accelerator)
        if self.epoch < self.num_epochs:
            self.check_plan(accelerator)  # the next epoch's
        return row

    def _warn_if_nothing_can_freeze(self, accelerator=None) -> None:
        """Once a run, on the main process: say why nothing freezes (see GEKOTracker.mastery_out_of_reach)."""
        if self._warned_no_freeze or (accelerator is not None and not accelerator.is_main_process):
            return
        message = self.tracker.mastery_out_of_reach()
        if message:
            logger.warning(message)
            self._warned_no_freeze = True

    def check_plan(self, accelerator=None) -> None:
        """Compare this epoch's plan across ranks (a collective on N processes, once per epoch: every rank makes
        the same calls, so a repeated call is skipped on all of them alike)."""
        if self._plan_checked != self.epoch:
            check_same_plan(self.plan(), self.epoch, accelerator)
            self._plan_checked = self.epoch

    def report(self) -> dict:
        """Passes, model calls and tokens trained against the same run on full data (see GEKOTracker)."""
        return self.tracker.efficiency_report()

    def data_map(self, dataset=None):
        """Every sample's training dynamics as a `datasets.Dataset` (see data_map.py); with `dataset` (the training
        set, same rows) its text and label columns too."""
        from .data_map import data_map_dataset

        return data_map_dataset(self.tracker, dataset)

    # -- persistence ----------------------------------------------------------------------------------------
    def state_payload(self, **extra) -> dict:
        """Everything a checkpoint holds; `extra` carries a trainer's own position (e.g. HF's step counters)."""
        from .. import __version__

        ids, loss, correct, conf, tokens, margin, batches = concat_records(self.pending)
        return {
            "geko_hf_version": __version__,
            "tracker": self.tracker.state_dict(),
            "pending": {"ids": ids, "loss": loss, "correct": correct, "confidence": conf, "tokens": tokens,
                        "margin": margin, "batches": batches},
            **extra,
        }

    def save(self, folder: str, accelerator=None, is_main_process: bool = True, gather: bool = True,
             **extra) -> None:
        """Write `folder/geko_state.npz` atomically. On N processes every rank must call it (the records are
        gathered first), unless `gather=False`: then no collective runs (a save called on the main process only)
        and the file holds the records up to the last gather (the last checkpoint or epoch end)."""
        if gather or accelerator is None or accelerator.num_processes <= 1:
            self.flush(accelerator)
        if is_main_process:
            save_geko_state(folder, self.state_payload(**extra))

    def load(self, folder_or_payload) -> dict:
        """Restore a checkpoint's state; returns its payload (the trainer reads its `extra` fields from it)."""
        payload = load_geko_state(folder_or_payload) if isinstance(folder_or_payload, str) else folder_or_payload
        self.tracker.load_state_dict(payload["tracker"])
        p = payload["pending"]
        margin = p.get("margin", np.full(len(p["ids"]), np.nan))  # checkpoints of geko_hf <= 0.3 have none
        self.pending = [(p["ids"], p["loss"], p["correct"].astype(bool), p["confidence"], p["tokens"], margin,
                         int(p["batches"]))] if len(p["ids"]) or int(p["batches"]) else []
        self.buffer.clear()
        self._weights = None
        return payload


COLUMNS = 6  # a record: ids, loss, correct, confidence, tokens, margin; then the batch count


def concat_records(records: list[tuple], copy: bool = True):
    if not records:
        z = np.zeros(0)
        return z.astype(np.int64), z, z.astype(bool), z, z.astype(np.int64), z, 0
    if len(records) == 1 and not copy:  # the usual epoch end: one drained part, used as it is (10 M records: 250 MB)
        return (*records[0][:COLUMNS], int(records[0][COLUMNS]))
    cols = [np.concatenate([r[i] for r in records]) for i in range(COLUMNS)]
    return (*cols, sum(int(r[COLUMNS]) for r in records))
