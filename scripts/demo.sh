#!/usr/bin/env bash
# make demo: answer one question about the bundled sample image with the demo
# model (wasm engine in Node, streamed), then serve web/ with COOP/COEP on
# http://localhost:8080 (Ctrl-C stops it). DEMO_NO_SERVE=1 skips the server.
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/demo/manifest.json
if [ ! -f "$model" ]; then
  echo "make demo: not yet — the bundled demo model (models/demo/) has not landed."
  echo "The engine is built: build/owlet (native CLI), build/wasm/owlet.{js,wasm}, build/wasm/owlet-st.{js,wasm}."
  exit 0
fi
node scripts/demo-ask.mjs "$model" models/demo/sample.png \
  "$(cat models/demo/sample-question.txt 2>/dev/null || echo 'What shape is this?')" 2
if [ "${DEMO_NO_SERVE:-0}" != 1 ]; then
  echo
  echo "Serving the web demo at http://localhost:8080/  (Ctrl-C to stop)"
  exec node tests/browser/web-server.mjs --port 8080
fi
