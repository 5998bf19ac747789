#!/usr/bin/env bash
# valgrind.sh - the native CLI under valgrind memcheck: one image answer with the
# oracle-A model must report no errors and no leaks.
#
#   bash tests/valgrind.sh            (after `make native test-fixtures`)
#   OWLET_BIN=build/owlet MODEL=... IMAGE=... N=8 bash tests/valgrind.sh
#
# Exit status 0 when memcheck found nothing (errors exit 99, leaks are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${OWLET_BIN:-build/owlet}
MODEL=${MODEL:-build/test-out/oracle_a_f32.gguf}
IMAGE=${IMAGE:-tests/fixtures/oracle_a/img1.png}
N=${N:-8}
LOG=${LOG:-build/reliab/valgrind.log}
mkdir -p "$(dirname "$LOG")"
for f in "$BIN" "$MODEL" "$IMAGE"; do
  [[ -f $f ]] || { echo "valgrind.sh: missing $f (make native test-fixtures)" >&2; exit 2; }
done
set +e
valgrind --tool=memcheck --error-exitcode=99 --leak-check=full --show-leak-kinds=all \
  --errors-for-leak-kinds=all --track-origins=yes --log-file="$LOG" \
  "$BIN" --model "$MODEL" --image "$IMAGE" --prompt 'Describe the image.' --n-predict "$N" --temp 0 --threads 2
rc=$?
set -e
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|All heap blocks' "$LOG" || true
if [[ $rc -ne 0 ]]; then echo "valgrind.sh: FAILED (exit $rc), see $LOG"; exit 1; fi
echo "valgrind.sh: no errors, no leaks"
