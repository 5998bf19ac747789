#!/usr/bin/env bash
# tests/fuzz/run.sh - build and run the libFuzzer targets of tests/fuzz/.
#
#   bash tests/fuzz/run.sh SECONDS [target...]     (targets: see ALL_TARGETS below)
#
# Each target is built with clang (libFuzzer + ASan + UBSan, OWL_DEBUG) into
# build/fuzz/fuzz_<target> (rebuilt when a source or header is newer), first
# run once on every file of tests/fuzz/regressions/<target>/ (past crashes:
# they must pass), then fuzzed for SECONDS on a fresh copy of
# tests/fuzz/corpus/<target>/ (the committed corpus never grows), with RSS
# and single-allocation limits (LIMITS below). Prints
# execs/s and total execs per target; crash/leak/timeout inputs are kept in
# build/fuzz/crashes/<target>/, logs in build/fuzz/logs/. Exits non-zero if a
# target fails to build or finds anything.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: bash tests/fuzz/run.sh SECONDS [target...]" >&2
  exit 2
fi
secs=$1; shift

ALL_TARGETS=(gguf json spm tokenizer image safetensors pickle config model)
TARGETS=("${ALL_TARGETS[@]}")
QUANT="src/kernels/quant.c src/kernels/quant_simd128.c"
TEXT="src/text/tokenizer.c src/text/spm_model.c src/core/gguf.c src/core/gguf_write.c $QUANT"
CKPT="weights_tool/ckpt.c weights_tool/torch.c src/core/json.c $QUANT"
# Library sources per target (besides tests/fuzz/fuzz_<target>.c and src/core/status.c).
sources() {
  case $1 in
    gguf)        echo "$TEXT";;
    json)        echo "src/core/json.c";;
    spm)         echo "$TEXT";;
    tokenizer)   echo "$TEXT src/text/template.c";;
    image)       echo "src/image/decode.c src/image/preprocess.c src/image/resample.c";;
    safetensors) echo "$CKPT";;
    pickle)      echo "$CKPT";;
    config)      echo "weights_tool/config.c weights_tool/plan.c weights_tool/ckpt.c weights_tool/torch.c src/core/json.c $QUANT";;
    model)       find src -name '*.c' ! -path 'src/cli/*' ! -name status.c | sort;;   # the whole library
    *)           return 1;;
  esac
}

# Sources compiled with -fwrapv: decode.c asks for wrapping int maths in stb's
# JPEG IDCT (corrupt coefficients overflow it) but gets it only from GCC's
# `#pragma GCC optimize("wrapv")`, which clang ignores.
WRAPV_SRC="src/image/decode.c"

CC=${FUZZ_CC:-clang}
CFLAGS=(-std=c11 -Wall -Wextra -Werror -Wno-unused-function -D_GNU_SOURCE -DOWL_DEBUG -DOWL_USE_SIMDE -msse4.1
        -I/usr/include/stb -g -O1 -fno-omit-frame-pointer
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        "-DOWL_FUZZ_SPM_PATH=\"$root/tests/fixtures/oracle_a/tokenizer.model\"")

# Limits for every run: RSS 2 GB, and no single allocation over 128 MB (the
# inputs are a few KB: more is a hostile header sizing memory, a finding).
LIMITS=(-rss_limit_mb=2048 -malloc_limit_mb=128)

[ $# -gt 0 ] && TARGETS=("$@")
out=build/fuzz
mkdir -p "$out/logs"
fail=0
summary=()

build() { # target -> 0 if build/fuzz/fuzz_<target> is up to date or rebuilt
  local t=$1 bin=$out/fuzz_$1 srcs
  srcs=$(sources "$t") || { echo "fuzz: unknown target '$t' (have: ${ALL_TARGETS[*]})" >&2; return 1; }
  local all=(tests/fuzz/fuzz_$t.c src/core/status.c $srcs)
  if [ -x "$bin" ] && [ -z "$(find "${all[@]}" src weights_tool tests/fuzz -name '*.[ch]' -newer "$bin" 2>/dev/null | head -1)" ]; then
    return 0
  fi
  echo "fuzz: building $bin"
  local objdir=$out/obj/$t inputs=() s
  mkdir -p "$objdir"
  : >"$out/logs/$t.build.log"
  for s in "${all[@]}"; do
    if [[ " $WRAPV_SRC " == *" $s "* ]]; then
      "$CC" "${CFLAGS[@]}" -fwrapv -c "$s" -o "$objdir/$(basename "$s" .c).o" >>"$out/logs/$t.build.log" 2>&1 ||
        { cat "$out/logs/$t.build.log" >&2; return 1; }
      inputs+=("$objdir/$(basename "$s" .c).o")
    else
      inputs+=("$s")
    fi
  done
  "$CC" "${CFLAGS[@]}" -o "$bin.tmp" "${inputs[@]}" -lm -lpthread >>"$out/logs/$t.build.log" 2>&1 &&
    mv "$bin.tmp" "$bin" || { cat "$out/logs/$t.build.log" >&2; return 1; }
}

for t in "${TARGETS[@]}"; do
  if ! build "$t"; then
    summary+=("$(printf '%-12s BUILD FAILED (see %s)' "$t" "$out/logs/$t.build.log")")
    fail=1; continue
  fi
  bin=$out/fuzz_$t crashes=$out/crashes/$t log=$out/logs/$t.log
  mkdir -p "$crashes"
  # past crashes first: each must now run clean
  regs=(); [ -d tests/fuzz/regressions/$t ] && mapfile -t regs < <(find tests/fuzz/regressions/$t -type f | sort)
  if [ ${#regs[@]} -gt 0 ] && ! "$bin" "${LIMITS[@]}" -timeout=25 "${regs[@]}" >"$out/logs/$t.regressions.log" 2>&1; then
    summary+=("$(printf '%-12s REGRESSION FAILS (see %s)' "$t" "$out/logs/$t.regressions.log")")
    { grep '^Running: ' "$out/logs/$t.regressions.log" | tail -1
      grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz invariant' \
        "$out/logs/$t.regressions.log"; } | sed 's/^/             /' >&2
    fail=1; continue
  fi
  work=$out/work/$t
  rm -rf "$work"; mkdir -p "$work"
  [ -d tests/fuzz/corpus/$t ] && cp tests/fuzz/corpus/$t/* "$work"/ 2>/dev/null
  echo "fuzz: $t for ${secs}s"
  nice -n 10 "$bin" -max_total_time="$secs" "${LIMITS[@]}" -timeout=25 -print_final_stats=1 \
    -artifact_prefix="$crashes/" "$work" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  if [ $rc -ne 0 ]; then
    art=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
    summary+=("$(printf '%-12s FAILED rc=%d after %s execs; input %s; log %s' "$t" $rc "${execs:-?}" "${art:-?}" "$log")")
    grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|fuzz invariant' "$log" | sed 's/^/             /' >&2
    fail=1
  else
    summary+=("$(printf '%-12s ok  %8s execs/s  %10s execs  %s  rss %s MB' "$t" "${rate:-?}" "${execs:-?}" "$cov" "${rss:-?}")")
  fi
done

echo "fuzz summary (${secs}s per target):"
printf '  %s\n' "${summary[@]}"
exit $fail
