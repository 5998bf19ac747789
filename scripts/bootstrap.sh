#!/usr/bin/env bash
# Installs what the build and tests need, and does nothing when it is all there.
# Debian packages via apt-get (needs root, as on CI), npm packages via `npm ci`
# from the committed package-lock.json. The browser tests use Debian's browsers
# only (chromium, firefox-esr, webkit2gtk-driver's WebKitWebDriver + MiniBrowser,
# xvfb for its X display); the npm drivers (playwright-core, puppeteer-core,
# selenium-webdriver) never download one.
#
#   scripts/bootstrap.sh        everything (make test, bench)
#   scripts/bootstrap.sh demo   only what `make demo` needs: Emscripten, stb, Node (no npm packages)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-all}
all_pkgs=(emscripten clang libclang-rt-14-dev libstb-dev libsimde-dev python3-numpy python3-torch python3-sentencepiece
          python3-pil python3-skimage python3-jinja2 chromium nodejs firefox-esr webkit2gtk-driver xvfb)
demo_pkgs=(emscripten libstb-dev nodejs)
[ "$mode" = demo ] && pkgs=("${demo_pkgs[@]}") || pkgs=("${all_pkgs[@]}")

need_pkgs=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for p in "${pkgs[@]}"; do
  have_pkg "$p" || need_pkgs+=("$p")
done

if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

[ "$mode" = demo ] && exit 0 # the demo runs the engine and serves the page with Node alone

# npm ci when node_modules is missing or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: npm ci"
  npm ci --no-audit --no-fund >/dev/null
fi
