#!/usr/bin/env bash
# Installs geko_hf with the demo assets and runs the main job: a real offline fine-tune with GEKO.
# Extra args go to `geko-hf train` (e.g. --num_train_epochs 2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
geko-hf train "$@"
