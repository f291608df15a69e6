#!/usr/bin/env bash
# Idempotent installer: brings a Python 3.11 virtual environment to the stack mmmask is tested on
# (requirements/stack.txt) and installs mmmask into it in editable mode.
#
#   bash tools/install.sh [--wheel-dir DIR] [--rebuild-mmcv] [--quiet]
#
# Environment:
#   MMMASK_CACHE      cache folder (default ~/.cache/mmmask): built mmcv wheels, the default venv
#   MMMASK_VENV       the virtual environment to create/update (default $MMMASK_CACHE/venv)
#   MMMASK_WHEEL_DIR  a folder that may hold a prebuilt mmcv-2.1.0 wheel (same as --wheel-dir)
#   PYTHON            the interpreter used to create the venv (default python3.11)
#
# mmcv 2.1.0 is installed WITH its compiled ops. Order of preference: an mmcv already in the venv
# whose ops load; a wheel in --wheel-dir; a wheel this script built before (cache); otherwise the
# PyPI sdist is built here (MMCV_WITH_OPS=1 FORCE_CUDA=0, --no-build-isolation, setuptools<82,
# -std=c++17 patched to -std=c++20 for torch>=2.14 headers; 30-50 min on 2 cores) and cached.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MMMASK_CACHE:-$HOME/.cache/mmmask}
VENV=${MMMASK_VENV:-$CACHE/venv}
WHEEL_DIR=${MMMASK_WHEEL_DIR:-}
PYTHON=${PYTHON:-python3.11}
REBUILD=0
QUIET=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheel-dir) WHEEL_DIR=$2; shift 2 ;;
    --wheel-dir=*) WHEEL_DIR=${1#*=}; shift ;;
    --rebuild-mmcv) REBUILD=1; shift ;;
    --quiet) QUIET=1; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

TORCH_VER=2.14.1
MMCV_VER=2.1.0
BUILT_WHEELS=$CACHE/wheels/mmcv-$MMCV_VER-torch$TORCH_VER
mkdir -p "$CACHE" "$BUILT_WHEELS"
log() { echo "[mmmask install] $*" >&2; }
t0=$(date +%s)

# One installer at a time per cache (tests and the quickstart may call this concurrently).
exec 9>"$CACHE/install.lock"
flock 9

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "install.sh: '$PYTHON' not found; mmmask needs CPython 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY=$VENV/bin/python
PIP=("$PY" -m pip --disable-pip-version-check)
[ "$QUIET" = 1 ] && PIP+=(-q)

# The stack signature: when nothing it covers changed and the imports work, skip straight to mmmask.
SIG=$(cat "$REPO"/requirements/{stack,runtime,tests,nodeps}.txt \
      "$REPO/tools/install.sh" | sha256sum | cut -c1-16)
STAMP=$VENV/.mmmask-stack
stack_ok() {
  "$PY" - <<'EOF' >/dev/null 2>&1
import mmcv, mmcv._ext, mmengine, mmdet, mmseg, mmpretrain, torch, torchvision, sklearn, pytest
import panopticapi.evaluation, ftfy
assert torch.__version__.split('+')[0] == '2.14.1' and mmcv.__version__ == '2.1.0'
EOF
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SIG" ] && [ "$REBUILD" = 0 ] && stack_ok; then
  log "stack already installed in $VENV (signature $SIG)"
else
  CONSTRAINTS=$CACHE/constraints.txt
  grep -v '^#' "$REPO/requirements/stack.txt" | sed '/^$/d' > "$CONSTRAINTS"
  PIPC=("${PIP[@]}" install -c "$CONSTRAINTS")

  log "build tools"
  "${PIPC[@]}" "setuptools<82" wheel ninja psutil packaging
  log "torch $TORCH_VER + torchvision"
  "${PIPC[@]}" torch torchvision
  log "mmengine + pure-Python runtime and test requirements"
  "${PIPC[@]}" mmengine -r "$REPO/requirements/runtime.txt" -r "$REPO/requirements/tests.txt"

  mmcv_ok() { "$PY" -c "import mmcv, mmcv._ext; assert mmcv.__version__ == '$MMCV_VER'" >/dev/null 2>&1; }
  install_wheel() { "${PIP[@]}" install --no-deps --force-reinstall "$1" && "${PIPC[@]}" mmcv && mmcv_ok; }
  if [ "$REBUILD" = 0 ] && mmcv_ok; then
    log "mmcv $MMCV_VER with ops already installed"
  else
    done_mmcv=0
    for dir in ${WHEEL_DIR:+"$WHEEL_DIR"} "$BUILT_WHEELS"; do
      [ "$REBUILD" = 1 ] && break
      for whl in "$dir"/mmcv-$MMCV_VER-cp311-*.whl; do
        [ -f "$whl" ] || continue
        if [ -f "$dir/SHA256SUMS" ] && ! (cd "$dir" && grep "$(basename "$whl")" SHA256SUMS | sha256sum -c --quiet -); then
          log "checksum mismatch for $whl, ignoring it"; continue
        fi
        log "installing prebuilt $whl"
        if install_wheel "$whl"; then done_mmcv=1; break 2; fi
        log "$whl does not load against this torch; trying the next option"
      done
    done
    if [ "$done_mmcv" = 0 ]; then
      log "building mmcv $MMCV_VER with CPU ops from the sdist (30-50 min on 2 cores; cached afterwards)"
      build=$(mktemp -d "$CACHE/mmcv-build.XXXXXX")
      "${PIP[@]}" download --no-deps --no-binary :all: --no-build-isolation -d "$build" "mmcv==$MMCV_VER"
      tar -xzf "$build"/mmcv-$MMCV_VER.tar.gz -C "$build"
      src=$build/mmcv-$MMCV_VER
      # torch>=2.14 headers refuse to compile below C++20; mmcv's setup.py hard-codes c++17.
      sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py"
      grep -q -- '-std=c++20' "$src/setup.py" || { echo "install.sh: could not patch the C++ standard in mmcv's setup.py" >&2; exit 1; }
      (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "${PIP[@]}" wheel --no-deps --no-build-isolation -w "$BUILT_WHEELS" .)
      rm -rf "$build"
      install_wheel "$BUILT_WHEELS"/mmcv-$MMCV_VER-cp311-*.whl || { echo "install.sh: the freshly built mmcv does not load" >&2; exit 1; }
    fi
  fi

  log "mmdet, mmsegmentation, mmpretrain"
  "${PIPC[@]}" mmdet mmsegmentation mmpretrain
  "${PIP[@]}" install --no-deps -r "$REPO/requirements/nodeps.txt"
  stack_ok || { echo "install.sh: the stack does not import; see the messages above" >&2; exit 1; }
  echo "$SIG" > "$STAMP"
fi

# mmmask itself, editable, from this checkout (re-pointed when another clone installed it before).
where=$(cd / && "$PY" -c "import mmmask, os; print(os.path.dirname(os.path.dirname(os.path.abspath(mmmask.__file__))))" 2>/dev/null || true)
if [ "$where" != "$REPO" ]; then
  log "installing mmmask (editable) from $REPO"
  "${PIP[@]}" install -q --no-deps --no-build-isolation -e "$REPO"
fi
log "done in $(( $(date +%s) - t0 )) s"
(cd / && "$PY" -c "from mmmask.utils.collect_env import main; main()")
