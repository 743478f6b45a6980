#!/usr/bin/env bash
# Writes small seed images for fuzz_media into OUTDIR (fast: libvips' CLI,
# 24x16 noise in every format Mastodon accepts, plus a TIFF it refuses and
# an image with EXIF orientation). scripts/fuzz adds the whole generated
# test corpus (test/fixtures/make-fixtures.sh) on top.
#   fuzz/media-seeds.sh OUTDIR
set -euo pipefail
out=${1:?usage: media-seeds.sh OUTDIR}
mkdir -p "$out"
for e in jpg png webp gif avif heic tif; do
  vips gaussnoise "$out/noise.$e" 24 16
done
# colour, alpha, EXIF orientation 6
vips gaussnoise "$out/.n.v" 20 12 --mean 128 --sigma 60
vips bandjoin "$out/.n.v $out/.n.v $out/.n.v $out/.n.v" "$out/rgba.png"
vips copy "$out/.n.v" "$out/orient6.jpg[strip=false]"
if command -v exiftool >/dev/null; then
  exiftool -q -overwrite_original -Orientation=6 -n -GPSLatitude=48.85 -Comment=R2BSECRET "$out/orient6.jpg"
fi
rm -f "$out/.n.v"
