#!/usr/bin/env bash
# Docker Compose v2 (NEBULA_COMPOSE_VERSION) from Debian 13 (trixie), unpacked into
# .toolchain/docker-compose/ (git-ignored). Debian 12's own `docker-compose` is 1.29 (v1, Python);
# trixie's 2.26 is one Go binary that depends on nothing newer than Debian 12 has (libc6 >= 2.34).
#
#   source tools/compose.sh; nebula_compose_install   installs it when missing (tools/stack.sh)
#   bash tools/compose.sh ARGS...                     installs it when missing, then runs
#                                                     `docker compose ARGS` with it
#
# The binary is the Docker CLI plugin (usr/libexec/docker/cli-plugins/docker-compose in the package);
# run directly, as here, it is the same Compose without the docker CLI in front. Nothing is put in
# ~/.docker/cli-plugins or /usr/libexec: the machine's `docker compose` stays what it was. The
# download is tools/trixie-package.sh's (a private apt configuration, the signed trixie index).
# Idempotent: a binary that already reports NEBULA_COMPOSE_VERSION is left alone.
NEBULA_COMPOSE_VERSION=2.26.1
_nebula_compose_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEBULA_COMPOSE_DIR="$_nebula_compose_root/.toolchain/docker-compose"
NEBULA_COMPOSE_BIN="$NEBULA_COMPOSE_DIR/usr/libexec/docker/cli-plugins/docker-compose"
source "$_nebula_compose_root/tools/trixie-package.sh" # nebula_trixie_install

# "2.26.1" from "2.26.1-4" (Debian's revision dropped); empty when the binary is missing or does not run.
nebula_compose_version_of() { "$1" version --short 2>/dev/null | sed -n 's/^v\{0,1\}\([0-9][0-9.]*\).*/\1/p'; }

nebula_compose_installed() {
  [ -x "$NEBULA_COMPOSE_BIN" ] && [ "$(nebula_compose_version_of "$NEBULA_COMPOSE_BIN")" = "$NEBULA_COMPOSE_VERSION" ]
}

# Installs Compose NEBULA_COMPOSE_VERSION into .toolchain/docker-compose/ when it is missing or another
# version. Returns non-zero (after an error message) when it cannot.
nebula_compose_install() {
  nebula_compose_installed && return 0
  local machine; machine="$(docker compose version --short 2>/dev/null || true)"
  nebula_trixie_install docker-compose "$NEBULA_COMPOSE_VERSION" "$NEBULA_COMPOSE_DIR" \
    usr/libexec/docker/cli-plugins/docker-compose nebula_compose_version_of \
    "NEBULA_COMPOSE_VERSION in tools/compose.sh" "the machine's docker compose: ${machine:-none}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  nebula_compose_install || exit 1
  exec "$NEBULA_COMPOSE_BIN" "$@"
fi
