#!/usr/bin/env bash
# Installs what the tests need, then runs every test: format, lint, types, unit, integration.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm test
