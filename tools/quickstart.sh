#!/usr/bin/env bash
# Set up the environment if needed (tools/install.sh), then train the quickstart config on the
# built-in toy data and print its final validation metrics. Extra arguments go to tools/train.py.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MMMASK_CACHE:-$HOME/.cache/mmmask}
PY=${MMMASK_VENV:-$CACHE/venv}/bin/python
CONFIG=${CONFIG:-configs/ppma/upernet_ppma-toy_1xb8-2k_toy-seg-64x64.py}
bash "$REPO/tools/install.sh" --quiet
cd "$REPO"
# This checkout's code, even if another clone sharing the venv was installed into it last.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)
"$PY" tools/train.py "$CONFIG" --work-dir work_dirs/quickstart "$@"
echo "quickstart: trained $CONFIG in $(( $(date +%s) - start )) s; logs and checkpoints in work_dirs/quickstart"
