#!/usr/bin/env bash
# Every GPU claim of impasto in one run, on any machine with a CUDA GPU (no network needed):
#
#     bash benchmarks/gpu_check.sh OUTDIR                       # writes OUTDIR/gpu.md, gpu.json
#     bash benchmarks/gpu_check.sh OUTDIR --only speed,big      # some sections (see --help)
#     bash benchmarks/gpu_check.sh OUTDIR --device cpu --tiny   # the script itself, on a CPU
#
# It needs a Python with PyTorch. impasto and the packages that Python lacks are installed from
# the wheelhouse .whl/ when there is one (benchmarks/gpu_wheelhouse.sh builds it, for a machine
# that cannot reach PyPI) into a folder of their own, never into that Python; without .whl/ it
# runs with the packages that Python already has (e.g. after pip install '.[all,ray,test]').
# Exit status: 0 all met, 1 a check failed, 4 a target missed (benchmarks/gpu_check.py).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: bash benchmarks/gpu_check.sh OUTDIR [--device cpu] [--tiny] [--only SECTIONS]" >&2
    exit 2
fi
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "gpu_check: $PY has no PyTorch; install the build for this machine's CUDA first" >&2
    exit 1
fi
echo "torch: $("$PY" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')"
if ls .whl/*.whl >/dev/null 2>&1; then
    SITE=${IMPASTO_CHECK_SITE:-/tmp/impasto-check-site}
    rm -rf "$SITE" && mkdir -p "$SITE" || exit 1
    start=$(date +%s)
    quiet=(-q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check)
    # The wheels, and impasto from this working tree (setuptools comes with that Python).
    "$PY" -m pip install "${quiet[@]}" --no-build-isolation --target "$SITE" .whl/*.whl . || exit 1
    rm -rf build src/*.egg-info
    for t in .whl/*.tar.xz; do
        [ -e "$t" ] && { tar xJf "$t" -C "$SITE" || exit 1; }
    done
    # The working tree first: the tests find the bundled examples/ beside src/ (not in $SITE).
    export PYTHONPATH="$PWD/src:$SITE${PYTHONPATH:+:$PYTHONPATH}" PATH="$SITE/bin:$PATH"
    export IMPASTO_CHECK_SITE="$SITE"
    echo "installed from .whl/ into $SITE in $(($(date +%s) - start)) s"
fi
exec "$PY" benchmarks/gpu_check.py "$@"
