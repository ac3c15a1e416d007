"""One truth across ranks: GEKO's records and plans on N processes (DDP, FSDP, DeepSpeed through accelerate).

Every rank computes the same epoch plan from the same state (the sampler yields the GLOBAL sequence and
accelerate deals its batches out), and every rank applies the same gathered records. Two things keep that true:
records go back into training order after the gather, and each epoch's plan is compared across ranks before a
single batch of it is trained (a rank that planned differently would train other samples, or hang the gather).
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def global_step_order(columns, local_batch, world: int) -> tuple:
    """Records gathered from `world` ranks (rank-major: rank 0's whole part, then rank 1's, ...) put back in the
    order one process would have trained them. accelerate deals micro-batch k of the global sequence to rank
    k % world (BatchSamplerShard, split_batches=False), so rank r's local batch j is global batch j * world + r;
    with split_batches=True it is the r-th slice of global batch j: the same order, by (j, r).
    Order matters when a sample repeats within an epoch (a HARD weight > 1): its observations update the state in
    sequence, and a 1-process run with the same global batch must end with the same state."""
    n = len(local_batch)
    if n % world:
        raise RuntimeError(f"GEKO gathered {n} records from {world} processes: ranks recorded unequal counts.")
    rank = np.arange(n) // (n // world)
    order = np.argsort(local_batch.astype(np.int64) * world + rank, kind="stable")  # stable: keeps in-batch order
    return tuple(c[order] for c in columns)


def plan_digest(plan: np.ndarray) -> int:
    """A 32-bit checksum of an epoch plan (its ids and their order), as an int64-safe Python int."""
    return zlib.crc32(np.ascontiguousarray(plan, dtype=np.int64).tobytes())


def check_same_plan(plan: np.ndarray, epoch: int, accelerator) -> None:
    """Raise on EVERY rank (so none waits in a later collective) when the ranks' plans for `epoch` differ."""
    if accelerator is None or accelerator.num_processes <= 1:
        return
    mine = torch.tensor([plan_digest(plan), len(plan)], dtype=torch.int64, device=accelerator.device)
    every = accelerator.gather(mine).view(-1, 2).cpu().numpy()
    differ = [r for r in range(len(every)) if (every[r] != every[0]).any()]
    if differ:
        raise RuntimeError(
            f"GEKO's plan for epoch {epoch + 1} differs across processes: rank(s) {differ} planned another order "
            f"than rank 0 (plan lengths {every[:, 1].tolist()}, checksums {every[:, 0].tolist()}). Every rank must "
            "see the same training dataset, GEKOConfig and seed (a dataset shuffled or filtered per rank, or a "
            "config read from a per-rank file, does this); check that all processes load the same data and config."
        )
