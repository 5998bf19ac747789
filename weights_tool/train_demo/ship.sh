#!/bin/sh
# ship.sh - turn a trained demo checkpoint into models/demo/ (what the repo ships).
#
#   weights_tool/train_demo/ship.sh CKPT_DIR [OUT_DIR=models/demo] [TYPE=f16]
#
# The same path as the released 7B: owlet-convert CKPT_DIR -> GGUF (TYPE, name "owlet-demo"),
# then --split into 1 MiB chunks + manifest.json in OUT_DIR (old chunks there are removed first;
# MODEL_CARD.md and the sample files are kept). Needs build/owlet-convert (make native).
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 CKPT_DIR [OUT_DIR] [TYPE]" >&2
    exit 2
fi
CKPT=$1
OUT=${2:-models/demo}
TYPE=${3:-f16}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CONVERT=$ROOT/build/owlet-convert
[ -x "$CONVERT" ] || { echo "ship.sh: $CONVERT missing (run make native)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$CONVERT" "$CKPT" "$TMP/owlet-demo.gguf" --type "$TYPE" --name owlet-demo -q
mkdir -p "$OUT"
rm -f "$OUT"/*.bin "$OUT"/manifest.json
"$CONVERT" --split "$TMP/owlet-demo.gguf" "$OUT" --chunk-mib 1
echo "ship.sh: $OUT: $(du -sh "$OUT" | cut -f1) ($TYPE)"
