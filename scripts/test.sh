#!/usr/bin/env bash
# Installs what the tests need and runs the default (fast) test suite on both ends of the supported range:
# the newest releases pip resolves (.venv) and the lowest supported stack (.venv-low, constraints/lowest.txt).
# Extra args go to pytest. STACKS picks the ends, e.g. for the slow tests on the newest stack only:
#   STACKS=newest bash scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
for stack in ${STACKS:-newest lowest}; do
    case "$stack" in
        newest) bash scripts/setup.sh dev; venv=.venv ;;
        lowest) bash scripts/setup.sh dev lowest; venv=.venv-low ;;
        *) echo "unknown stack in STACKS: $stack (use newest, lowest)" >&2; exit 2 ;;
    esac
    echo "== tests on the $stack stack: $("$venv/bin/python" -c 'import transformers, trl; print("transformers", transformers.__version__, "trl", trl.__version__)')"
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
done
