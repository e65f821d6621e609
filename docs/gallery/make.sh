#!/usr/bin/env bash
# Remakes the README gallery with impasto's defaults at 512 px (the default size), timing each
# run. Run from the repository root: bash docs/gallery/make.sh
# The full-quality PNGs stay in out/gallery/ (benchmarks/bench_quality.py --saved scores them);
# docs/gallery/ gets JPEG copies for the README.
set -euo pipefail
IMPASTO=${IMPASTO:-.venv/bin/impasto}
PY=${PY:-.venv/bin/python}
out=docs/gallery
full=out/gallery
mkdir -p "$full"
"$PY" -c "
from impasto import imageio
imageio.save_image(imageio.resize_longest(imageio.load_image('examples/tubingen.jpg'), 512),
                   '$out/tubingen.jpg')"
for style in starry_night the_scream shipwreck; do
  start=$SECONDS
  "$IMPASTO" transfer examples/tubingen.jpg "examples/$style.jpg" -o "$full/tubingen_$style.png" \
    --seed 1 -q
  echo "tubingen_$style: $((SECONDS - start)) s"
  "$PY" -c "
from impasto import imageio
imageio.save_image(imageio.load_image('$full/tubingen_$style.png'), '$out/tubingen_$style.jpg')"
done
