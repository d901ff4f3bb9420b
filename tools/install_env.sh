#!/usr/bin/env bash
# Creates (or updates) the project's virtual environment with the pinned
# OpenMMLab stack, then builds mmdice's extension into it.
#
# Idempotent: a stamp inside the venv records the requirement files it was
# made from, so a second run only rebuilds the extension (incrementally).
#
# Environment:
#   VENV                 venv folder                        (default: .venv)
#   PYTHON               interpreter that creates the venv  (default: python3.11, else python3)
#   TORCH_SPEC           torch requirement(s)               (default: torch==2.14.1 torchvision==0.29.1)
#   MMDICE_WHEEL_CACHE   where a locally built mmcv wheel is kept (default: ~/.cache/mmdice/wheels)
#   MMDICE_SHARED_WHEELS extra folder of prebuilt wheels    (default: ../shared/wheels)
#   FORCE_CUDA=1         also compile the CUDA kernels (torch must be a CUDA build)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
WHEEL_CACHE="${MMDICE_WHEEL_CACHE:-$HOME/.cache/mmdice/wheels}"
SHARED_WHEELS="${MMDICE_SHARED_WHEELS:-$ROOT/../shared/wheels}"
MMCV_VERSION=2.1.0

if [ -z "${PYTHON:-}" ]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PY="$ROOT/$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check -q)
mkdir -p "$WHEEL_CACHE"
FIND_LINKS=(--find-links "$WHEEL_CACHE")
[ -d "$SHARED_WHEELS" ] && FIND_LINKS+=(--find-links "$SHARED_WHEELS")

stamp_of() {
  cat "$ROOT"/requirements/*.txt "$ROOT/tools/install_env.sh" | sha256sum | cut -c1-16
  echo "$TORCH_SPEC"
}
STAMP="$VENV/.mmdice-deps"
WANT="$(stamp_of)"

mmcv_ops_work() {
  "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'; mmcv.ops.nms" \
    >/dev/null 2>&1
}

# mmcv 2.1.0 only ships an sdist whose setup.py pins -std=c++17; torch builds that
# compile extensions as C++20 need the flag rewritten. Build once, cache the wheel.
build_mmcv_wheel() {
  local work
  work="$(mktemp -d)"
  echo "[install] building mmcv $MMCV_VERSION with ops from source (20-45 min on 2 cores)"
  "$PY" -m pip download -q --no-deps --no-binary :all: -d "$work" "mmcv==$MMCV_VERSION"
  tar -xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
  if "$PY" - <<'PY'
import inspect, sys
import torch.utils.cpp_extension as ext
sys.exit(0 if '-std=c++20' in inspect.getsource(ext) else 1)
PY
  then
    sed -i -e 's/-std=c++17/-std=c++20/g' -e 's#/std:c++17#/std:c++20#g' \
      "$work/mmcv-$MMCV_VERSION/setup.py"
  fi
  MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$PY" -m pip wheel -q --no-build-isolation \
    --no-deps -w "$WHEEL_CACHE" "$work/mmcv-$MMCV_VERSION"
  rm -rf "$work"
}

install_stack() {
  "${PIP[@]}" "${FIND_LINKS[@]}" --only-binary mmcv "mmcv==$MMCV_VERSION" \
    -r requirements/runtime.txt -r requirements/mminstall.txt -r requirements/tests.txt
}

if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "[install] installing the pinned stack into $VENV"
  "${PIP[@]}" -r requirements/build.txt $TORCH_SPEC
  # A prebuilt mmcv wheel (cache or shared folder) is used when it loads beside this torch.
  if ! install_stack || ! mmcv_ops_work; then
    "$PY" -m pip uninstall -q -y mmcv >/dev/null 2>&1 || true
    build_mmcv_wheel
    "${PIP[@]}" --no-index --no-deps --force-reinstall --find-links "$WHEEL_CACHE" "mmcv==$MMCV_VERSION"
    install_stack
  fi
  mmcv_ops_work || { echo "[install] mmcv.ops does not load" >&2; exit 1; }
  "${PIP[@]}" --no-build-isolation --no-deps -e .
  echo "$WANT" > "$STAMP"
fi

echo "[install] building mmdice._ext (FORCE_CUDA=${FORCE_CUDA:-0})"
"$PY" setup.py -q build_ext --inplace 2>&1 | grep -v -e "^W[0-9]* " -e "UserWarning" || true
"$PY" -c "import torch, mmdice._ext" || { echo "[install] mmdice._ext failed to build" >&2; exit 1; }
