#!/usr/bin/env bash
# bench/run.sh - all benchmarks (`make bench` runs it after building the kernel
# benchmark and the wasm engine):
#   1. kernels: bench/run_kernels.sh (wasm SIMD128 vs scalar)        BENCH_KERNELS=0 skips
#   2. end to end (BENCH_E2E=0 skips): random-weight GGUFs made by
#      bench/tools/make_gguf into build/bench/ (TinyLlama-1.1B shape and a
#      two-layer LLaMA-7B slice in q4_0 / q8_0 / q4_K; mPLUG-Owl2 with the
#      full vision tower + abstractor in the q4_k_m mix), then
#      owlet vs wllama (llama.cpp wasm) in one headless Chromium (bench/e2e.mjs),
#      owlet in Node (bench/e2e-node.mjs) and native (build/owlet), and
#      the markdown tables (bench/report.mjs).
# Knobs: BENCH_MODELS (names, default all six LLMs), BENCH_THREADS (1,2),
# BENCH_REPS (3), BENCH_OUT (build/bench/results.jsonl; appended to),
# BENCH_BUILDS (owlet's builds in the browser: relaxed,simd128; see bench/e2e.mjs),
# BENCH_SESSIONS (1: fresh browsers for the end-to-end runs, bench/e2e.mjs --sessions).
# Needs: gcc, node, npm devDependencies (@wllama/wllama, playwright-core),
# /usr/bin/chromium, build/wasm/owlet*.{js,wasm} (`make wasm`), build/owlet and
# build/owlet-convert (`make native`). Takes 30-60 min on 2 busy cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${BENCH_KERNELS:-1}" != 0 ]; then bash bench/run_kernels.sh; fi
[ "${BENCH_E2E:-1}" != 0 ] || exit 0

out=${BENCH_OUT:-build/bench/results.jsonl}
threads=${BENCH_THREADS:-1,2}
reps=${BENCH_REPS:-3}
models=${BENCH_MODELS:-tinyllama-q4_0 tinyllama-q8_0 tinyllama-q4_k llama7b2l-q4_0 llama7b2l-q8_0 llama7b2l-q4_k}
vision=owl2-vision-q4_k_m
tok=build/test-out/llama2.model
mkdir -p build/bench/wasm
[ -s "$tok" ] || node tests/tokenizer/extract_llama2.mjs "$tok"

gcc -O2 -std=c11 -Wall -Wextra -D_GNU_SOURCE -DOWL_USE_SIMDE -msse4.1 -o build/bench/make_gguf \
  bench/tools/make_gguf.c src/core/gguf.c src/core/gguf_write.c src/core/status.c src/text/spm_model.c \
  src/kernels/quant.c src/kernels/quant_simd128.c -lm

shape() { # name -> make_gguf arguments
  local q=${1##*-}
  case $1 in
    tinyllama-*) echo "llama build/bench/$1.gguf $q 2048 22 32 4 5632 $tok 1" ;;
    llama7b2l-*) echo "llama build/bench/$1.gguf $q 4096 2 32 32 11008 $tok 1" ;;
    "$vision") echo "owl2 build/bench/$1.gguf $tok 1" ;;
  esac
}
for m in $models $vision; do
  if [ ! -s "build/bench/$m.gguf" ]; then
    echo "making build/bench/$m.gguf" >&2
    # shellcheck disable=SC2046
    build/bench/make_gguf $(shape "$m")
  fi
  if [ ! -s "build/bench/$m/manifest.json" ] || [ "build/bench/$m.gguf" -nt "build/bench/$m/manifest.json" ]; then
    rm -rf "build/bench/$m"
    build/owlet-convert --split "build/bench/$m.gguf" "build/bench/$m" --chunk-mib 64 >/dev/null
  fi
done
# a snapshot of the engine, so a rebuild during the run does not mix builds
cp build/wasm/owlet.js build/wasm/owlet.wasm build/wasm/owlet.worker.js build/wasm/owlet-st.js \
   build/wasm/owlet-st.wasm build/wasm/owlet-relaxed.js build/wasm/owlet-relaxed.wasm \
   build/wasm/owlet-relaxed.worker.js build/bench/wasm/

# shellcheck disable=SC2086
node bench/e2e.mjs "$out" $models --threads "$threads" --reps "$reps" --builds "${BENCH_BUILDS:-relaxed,simd128}" --image "$vision" --sessions "${BENCH_SESSIONS:-1}"
# shellcheck disable=SC2086
node bench/e2e-node.mjs "$out" $models --threads "$threads" --reps "$reps" --image "$vision"

# native CLI: prefill / decode / image encode from its stderr timing line
native() { # model threads [image]
  local img=() r
  [ -n "${3:-}" ] && img=(--image "$3")
  r=$(build/owlet --model "build/bench/$1.gguf" "${img[@]}" --prompt "$(node -e "import('./bench/e2e-page.mjs').then(m=>console.log(m.PROMPT))")" \
      --n-predict 32 --temp 0 --threads "$2" 2>&1 >/dev/null | grep '^owlet: load')
  echo "$r" | awk -v m="$1" -v t="$2" -v la="$(cut -d' ' -f1-3 /proc/loadavg)" '{
    for (i = 1; i <= NF; i++) { if ($i == "encode") enc = $(i+1); if ($i == "prefill") { pn = $(i+1); pms = $(i+4) }
      if ($i == "decode") { dn = $(i+1); dms = $(i+4) } }
    printf "{\"kind\":\"%s\",\"model\":\"%s\",\"engine\":\"owlet-native\",\"threads\":%d,\"promptN\":%d,\"prefillMs\":%s,\"genN\":%d,\"decodeMs\":%s,\"encodeMs\":%s,\"loadavg\":\"%s\"}\n",
      (enc + 0 > 0 ? "image-native" : "llm-native"), m, t, pn, pms, dn, dms, enc + 0, la }'
}
png=build/bench/random448.png
/usr/bin/python3 -c "
import numpy as np; from PIL import Image
Image.fromarray(np.random.default_rng(1).integers(0, 256, (448, 448, 3), dtype=np.uint8)).save('$png')"
for t in ${threads//,/ }; do
  for i in $(seq "$reps"); do
    for m in $models; do native "$m" "$t" >> "$out"; done
    native "$vision" "$t" "$png" >> "$out"
  done
done
node bench/report.mjs "$out"
