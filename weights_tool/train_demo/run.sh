#!/bin/sh
# run.sh - the whole demo-model pipeline: port check -> samples -> tokenizer -> train -> eval.
#
#   weights_tool/train_demo/run.sh OUTDIR [train.py options, e.g. --steps 4000 --max-minutes 50]
#
# Writes OUTDIR/stage1/ (vision tower + abstractor pretrained alone, pretrain_vision.py),
# OUTDIR/model/ (HF-style checkpoint: config.json, pytorch_model.bin, model.safetensors,
# tokenizer.model, ...), OUTDIR/eval.json + OUTDIR/eval_images/ (300 held-out items),
# OUTDIR/samples/ (16 example pictures). Fixed seeds; progress on stdout.
# THREADS (default 1) sets torch and OpenBLAS threads (a second thread gains only ~20 % on these
# small matrices: better to train two runs side by side). STAGE1_MINUTES (default 34) and
# STAGE1_LR (default 1e-3) set stage 1; the options go to train.py (stage 2).
#
# Speed: Debian's python3-torch calls the system libblas.so.3, which is netlib's reference BLAS
# unless OpenBLAS is installed; that is ~15x slower. This script uses OpenBLAS from
# $OWL_OPENBLAS_DIR, else the Debian package's directory if installed, without changing the
# system. To get it without installing anything system-wide:
#   apt-get download libopenblas0-pthread && dpkg -x libopenblas0-pthread_*.deb /tmp/openblas
#   OWL_OPENBLAS_DIR=/tmp/openblas/usr/lib/x86_64-linux-gnu/openblas-pthread weights_tool/train_demo/run.sh OUT
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 OUTDIR [train.py options]" >&2
    exit 2
fi
OUT=$1
shift
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3
THREADS=${THREADS:-1}
BLAS=${OWL_OPENBLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-pthread}
if [ -e "$BLAS/libblas.so.3" ]; then
    LD_LIBRARY_PATH="$BLAS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export LD_LIBRARY_PATH
    echo "run.sh: OpenBLAS from $BLAS"
else
    echo "run.sh: warning: no OpenBLAS found ($BLAS); training will be ~15x slower (see the header)" >&2
fi
OPENBLAS_NUM_THREADS=$THREADS
OMP_NUM_THREADS=$THREADS
export OPENBLAS_NUM_THREADS OMP_NUM_THREADS
mkdir -p "$OUT"
START=$(date +%s)
echo "== 1/6 port check (oracle A through model.py)"
$PY "$HERE/check_port.py"
echo "== 2/6 sample pictures"
$PY "$HERE/shapes.py" --out "$OUT/samples" --n 16
echo "== 3/6 tokenizer"
$PY "$HERE/train_tokenizer.py" --out "$OUT/model"
echo "== 4/6 stage 1: vision tower + abstractor alone"
$PY "$HERE/pretrain_vision.py" --out "$OUT/stage1" --tokenizer "$OUT/model/tokenizer.model" \
    --minutes "${STAGE1_MINUTES:-34}" --lr "${STAGE1_LR:-1e-3}" --threads "$THREADS"
echo "== 5/6 stage 2: the whole model"
$PY "$HERE/train.py" --out "$OUT/model" --init "$OUT/stage1" --threads "$THREADS" "$@"
echo "== 6/6 evaluation (300 held-out items)"
$PY "$HERE/eval.py" --model "$OUT/model" --out "$OUT/eval.json" --images "$OUT/eval_images" --threads "$THREADS"
echo "run.sh: done in $(( $(date +%s) - START )) s: $OUT/model, $OUT/eval.json"
