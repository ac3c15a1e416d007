"""The algorithm, pure numpy: importable and testable without torch, transformers or a Trainer.

config (GEKOConfig, presets), state (per-sample SampleState), q_value, buckets, curriculum, selection (an epoch's
plan), policies (selection policies by name), tracker (state + plans), accounting (compute against full data),
data_map (per-sample training dynamics), label_issues, checkpoint (the state file).
"""
