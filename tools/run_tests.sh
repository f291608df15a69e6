#!/usr/bin/env bash
# Set up the environment if needed (tools/install.sh), then run the test suite with pytest.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -m "not slow"` for the quick subset.
#
# Without arguments the whole suite runs as two pytest processes side by side (MMMASK_TEST_SHARDS=2,
# the default; set it to 1 for one process): the slow end-to-end trainings run single-threaded,
# so on a 2-core machine a second shard uses the core the first leaves idle. Shard 2 holds the
# learning tests listed in SHARD2 (files with only slow tests, chosen so both shards take about
# as long); shard 1 everything else. The exit status is non-zero if either shard fails. Tests
# marked `extended` (slow runs another default test already covers) are left out of this run:
# `bash tools/run_tests.sh -m extended` runs them.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MMMASK_CACHE:-$HOME/.cache/mmmask}
PY=${MMMASK_VENV:-$CACHE/venv}/bin/python
bash "$REPO/tools/install.sh" --quiet
cd "$REPO"
# This checkout's code, even if another clone sharing the venv was installed into it last.
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
if [ $# -gt 0 ] || [ "${MMMASK_TEST_SHARDS:-2}" = 1 ]; then
  exec "$PY" -m pytest "${@:-tests}"
fi
SHARD2=()
for f in tests/test_models/test_{ppma,eco_m2f,polymax,hpm,gmml,mto,maskalign,cmae,hi_end_mae}_learns.py; do
  [ -f "$f" ] && SHARD2+=("$f")
done
IGNORE=()
for f in "${SHARD2[@]}"; do IGNORE+=("--ignore=$f"); done
log2=$(mktemp -t mmmask-shard2.XXXXXX.log)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
"$PY" -m pytest -p no:cacheprovider -m "not extended" "${SHARD2[@]}" >"$log2" 2>&1 &
pid2=$!
status1=0
echo "== shard 1: tests/ except ${#SHARD2[@]} learning-test files (shard 2 runs alongside, log: $log2)"
"$PY" -m pytest -m "not extended" tests "${IGNORE[@]}" || status1=$?
status2=0
wait "$pid2" || status2=$?
echo "== shard 2: ${SHARD2[*]}"
cat "$log2"
echo "== shard 1 exit $status1, shard 2 exit $status2"
[ "$status1" = 0 ] && [ "$status2" = 0 ]
