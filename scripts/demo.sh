#!/usr/bin/env bash
# Brings up the local demo federation and prints how to try it. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run --silent build
exec node dist/gateway/cli/main.js demo "$@"
