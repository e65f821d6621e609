#!/usr/bin/env bash
# Remakes every picture of docs/experiments.md with the real command line, on the test images in
# ../shared/images (the full-size originals of examples/). Run from the repository root:
#     bash docs/experiments/make.sh            # all of them, about 25 CPU minutes on 2 cores
#                                              # (and the spatial ones 10-30 more)
#     bash docs/experiments/make.sh grid       # only the ones whose name contains "grid"
# Each command's wall-clock time is printed as it finishes.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE  # shared CPUs: don't spin-wait
IMPASTO=${IMPASTO:-.venv/bin/impasto}
IMAGES=${IMAGES:-../shared/images}
out=docs/experiments
only=${1:-}

run() {  # run NAME ARGS...: time one impasto command, unless a filter excludes it
  local name=$1
  shift
  [[ -z $only || $name == *$only* ]] || return 0
  local start=$SECONDS
  "$IMPASTO" "$@" -q
  echo "$name: $((SECONDS - start)) s"
}

# Figure 4 (KTH report), top: content reconstructions from white noise, one layer each.
run content reconstruct content "$IMAGES/tubingen.jpg" -o "$out/content_tubingen.jpg" \
  --size 192 --iterations 250 --seed 1
# Figure 4, bottom: style reconstructions from the Gram matrices of conv1_1, conv1_1+conv2_1, ...
run style reconstruct style "$IMAGES/starry_night.jpg" -o "$out/style_starry_night.jpg" \
  --size 192 --iterations 250 --seed 1
# Figure 5: rows = growing style-layer sets, columns = α/β from 1e-5 to 1e-1.
run grid grid "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" -o "$out/grid.jpg" \
  --size 128 --iterations 100 --seed 1
# Colour preservation: the same transfer plain, luminance-only and histogram-matched.
for mode in none luminance histogram; do
  run "colour_$mode" transfer "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" \
    -o "$out/colour_$mode.jpg" --size 256 --iterations 150 --seed 1 --preset paper --init content --preserve-colors "$mode"
done
# The normalised network with its own default β (the plain run above is its counterpart).
run normalized transfer "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" \
  -o "$out/normalized.jpg" --size 256 --iterations 150 --seed 1 --preset paper --init content \
  --normalize-network
# Spatial control (Gatys et al. 2017): the default preset at 384 px, 200 iterations.
# The masks: the sky of Tübingen and the rest (scripts/sky_mask.py; committed).
if [[ -z $only || spatial == *$only* ]]; then
  .venv/bin/python scripts/sky_mask.py examples/tubingen.jpg "$out/tubingen_sky.png" \
    "$out/tubingen_ground.png" --size 512
fi
spatial=(--size 384 --iterations 200 --seed 1)
# Without control: both paintings blended over the whole picture.
run spatial_plain transfer "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" \
  "$IMAGES/the_scream.jpg" -o "$out/spatial_plain.jpg" "${spatial[@]}"
# With control: the sky from The Starry Night, the rest from The Scream.
run spatial_guided transfer "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" \
  "$IMAGES/the_scream.jpg" -o "$out/spatial_guided.jpg" "${spatial[@]}" \
  --masks "$out/tubingen_sky.png,$out/tubingen_ground.png"
# Scale control, at 256 px and 150 iterations (one scale): The Starry Night's shapes
# (conv3_1-conv5_1), The Scream's strokes and colours (conv1_1, conv2_1).
scale=(--size 256 --iterations 150 --seed 1)
run spatial_fine transfer "$IMAGES/tubingen.jpg" "$IMAGES/starry_night.jpg" \
  --fine-style "$IMAGES/the_scream.jpg" -o "$out/spatial_fine.jpg" "${scale[@]}"
run spatial_mix mix-styles "$IMAGES/starry_night.jpg" "$IMAGES/the_scream.jpg" \
  -o "$out/spatial_mix.jpg" "${scale[@]}"
# The figure: the panels above, labelled, in one picture.
if [[ -z $only || spatial == *$only* ]]; then
  .venv/bin/python scripts/spatial_figure.py "$IMAGES" "$out"
fi
