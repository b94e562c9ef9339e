#!/usr/bin/env bash
# The project's test run (README "Install and run the tests", and .ci/run): expects lets_core
# installed with its compiled extension (`pip install --no-build-isolation ".[test]"`).
#   1. the suite with the compiled CPU kernels, which must be loaded (LETS_CORE_REQUIRE_EXTENSION),
#      compiling the Aux-Net once with the full inductor backend;
#      then every docstring example of the installed package (doctests);
#   2. the suite again on the pure-PyTorch fallback (LETS_CORE_DISABLE_EXTENSION=1);
#   3. a compile-only check of the CUDA sources for sm_90 (no GPU needed).
# Run from anywhere; tests import the installed package (plain `pytest`, never `python -m pytest`,
# which would put the source tree, without the compiled library, first on sys.path).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
start=$SECONDS

echo "== lets_core build (python -m lets_core.info)"
(cd "${TMPDIR:-/tmp}" && python -m lets_core.info)

echo "== pass 1/2: compiled extension"
LETS_CORE_REQUIRE_EXTENSION=1 LETS_CORE_COMPILE_BACKEND=inductor pytest tests -q -p no:cacheprovider

echo "== docstring examples of the installed package"
(cd "${TMPDIR:-/tmp}" && LETS_CORE_REQUIRE_EXTENSION=1 pytest --doctest-modules --pyargs lets_core -q -p no:cacheprovider)

echo "== pass 2/2: pure-PyTorch fallback"
LETS_CORE_DISABLE_EXTENSION=1 pytest tests -q -p no:cacheprovider

echo "== CUDA sources, compile-only for sm_90"
python tests/cuda_compile_check.py --arch 9.0 --jobs "${MAX_JOBS:-2}"

echo "== all checks passed in $((SECONDS - start)) s"
