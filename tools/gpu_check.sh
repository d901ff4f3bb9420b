#!/usr/bin/env bash
# One-shot GPU check of mmdice on a bare CUDA machine (see ../shared/GPU.md):
# Python 3.12, torch, nvcc, pytest, no OpenMMLab packages, no network.
#
#   bash tools/gpu_check.sh            # logs and results go to $OUT (default: ./gpu_check_out)
#
# Steps (each logged to its own file; a failing step does not stop the others):
#   1. nvidia-smi and the software versions            -> env.txt
#   2. pure-Python wheels from wheels-py312/ (if any)   -> pydeps.log   (installed into $PYDEPS)
#   3. build mmdice._ext with the CUDA kernels          -> build.log
#   4. fused op vs. reference at DiCENet-sized shapes   -> op_check.log
#   5. pytest tests/test_ops                            -> pytest_ops.log, pytest_ops.xml
#   6. backbone tests (needs mmengine + mmcv)           -> pytest_backbone.log
#   7. benchmarks/bench_dim_conv.py on CUDA             -> bench_fp32.md, bench_fp16.md
# and summary.txt with the status and duration of every step.
#
# Environment: OUT, PYDEPS (default /tmp/mmdice_pydeps, kept out of $OUT so the
# installed packages are not copied back), TORCH_CUDA_ARCH_LIST (default: the
# GPU's own), PYTHON (default python3), and <STEP>_TIMEOUT in seconds for
# BUILD, OP_CHECK, TEST_OPS, TEST_BACKBONE and BENCH.
set -x
set -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
OUT="${OUT:-$ROOT/gpu_check_out}"
PYDEPS="${PYDEPS:-/tmp/mmdice_pydeps}"
PYTHON="${PYTHON:-python3}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

# run_step NAME TIMEOUT LOG COMMAND...: runs COMMAND with a time limit, output to $OUT/LOG.
run_step() {
  local name="$1" limit="$2" log_name="$3"
  local log="$OUT/$log_name"
  shift 3
  local start status
  start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  status=$?
  local verdict=ok
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then verdict="TIMEOUT after ${limit}s"
  elif [ "$status" -ne 0 ]; then verdict="FAILED (exit $status)"; fi
  printf '%-16s %-24s %4ss  %s\n' "$name" "$verdict" "$(( $(date +%s) - start ))" \
    "$log_name" >> "$SUMMARY"
  return "$status"
}

skip_step() {
  printf '%-16s %-24s        %s\n' "$1" "skipped" "$2" >> "$SUMMARY"
}

# 1. Machine and versions.
{
  date -u
  nvidia-smi
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  nvcc --version
  "$PYTHON" -c "import sys, torch; print(sys.version); print('torch', torch.__version__, \
'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name(0), \
'capability', torch.cuda.get_device_capability(0))"
  nproc
} > "$OUT/env.txt" 2>&1

# 2. mmengine / mmcv-lite and friends for the backbone (pure Python wheels).
if [ -d "$ROOT/wheels-py312" ] && ls "$ROOT"/wheels-py312/*.whl > /dev/null 2>&1; then
  rm -rf "$PYDEPS"
  run_step pydeps 300 pydeps.log \
    "$PYTHON" -m pip install --no-index --no-deps --target "$PYDEPS" "$ROOT"/wheels-py312/*.whl
  export PYTHONPATH="$PYDEPS${PYTHONPATH:+:$PYTHONPATH}"
else
  skip_step pydeps "no wheels-py312/ folder"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# 3. Build the extension in place (CPU + CUDA kernels). A failed setup.py
# build falls back to torch.utils.cpp_extension.load on the same sources.
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
  TORCH_CUDA_ARCH_LIST="$("$PYTHON" -c "import torch; print('%d.%d' % \
torch.cuda.get_device_capability(0))" 2>/dev/null || echo 9.0)"
fi
# torch guesses CUDA_HOME from the nvcc on PATH, which can be a wrapper outside
# the toolkit (the linker then misses libcudart): prefer the toolkit folder.
if [ -z "${CUDA_HOME:-}" ]; then
  if [ -x /usr/local/cuda/bin/nvcc ]; then
    CUDA_HOME=/usr/local/cuda
  elif command -v nvcc > /dev/null 2>&1; then
    CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
  fi
fi
export CUDA_HOME TORCH_CUDA_ARCH_LIST FORCE_CUDA=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
rm -f "$ROOT"/mmdice/_ext*.so
build_with_setup_py() {
  "$PYTHON" setup.py build_ext --inplace
}
build_with_torch_load() {
  "$PYTHON" - <<'PY'
import glob, os, shutil, sysconfig
from torch.utils.cpp_extension import load
sources = sorted(glob.glob('csrc/pytorch/*.cpp') + glob.glob('csrc/pytorch/cpu/*.cpp')
                 + glob.glob('csrc/pytorch/cuda/*.cu'))
build_dir = os.path.abspath('build/torch_load')
os.makedirs(build_dir, exist_ok=True)
load(name='_ext', sources=sources, extra_include_paths=[os.path.abspath('csrc')],
     extra_cflags=['-O3', '-fopenmp', '-DWITH_CUDA'], extra_ldflags=['-fopenmp'],
     extra_cuda_cflags=['-O3', '--use_fast_math', '-lineinfo', '-DWITH_CUDA'],
     build_directory=build_dir, is_python_module=False, verbose=True)
target = os.path.join('mmdice', '_ext' + sysconfig.get_config_var('EXT_SUFFIX'))
shutil.copy(os.path.join(build_dir, '_ext.so'), target)
print('copied to', target)
PY
}
export PYTHON
export -f build_with_setup_py build_with_torch_load
run_step build "${BUILD_TIMEOUT:-300}" build.log bash -c build_with_setup_py \
  || run_step build-fallback "${BUILD_TIMEOUT:-300}" build_fallback.log \
    bash -c build_with_torch_load
"$PYTHON" -c "import torch, mmdice.ops as ops; assert ops.EXT_AVAILABLE; \
print(torch._C._dispatch_dump('mmdice::dim_conv'))" > "$OUT/ext_import.log" 2>&1
EXT_OK=$?

# 4. Fused op against the reference at the shapes DiCENet runs (larger than the
# unit tests: several reduction chunks, k = 3, 5 and the generic k = 7 path).
op_check() {
  "$PYTHON" - <<'PY'
import itertools, time
import torch
from mmdice.ops.dim_conv import dim_conv_reference

device = 'cuda'
failures = 0
cases = [
    # batch, channels, height, width, kernel size, dilation (depth, height, width)
    (32, 116, 28, 28, 3, (1, 1, 1)),
    (32, 464, 7, 7, 3, (1, 1, 1)),
    (8, 232, 14, 14, 5, (1, 2, 3)),
    (4, 64, 17, 9, 7, (2, 1, 1)),
    (2, 40, 56, 56, 3, (1, 1, 1)),
    (1, 3, 1, 1, 3, (1, 1, 1)),
]
tolerances = {torch.float64: 1e-10, torch.float32: 1e-4, torch.float16: 1e-2,
              torch.bfloat16: 5e-2}
for (n, c, h, w, k, dilation), dtype in itertools.product(cases, tolerances):
    generator = torch.Generator().manual_seed(n + c + h + w + k)
    # Rounded to dtype first, so the float64 reference sees the same values.
    x, wd, wh, ww, go = [
        (torch.randn(*shape, generator=generator, dtype=torch.float64) / scale).to(device, dtype)
        for shape, scale in (((n, c, h, w), 1), ((c, 1, k, k), k), ((h, 1, k, k), k),
                             ((w, 1, k, k), k), ((n, 3 * c, h, w), 1))]
    leaves = [t.double().requires_grad_() for t in (x, wd, wh, ww)]
    expected = dim_conv_reference(*leaves, dilation)
    expected_grads = torch.autograd.grad(expected, leaves, go.double())
    torch.cuda.synchronize()
    start = time.perf_counter()
    output = torch.ops.mmdice.dim_conv(x, wd, wh, ww, list(dilation))
    grads = torch.ops.mmdice.dim_conv_backward(go, x, wd, wh, ww, list(dilation), [True] * 4)
    again = torch.ops.mmdice.dim_conv_backward(go, x, wd, wh, ww, list(dilation), [True] * 4)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    report = []
    for name, got, want in zip(('output', 'grad_input', 'grad_weight_depth',
                                'grad_weight_height', 'grad_weight_width'),
                               (output, *grads), (expected, *expected_grads)):
        scale = max(1.0, want.abs().max().item())
        error = (got.double() - want.detach()).abs().max().item() / scale
        report.append(f'{name}={error:.2e}')
        if not error <= tolerances[dtype]:
            failures += 1
            report[-1] += ' FAIL'
    deterministic = all(torch.equal(a, b) for a, b in zip(grads, again))
    failures += not deterministic
    print(f'{(n, c, h, w)} k={k} d={dilation} {str(dtype)[6:]:8s} {elapsed * 1e3:7.2f} ms '
          f'deterministic={deterministic} ' + ' '.join(report), flush=True)
print('FAILURES:', failures)
raise SystemExit(1 if failures else 0)
PY
}
if [ "$EXT_OK" -eq 0 ]; then
  export -f op_check
  run_step op-check "${OP_CHECK_TIMEOUT:-120}" op_check.log bash -c op_check
else
  skip_step op-check "mmdice._ext did not load (ext_import.log)"
fi

# 5. The op's unit tests (CPU and CUDA parameterisations).
run_step test-ops "${TEST_OPS_TIMEOUT:-240}" pytest_ops.log \
  "$PYTHON" -m pytest tests/test_ops -v -p no:cacheprovider --junitxml="$OUT/pytest_ops.xml"

# 6. Backbone tests (include a CUDA-vs-CPU test) where mmengine and mmcv import.
if "$PYTHON" -c "import mmengine, mmcv.cnn" > "$OUT/backbone_imports.log" 2>&1; then
  run_step test-backbone "${TEST_BACKBONE_TIMEOUT:-180}" pytest_backbone.log \
    "$PYTHON" -m pytest tests/test_models/test_backbones -v -p no:cacheprovider \
    --junitxml="$OUT/pytest_backbone.xml"
else
  skip_step test-backbone "mmengine/mmcv.cnn not importable (backbone_imports.log)"
fi

# 7. Benchmarks: fused vs. the authors' unfused DimConv.
run_step bench-fp32 "${BENCH_TIMEOUT:-120}" bench_fp32.md \
  "$PYTHON" benchmarks/bench_dim_conv.py --device cuda --batch 1 32 --markdown
run_step bench-fp16 "${BENCH_TIMEOUT:-120}" bench_fp16.md \
  "$PYTHON" benchmarks/bench_dim_conv.py --device cuda --batch 1 32 --dtype float16 --markdown

set +x
{
  echo
  grep -h -E "^(FAILED|ERROR)|[0-9]+ (passed|failed)" "$OUT"/pytest_*.log 2>/dev/null
  tail -n 1 "$OUT/op_check.log" 2>/dev/null
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  "$PYTHON" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda)"
  echo "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST CUDA_HOME=$CUDA_HOME"
} >> "$SUMMARY" 2>&1
cat "$SUMMARY"
! grep -q -E "FAILED|TIMEOUT" "$SUMMARY"
