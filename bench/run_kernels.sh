#!/usr/bin/env bash
# Run the kernel benchmark in both wasm builds under node and print a markdown
# table (SIMD128 vs scalar reference), then all three builds (scalar, SIMD128,
# relaxed SIMD) in headless Chromium (bench/kernels_browser.mjs; relaxed SIMD
# does not run in Node 20). `make bench` builds and runs this.
#   BENCH_SIMD / BENCH_SCALAR: the two .js files (default build/wasm/...)
#   BENCH_MIN_S: seconds per measurement (default 0.25)
#   BENCH_BROWSER=0: skip the Chromium table; BENCH_ROUNDS: its rounds (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
simd=${BENCH_SIMD:-build/wasm/owlet-bench.js}
scalar=${BENCH_SCALAR:-build/wasm/owlet-bench-scalar.js}
min_s=${BENCH_MIN_S:-0.25}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
node --no-experimental-fetch "$simd" "$min_s" > "$tmp/simd.txt"
node --no-experimental-fetch "$scalar" "$min_s" > "$tmp/scalar.txt"

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ //'), node $(node --version), emcc $(emcc --version 2>/dev/null | head -1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| kernel | shape | threads | SIMD128 GMAC/s | SIMD128 GMAC/CPU-s | SIMD128 GB/s | scalar GMAC/s | scalar GMAC/CPU-s | SIMD/scalar |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk '
  function f(v) { return v > 0 ? sprintf("%.2f", v) : "-" }
  FNR == NR { if ($1 == "RESULT") { sg[$2 " " $3] = $4; sb[$2 " " $3] = $5; sc[$2 " " $3] = $6 } next }
  $1 == "RESULT" {
    key = $2 " " $3; name = $2; shape = "4096x4096, 1 token (GEMV)"
    if (name ~ /_gemm64$/) shape = "4096x4096, 64 tokens (GEMM)"
    sub(/_gemv$|_gemm64$/, "", name)
    if (name == "memread") { name = "memory read"; shape = "64 MB sum" }
    if (name == "dot_i16x8") { name = "i32x4.dot_i16x8 (scalar: int16 MAC)"; shape = "8 accumulators, L1 operand" }
    # ratio: per CPU-second when both have it (robust to a loaded machine), else wall
    if ($6 > 0 && sc[key] > 0) r = $6 / sc[key]
    else if ($4 > 0 && sg[key] > 0) r = $4 / sg[key]
    else r = (sb[key] > 0 ? $5 / sb[key] : 0)
    if (name == "memory read") printf "| %s | %s | %d | - | - | %s | %s GB/s | - | %.1fx |\n", name, shape, $3, f($5), f(sb[key]), r
    else printf "| %s | %s | %d | %s | %s | %s | %s | %s | %.1fx |\n", name, shape, $3, f($4), f($6), f($5), f(sg[key]), f(sc[key]), r
  }
' "$tmp/scalar.txt" "$tmp/simd.txt"
echo
echo "GMAC/s: wall clock, best of up to 20 trials. GMAC/CPU-s: per process CPU-second (all threads"
echo "summed, mean over the trials), i.e. unaffected by time stolen by other processes. GB/s: weight bytes (or bytes read) per"
echo "wall second."

if [ "${BENCH_BROWSER:-1}" != 0 ]; then
  echo
  echo "Chromium (bench/kernels_browser.mjs $min_s ${BENCH_ROUNDS:-2}):"
  echo
  node bench/kernels_browser.mjs "$min_s" "${BENCH_ROUNDS:-2}"
fi
