#!/usr/bin/env bash
# Build and run a test runner from just the given sources (plus tests/c/main.c
# and src/core/status.c), natively under ASan/UBSan, or as wasm under node with
# --wasm (SIMD128 + pthreads) or --wasm-st. For working on one module without
# depending on the rest of the tree compiling. Usage:
#   scripts/quicktest.sh [--wasm|--wasm-st] OUTDIR src/core/gguf.c tests/c/test_gguf.c ... [-- FILTER]
set -euo pipefail
cd "$(dirname "$0")/.."
mode=native
case "${1:-}" in --wasm) mode=wasm; shift;; --wasm-st) mode=wasm-st; shift;; esac
out=$1; shift
srcs=(); filter=""
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; filter="${1:-}"; break; fi
  srcs+=("$1"); shift
done
mkdir -p "$out"
tests=(); for s in "${srcs[@]}"; do case "$s" in tests/c/*) tests+=("$s");; esac; done
scripts/gen_tests.sh "${tests[@]}" > "$out/test_list.h"
all=(tests/c/main.c src/core/status.c "${srcs[@]}")
WARN="-fwrapv -std=c11 -Wall -Wextra -Werror -Wno-unused-function -D_GNU_SOURCE -I/usr/include/stb -I$out"
if [ $mode = native ]; then
  gcc $WARN -O1 -g -DOWL_USE_SIMDE -msse4.1 -DOWL_DEBUG -fsanitize=address,undefined \
      -fno-omit-frame-pointer -fno-sanitize-recover=undefined -o "$out/tests" "${all[@]}" -lm -lpthread
  "$out/tests" $filter
else
  flags="-msimd128"; [ $mode = wasm ] && flags="-msimd128 -pthread -sPTHREAD_POOL_SIZE=9"
  NODE_PATH=/usr/share/nodejs emcc $WARN -O2 $flags -sNODERAWFS=1 -sEXIT_RUNTIME=1 -sENVIRONMENT=node \
      -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -Wno-pthreads-mem-growth -o "$out/tests.js" "${all[@]}"
  node --no-experimental-fetch "$out/tests.js" $filter
fi
