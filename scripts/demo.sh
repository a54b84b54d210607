#!/usr/bin/env bash
# Brings up the local demo federation and prints how to try it. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run --silent build
# The demo runs from the checkout; the build is for `npx fedgate`, which its "try it" commands use.
exec npx tsx test/harness/demo/main.ts up "$@"
