#!/usr/bin/env bash
# Remakes the README gallery with impasto's defaults (only size and iterations lowered so it runs
# on a laptop CPU in about ten minutes). Run from the repository root: bash docs/gallery/make.sh
set -euo pipefail
IMPASTO=${IMPASTO:-.venv/bin/impasto}
out=docs/gallery
.venv/bin/python -c "
from impasto import imageio
imageio.save_image(imageio.resize_longest(imageio.load_image('examples/tubingen.jpg'), 320),
                   '$out/tubingen.jpg')"
for style in starry_night the_scream shipwreck; do
  "$IMPASTO" transfer examples/tubingen.jpg "examples/$style.jpg" -o "$out/tubingen_$style.jpg" \
    --size 320 --iterations 200 --seed 1 -q
done
