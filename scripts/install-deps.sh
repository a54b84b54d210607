#!/usr/bin/env bash
# Installs what fedgate's demo and tests need on a Debian machine: Node.js 20+ must be there already;
# nats-server, prosody, ejabberd, debootstrap and openssl come from Debian's packages, Synapse from Debian sid in a
# chroot, the npm dependencies from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

need_node_major=20
if ! command -v node >/dev/null 2>&1; then
  echo "fedgate: Node.js ${need_node_major} or newer is required (https://nodejs.org or your distribution)" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt "$need_node_major" ]; then
  echo "fedgate: Node.js ${need_node_major} or newer is required, found $(node --version)" >&2
  exit 1
fi

apt_packages=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || apt_packages+=(nats-server)
command -v prosody >/dev/null 2>&1 || apt_packages+=(prosody)
# The XMPP bridge's suite runs against ejabberd too; ejabberdctl lives in /usr/sbin, often not on PATH.
[ -x /usr/sbin/ejabberdctl ] || command -v ejabberdctl >/dev/null 2>&1 || apt_packages+=(ejabberd)
# The Matrix bridge's suite runs against Synapse, which Debian 12 lacks: it is installed into a Debian sid
# chroot that debootstrap builds (below).
[ -x /usr/sbin/debootstrap ] || command -v debootstrap >/dev/null 2>&1 || apt_packages+=(debootstrap)
# The federation tests make their own CA and leafnode certificates.
command -v openssl >/dev/null 2>&1 || apt_packages+=(openssl)
# Headless Chromium for the console's browser test (test/integration/console.test.ts), driven by playwright-core.
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
# Podman (with runc: crun refuses these machines' hybrid cgroups) for the servers-in-containers run
# (scripts/containers.sh); as root only, where it can run containers.
[ "$(id -u)" -ne 0 ] || command -v podman >/dev/null 2>&1 || apt_packages+=(podman runc)
if [ "${#apt_packages[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "fedgate: please install as root: apt-get install -y ${apt_packages[*]}" >&2
    exit 1
  fi
  echo "fedgate: installing Debian packages: ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "fedgate: installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

# Synapse's chroot (once per machine, about a minute; cached in /var/cache/fedgate/synapse-sid or
# $FEDGATE_SYNAPSE_CHROOT): built here, with progress, rather than inside the first test that needs it.
if [ "$(id -u)" -eq 0 ]; then
  npx tsx test/harness/servers/matrix/buildSynapseChroot.ts
fi
