#!/usr/bin/env bash
# Set up the environment if needed (tools/install.sh), then run the test suite with pytest.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -m "not slow"` for the quick subset.
#
# Without arguments the whole suite runs except the tests marked `extended` (slow runs whose
# evidence another default test already covers; `bash tools/run_tests.sh -m extended` runs them),
# as MMMASK_TEST_WORKERS (default 2) pytest-xdist workers, each taking whole test files
# (`--dist loadfile`), one torch thread each: most of the time goes into single-threaded toy
# trainings, so two workers keep both cores of a 2-core machine busy. MMMASK_TEST_WORKERS=1 runs
# one plain pytest process.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MMMASK_CACHE:-$HOME/.cache/mmmask}
PY=${MMMASK_VENV:-$CACHE/venv}/bin/python
bash "$REPO/tools/install.sh" --quiet
cd "$REPO"
# This checkout's code, even if another clone sharing the venv was installed into it last.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if [ $# -gt 0 ]; then
  exec "$PY" -m pytest "$@"
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
WORKERS=${MMMASK_TEST_WORKERS:-2}
if [ "$WORKERS" = 1 ]; then
  exec "$PY" -m pytest -m "not extended" --durations=40 tests
fi
exec "$PY" -m pytest -n "$WORKERS" --dist loadfile -m "not extended" --durations=40 tests
