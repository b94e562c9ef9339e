#!/usr/bin/env bash
# One prepared run for the lent GPU machine (its own python3 with torch 2.11 + CUDA 13.0, nvcc,
# pytest, hypothesis, timm; no network). From the repository root:
#     bash benchmarks/gpu_check.sh
# Builds lets_core._C in place with the CUDA kernels, runs the test suite with
# LETS_CORE_REQUIRE_EXTENSION=1 (a missing kernel fails instead of falling back), then the op
# benchmarks on CUDA. Everything goes under $OUT (default ./gpu_out): build log, info, test log,
# benchmark table and JSON. Exits non-zero if the build or the tests fail (benchmarks still run).
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$REPO/gpu_out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
cd "$REPO"
export HF_HUB_OFFLINE=1 PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export MAX_JOBS=${MAX_JOBS:-$(nproc)} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
status=0

{ nvidia-smi; "$PY" -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"; } \
  > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"

echo "== build (FORCE_CUDA=1, archs $TORCH_CUDA_ARCH_LIST, $MAX_JOBS jobs)"
start=$SECONDS
if ! FORCE_CUDA=1 "$PY" setup.py build_ext --inplace > "$OUT/build.log" 2>&1; then
  tail -60 "$OUT/build.log"; echo "BUILD FAILED"; exit 1
fi
echo "built in $((SECONDS - start)) s"
(cd /tmp && "$PY" -m lets_core.info) 2>&1 | tee "$OUT/info.txt"

echo "== GPU-relevant tests with LETS_CORE_REQUIRE_EXTENSION=1"
start=$SECONDS
# In-place build: the source tree is the package here, so `python -m pytest` is what we want.
# The op and extension tests run on every visible device (test_ops_checks.py also compares the
# device-mismatch messages of both kernels); the invariants and the generation test check the
# Aux-Net and Des-Net generation end to end. Data/training/CLI tests are CPU-only and run in CI.
LETS_CORE_REQUIRE_EXTENSION=1 timeout 300 "$PY" -m pytest -q -p no:cacheprovider \
  tests/test_ops_*.py \
  tests/test_extension.py tests/test_invariants.py tests/test_generation.py tests/test_des_family.py \
  > "$OUT/tests.log" 2>&1 || status=1
tail -25 "$OUT/tests.log"
echo "tests took $((SECONDS - start)) s, status $status"

echo "== benchmarks (CUDA)"
timeout 150 "$PY" benchmarks/bench_ops.py --device cuda --min-run-time 0.5 --rounds 3 --json "$OUT/bench_cuda.json" \
  2>&1 | tee "$OUT/bench_cuda.txt" || status=1
timeout 150 "$PY" benchmarks/bench_train_step.py --config paper --device cuda --batch 128 --min-time 2 --rounds 1 \
  --json "$OUT/train_step_cuda.json" 2>&1 | tee "$OUT/train_step_cuda.txt" || status=1
timeout 120 "$PY" benchmarks/bench_emit.py --device cuda --repeats 2 --json "$OUT/emit_cuda.json" \
  2>&1 | tee "$OUT/emit_cuda.txt" || status=1
exit $status
