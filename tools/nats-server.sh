#!/usr/bin/env bash
# nats-server NEBULA_NATS_VERSION (JetStream) from Debian 13 (trixie), unpacked into .toolchain/nats-server/
# (git-ignored). Debian 12's own package is 2.9.10; trixie's 2.10 build depends on nothing newer than
# Debian 12 has (libc6 >= 2.34), so its binary runs here as it is.
#
#   source tools/nats-server.sh; nebula_nats_install   installs it when missing (tools/env.sh, stack.sh, images)
#   bash tools/nats-server.sh ARGS...                  installs it when missing, then runs it with ARGS
#
# The download is tools/trixie-package.sh's (a private apt configuration, the signed trixie index,
# nothing on the machine changed). Idempotent: a binary that already reports NEBULA_NATS_VERSION is
# left alone; another version is replaced.
NEBULA_NATS_VERSION=2.10.27
NEBULA_NATS_MIRROR="${NEBULA_NATS_MIRROR:-http://deb.debian.org/debian}"
_nebula_nats_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEBULA_NATS_DIR="$_nebula_nats_root/.toolchain/nats-server"
NEBULA_NATS_BIN="$NEBULA_NATS_DIR/usr/sbin/nats-server"
source "$_nebula_nats_root/tools/trixie-package.sh" # nebula_trixie_install

# "2.10.27" from "nats-server: v2.10.27"; empty when the binary is missing or does not run.
nebula_nats_version_of() { "$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}//p'; }

nebula_nats_installed() {
  [ -x "$NEBULA_NATS_BIN" ] && [ "$(nebula_nats_version_of "$NEBULA_NATS_BIN")" = "$NEBULA_NATS_VERSION" ]
}

# Installs nats-server NEBULA_NATS_VERSION into .toolchain/nats-server/ when it is missing or another
# version. Returns non-zero (after an error message) when it cannot.
nebula_nats_install() {
  nebula_nats_installed && return 0
  local machine; machine="$(nebula_nats_version_of "$(command -v nats-server || echo /nonexistent)")"
  NEBULA_TRIXIE_MIRROR="$NEBULA_NATS_MIRROR" nebula_trixie_install nats-server "$NEBULA_NATS_VERSION" "$NEBULA_NATS_DIR" \
    usr/sbin/nats-server nebula_nats_version_of "NEBULA_NATS_VERSION in tools/nats-server.sh" "the machine's: ${machine:-none}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  nebula_nats_install || exit 1
  exec "$NEBULA_NATS_BIN" "$@"
fi
