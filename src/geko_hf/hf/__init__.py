"""The glue to transformers / TRL / peft: `GEKOCallback`, `GEKOTrainer`, `GEKOSFTTrainer`, the trainer mixin, the
run inside a Trainer, the LR schedule stretch, the arguments, and what GEKO requires of transformers (contract)."""
