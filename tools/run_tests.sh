#!/usr/bin/env bash
# Set up the environment if needed (tools/install.sh), then run the test suite with pytest.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -m "not slow"` for the quick subset.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MMMASK_CACHE:-$HOME/.cache/mmmask}
PY=${MMMASK_VENV:-$CACHE/venv}/bin/python
bash "$REPO/tools/install.sh" --quiet
cd "$REPO"
# This checkout's code, even if another clone sharing the venv was installed into it last.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m pytest "${@:-tests}"
