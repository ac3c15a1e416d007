"""GEKO in any torch training loop: sample ids in the batch (ids), per-sample statistics off a forward pass (stats),
importance weights, the sampler, the cross-rank order (ranks) and the run controller `GEKOLoop` (loop)."""
