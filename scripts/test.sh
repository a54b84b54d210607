#!/usr/bin/env bash
# Installs what the tests need, then runs every test: format, lint, types, unit, integration; and where a
# container engine is at hand, the servers' container path too (README: "Servers in containers").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm test
if [ -n "${DOCKER_HOST:-}" ] || [ -S /var/run/docker.sock ] || command -v podman >/dev/null 2>&1; then
  bash scripts/containers.sh
fi
