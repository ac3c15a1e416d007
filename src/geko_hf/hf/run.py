"""`TrainerRun`: one GEKO run inside a `transformers.Trainer`, the single object both halves of the glue share.

The trainer mixin (mixin.py: data, schedule, checkpoints, per-sample statistics) and the callback (callback.py:
the epoch events) each hold the same `TrainerRun` and talk only to it, never to each other. It owns:
- the `GEKOLoop` (tracker, this epoch's records, the state file) for the FINAL train_dataset,
- HF's position in GEKO terms (where the current epoch started, whether an epoch is open, the scheduler's
  original length), which plain `GEKOLoop` users do not need and HF cannot derive (its epochs are equal-length),
- what the user chose (config, statistics hooks) and the resume request of the current `train()` call.
"""

from __future__ import annotations

import logging
import os

from ..core.checkpoint import dataset_fingerprint, load_geko_state
from ..core.config import GEKOConfig
from ..core.run_length import RunLength
from ..core.tracker import GEKOTracker
from ..training.loop import GEKOLoop, StatsBuffer
from .resume import check_same_batch, check_same_run, has_optimizer_state

logger = logging.getLogger("geko_hf")


class TrainerRun:
    """GEKO's state for one Trainer: created by the callback, bound to the trainer by `attach`."""

    def __init__(self, config: GEKOConfig | None = None, hooks: dict | None = None,
                 tracker_class=GEKOTracker, observe_only: bool = False):
        self.explicit_config = config
        self.observe_only = observe_only  # the data map alone: policy "observe" over whichever config applies
        self.policy_factory = None  # tracker -> SelectionPolicy, instead of the config's policy (benchmarks)
        self.config: GEKOConfig | None = config
        self.hooks = dict(hooks or {})
        self.tracker_class = tracker_class
        self.loop: GEKOLoop | None = None
        self.buffer = StatsBuffer()
        self.sampler = None  # the GEKOSampler of the current dataloader (accelerate hides it on N processes)
        self.fingerprint: dict | None = None
        self.new_run = True
        self.resume_from: str | None = None
        self.restored = False  # True once a checkpoint's GEKO state was loaded
        # HF's position, in GEKO epochs
        self.schedule_total: int | None = None  # the scheduler's original length (kept across resume)
        self.schedule_warped = False
        self.epoch_start_step = 0
        self.steps_this_epoch = 0
        self.in_epoch = False
        self.close_epoch_at_begin = False  # resumed from a checkpoint saved on its epoch's last step
        self.sequences_checked = False  # the run's first batch was checked for pre-packed rows
        self.passes_at_train_begin = 0
        self.callback = None  # the GEKOCallback that holds this run (set when it binds a trainer)
        self.trainer = None  # the trainer it is bound to
        self.banner = True  # the start banner and end summary (geko-hf train/sft print their own instead)

    @property
    def tracker(self) -> GEKOTracker | None:
        return None if self.loop is None else self.loop.tracker

    @property
    def follows_trainer(self) -> bool:
        """The policy leaves the Trainer's sampler, schedule and step counts as they are (observe)."""
        return self.tracker is not None and self.tracker.follows_trainer

    # -- a train() call ------------------------------------------------------------------------------------
    def start(self, resume_from: str | None) -> None:
        """Called by train(): the next dataloader gets a fresh tracker (restored from resume_from, if given)."""
        self.new_run, self.resume_from = True, resume_from

    def make_tracker(self, args, dataset, unit: int, batch: int) -> GEKOTracker:
        """The run's tracker for the FINAL train_dataset (TRL tokenises/filters in __init__); rebuilt when the batch
        changed under the same run (auto_find_batch_size halves it after an OOM: plans are rounded to the batch
        actually used)."""
        tracker = self.tracker
        if tracker is not None and (tracker.unit, tracker.batch_size) == (unit, batch) and not self.new_run:
            return tracker
        self.config = self.explicit_config or getattr(args, "geko_config", None) or GEKOConfig()
        if self.observe_only:
            self.config = self.config.replace(policy="observe")
        n = len(dataset)
        tracker = self.tracker_class(n, self.config, seed=args.data_seed if args.data_seed is not None else args.seed,
                                     unit=unit, batch_size=batch, drop_last=args.dataloader_drop_last,
                                     policy=self.policy_factory, **run_length(args, n, unit))
        if self.config.stratify_by:
            tracker.set_groups(column_groups(dataset, self.config.stratify_by))
        self.loop = GEKOLoop.for_tracker(tracker, buffer=self.buffer)
        self.fingerprint = dataset_fingerprint(dataset)
        self.schedule_total, self.in_epoch, self.epoch_start_step = None, False, 0
        self.close_epoch_at_begin = self.sequences_checked = False
        self.buffer.clear()
        self.restored, self.new_run = False, False
        if self.resume_from is not None:
            self.restore(self.resume_from)
        return tracker

    def begin_train(self) -> None:
        self.buffer.clear()
        self.passes_at_train_begin = self.tracker.totals["sample_passes"] + sum(len(p[0]) for p in self.loop.pending)

    def passes_this_call(self) -> int:
        """Sample passes trained since this train() call began (HF's throughput metrics are per call)."""
        return self.tracker.totals["sample_passes"] - self.passes_at_train_begin

    # -- per step -------------------------------------------------------------------------------------------
    def record(self, ids, stats) -> None:
        self.buffer.add(ids, stats)

    def sample_weights(self, ids):
        return self.loop.weights(ids)

    # -- persistence: the loop writes the file, the run adds HF's position ----------------------------------
    def save(self, folder: str, accelerator=None, is_main_process: bool = True, gather: bool = True) -> None:
        """Every rank takes part in the gather and only the main process writes; `gather=False` (a save_model call
        of the user's, maybe on one rank only) runs no collective (see GEKOLoop.save)."""
        if self.loop is None:
            return
        self.loop.save(folder, accelerator, is_main_process=is_main_process, gather=gather, **self._position())

    def state_payload(self) -> dict:
        return self.loop.state_payload(**self._position())

    def _position(self) -> dict:
        return {"fingerprint": self.fingerprint, "in_epoch": self.in_epoch, "epoch_start_step": self.epoch_start_step,
                "schedule_total": self.schedule_total}

    def load(self, folder: str) -> None:
        """Load a checkpoint's (or a `save()`d folder's) GEKO state into this run: the state, the data map, the
        plans. The checkpoint must be of this training dataset. To continue TRAINING from a checkpoint, pass it to
        `trainer.train(resume_from_checkpoint=...)` instead (that also checks the step, config and run length)."""
        if self.tracker is None:
            raise RuntimeError(
                f"trainer.geko.load({folder!r}) needs the run's state to load into, which is built when training "
                "starts: use trainer.train(resume_from_checkpoint=...) to continue from it, or read the folder with "
                "`geko-hf report PATH --data-map` (or GEKOTracker.from_state_dict(load_geko_state(PATH)['tracker']))."
            )
        payload = load_geko_state(folder)
        self._check_fingerprint(folder, payload)
        self.loop.load(payload)

    def _check_fingerprint(self, folder: str, payload: dict) -> None:
        saved, ours = payload.get("fingerprint") or {}, self.fingerprint
        if saved != ours:
            raise ValueError(
                f"Checkpoint {folder} was saved for a different training dataset: its fingerprint is {saved}, the "
                f"current dataset's is {ours}. Resume with the dataset it was trained on, or start a new run."
            )

    def restore(self, folder: str) -> None:
        """Resume: restore everything a checkpoint holds; a stock-Trainer checkpoint gives a warning and fresh state."""
        try:
            payload = load_geko_state(folder)
        except FileNotFoundError:
            logger.warning(
                "Checkpoint %s has no GEKO state (saved by a stock Trainer?): GEKO starts from a fresh state; "
                "the model, optimizer and schedule resume as usual.", folder)
            return
        if not has_optimizer_state(folder):
            raise ValueError(
                f"Checkpoint {folder} holds the model and GEKO's state but no optimizer or LR-scheduler state (it was "
                "saved with save_only_model=True): the schedule would restart from its warmup in mid-run. Resume from "
                "a checkpoint saved without save_only_model, or start a new run from the saved model "
                "(model_name_or_path=the checkpoint folder, without resume_from_checkpoint)."
            )
        self._check_fingerprint(folder, payload)
        check_same_batch(folder, payload["tracker"], self.tracker)
        check_same_run(folder, payload["tracker"], self.tracker)
        self.loop.load(payload)
        self.in_epoch = bool(payload["in_epoch"])
        self.epoch_start_step = int(payload["epoch_start_step"])
        self.schedule_total = payload.get("schedule_total")
        self.restored = True

    def follow_position(self, epoch: int, global_step: int, steps_done: int) -> None:
        """Continue at HF's position (a checkpoint without GEKO state): `epoch`, `steps_done` optimizer steps in."""
        self.tracker.epoch = epoch
        if steps_done:
            self.in_epoch, self.epoch_start_step = True, global_step - steps_done

    def efficiency_report(self) -> dict:
        return self._trained().efficiency_report()

    # -- the public handle, trainer.geko ---------------------------------------------------------------------
    def _trained(self) -> GEKOTracker:
        if self.tracker is None:
            raise RuntimeError("No GEKO state yet: call trainer.train() first.")
        return self.tracker

    @property
    def state(self):
        """The per-sample learning state (SampleState: loss, confidence, bucket, times seen, ... per sample)."""
        return self._trained().state

    def report(self) -> dict:
        """Passes, model calls and tokens trained against the same run on full data (see core/accounting)."""
        return self.efficiency_report()

    def data_map(self):
        """Every training sample's dynamics as a `datasets.Dataset` (see training/data_map.py): its readable fields, the
        Cartography statistics, AUM, forgetting, region and label-issue rank. `.to_pandas()` for a DataFrame."""
        from ..training.data_map import data_map_dataset

        trainer = self.trainer
        config = getattr(getattr(trainer, "model", None), "config", None)
        id2label = getattr(config, "id2label", None) if getattr(config, "num_labels", 0) else None
        return data_map_dataset(self._trained(), getattr(trainer, "train_dataset", None), id2label)

    def label_issues(self, k: int | None = None):
        """The data map's rows, most likely mislabelled first (every observed sample is ranked; `k` keeps the top)."""
        table = self.data_map().filter(lambda rank: rank > 0, input_columns="label_issue_rank")
        table = table.sort("label_issue_rank")
        return table if k is None else table.select(range(min(int(k), len(table))))

    def filter(self, dataset, regions=None, top_k_label_issues: int | None = None, where=None):
        """`dataset` (the training set, same rows) without the samples in `regions` (e.g. ["hard-to-learn"]), the
        top-k label issues, or a boolean mask `where` over the samples: the next Trainer's train_dataset."""
        from ..training.data_map import filter_dataset

        return filter_dataset(dataset, self._trained(), regions, top_k_label_issues, where)

    def write_data_map(self, folder: str) -> list[str]:
        """geko_data_map.parquet, geko_data_map.html (the page to explore, report/data_map_page.py) and, with
        matplotlib, geko_data_map.png in `folder`; the paths written."""
        from ..report.data_map_page import DATA_MAP_PAGE, write_data_map_page
        from ..training.data_map import DATA_MAP_PLOT, write_data_map

        table = self.data_map()
        paths = [write_data_map(table, folder)]
        plot = self.plot_data_map(os.path.join(folder, DATA_MAP_PLOT))
        page = write_data_map_page(table.to_dict(), os.path.join(folder, DATA_MAP_PAGE))
        return paths + ([plot] if plot else []) + [page]

    def plot_data_map(self, path: str) -> str | None:
        """The Cartography picture (variability vs confidence, by correctness, regions marked); None without
        matplotlib."""
        from ..report.data_map_plot import plot_data_map

        return plot_data_map(self._trained().data_map, path)


def column_groups(dataset, column: str):
    """One integer per row from a dataset column (any hashable values: labels, task-family names)."""
    import numpy as np

    names = getattr(dataset, "column_names", None)
    if names is None or column not in names:
        raise ValueError(
            f"GEKOConfig.stratify_by={column!r}, but the training dataset has no such column (its columns: "
            f"{names if names is not None else 'none: it is not a datasets.Dataset'}). Name an existing column, "
            "or set stratify_by=None."
        )
    # numpy format: one Arrow-to-numpy conversion through any shuffle/select mapping, no Python object per row
    values = np.asarray(dataset.with_format("numpy")[column] if hasattr(dataset, "with_format") else dataset[column])
    if values.dtype == object or values.ndim != 1:
        values = np.array([repr(v) for v in values])
    return np.unique(values, return_inverse=True)[1].astype(np.int64)


def run_length(args, num_samples: int, unit: int) -> dict:
    """The tracker's run-length arguments from TrainingArguments (see core/run_length.py)."""
    return RunLength.from_args(args, num_samples, unit).as_kwargs()
