#!/usr/bin/env bash
# Runs a command with the tests' and the demo's servers in containers (FEDGATE_SERVERS=containers), by
# default the integration tests of the servers that run there. The engine is the one DOCKER_HOST names, else
# Docker's /var/run/docker.sock, else Podman's Docker-compatible service, started here for the command's
# duration. The image (test/harness/servers/serverImage.ts) is built from Debian's packages if missing.
#   bash scripts/containers.sh                       # bus, Prosody and Synapse tests, servers in containers
#   bash scripts/containers.sh npx vitest run test/integration/xmpp/bridge.test.ts
#   bash scripts/containers.sh npx tsx test/harness/demo/main.ts up
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$#" -eq 0 ]; then
  set -- npx vitest run test/integration/bus.test.ts test/integration/xmpp/prosody.test.ts \
    test/integration/matrix/client.test.ts
fi

service_pid=""
run_dir=""
stop_service() {
  if [ -n "$service_pid" ]; then
    kill "$service_pid" 2>/dev/null || true
    wait "$service_pid" 2>/dev/null || true
    rm -f "$run_dir/podman-$$.sock" "$run_dir/podman-$$.log"
  fi
}
trap stop_service EXIT

if [ -z "${DOCKER_HOST:-}" ] && [ ! -S /var/run/docker.sock ]; then
  if ! command -v podman >/dev/null 2>&1; then
    echo "fedgate: no container engine: set DOCKER_HOST, start Docker, or install Podman (apt-get install podman runc)" >&2
    exit 1
  fi
  run_dir="${XDG_RUNTIME_DIR:-/run}/fedgate-podman"
  mkdir -p "$run_dir"
  socket="$run_dir/podman-$$.sock"
  # Our settings for this machine's kind of kernel and limits (see the file); --time=0: until stopped.
  CONTAINERS_CONF="$PWD/scripts/podman/containers.conf" \
    podman system service --time=0 "unix://$socket" >"$run_dir/podman-$$.log" 2>&1 &
  service_pid=$!
  for _ in $(seq 1 100); do
    [ -S "$socket" ] && break
    kill -0 "$service_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -S "$socket" ]; then
    echo "fedgate: podman system service did not start:" >&2
    cat "$run_dir/podman-$$.log" >&2
    exit 1
  fi
  export DOCKER_HOST="unix://$socket"
  # testcontainers' reaper is an image from Docker Hub; without a registry it cannot be pulled. Our servers'
  # containers are stopped and removed by the tests themselves.
  export TESTCONTAINERS_RYUK_DISABLED="${TESTCONTAINERS_RYUK_DISABLED:-true}"
  echo "fedgate: Podman's service at $DOCKER_HOST"
fi

npx tsx test/harness/servers/serverImage.ts --if-missing
FEDGATE_SERVERS=containers "$@"
