#!/usr/bin/env bash
# Install everything the tests need on a fresh machine, then run them: the README's test command,
# and what CI runs (.ci/run). Extra arguments go to pytest (e.g. -k export; -m slow runs the
# 20-kill storms that the default run leaves out).
#   Python: the package with its cpu and test extras; tensorflow-serving-api and tensorflowjs with
#           --no-deps (the first needs the full tensorflow wheel, the second pins TF 2.19).
#   Node:   web/'s packages from the committed lock file (the TF.js check and the demo page).
#   Chromium: Debian's package, for the demo-page test (installed when running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -e ".[cpu,test]"
.venv/bin/pip install -q --no-deps tensorflow-serving-api==2.21.0 tensorflowjs==4.22.0
(cd web && npm ci --no-audit --no-fund --loglevel=error)
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get install -y -q chromium >/dev/null 2>&1 \
      || (apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null)
  else
    echo "note: chromium is missing and this is not root: sudo apt-get install chromium" >&2
  fi
fi
if command -v chromium >/dev/null; then export AMGAN_REQUIRE_WEB=1; fi
.venv/bin/python -m pytest -q tests "$@"
