# Sourced by the tools/*.sh entry points. Makes sure that
#  - a Node.js >= 22 is first on PATH: where the machine's is older, Node 24 is installed from the npm
#    registry into .toolchain/ (git-ignored) and used from there;
#  - node_modules matches package-lock.json (npm ci when the lock file changed);
#  - `nats-server` on PATH is the pinned NATS server (2.10, from Debian 13), installed into
#    .toolchain/nats-server/ when missing (tools/nats-server.sh): tests, the bench and the local stack
#    all run that one, never Debian 12's /usr/sbin/nats-server (2.9).
# Set NEBULA_SKIP_INSTALL=1 to skip the dependency check and the nats-server install.
NEBULA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEBULA_NODE_VERSION=24.21.0

_nebula_node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(_nebula_node_major)" -lt 22 ]; then
  if [ ! -x "$NEBULA_ROOT/.toolchain/node_modules/.bin/node" ] ||
     ! "$NEBULA_ROOT/.toolchain/node_modules/.bin/node" --version >/dev/null 2>&1; then
    echo "[setup] installing Node.js $NEBULA_NODE_VERSION into .toolchain/ (the machine's is $(node --version 2>/dev/null || echo missing))" >&2
    mkdir -p "$NEBULA_ROOT/.toolchain"
    npm install --prefix "$NEBULA_ROOT/.toolchain" --no-audit --no-fund --loglevel=error "node@$NEBULA_NODE_VERSION" >&2
  fi
  export PATH="$NEBULA_ROOT/.toolchain/node_modules/.bin:$PATH"
  [ "$(_nebula_node_major)" -ge 22 ] || { echo "[setup] ERROR: could not set up Node.js 24" >&2; exit 1; }
fi

if [ "${NEBULA_SKIP_INSTALL:-}" != 1 ]; then
  _nebula_lock_hash="$(sha256sum "$NEBULA_ROOT/package-lock.json" 2>/dev/null | cut -c1-64)"
  if [ ! -f "$NEBULA_ROOT/node_modules/.nebula-lock" ] ||
     [ "$(cat "$NEBULA_ROOT/node_modules/.nebula-lock")" != "$_nebula_lock_hash" ]; then
    echo "[setup] installing npm dependencies (npm ci)" >&2
    (cd "$NEBULA_ROOT" && npm ci --no-audit --no-fund --loglevel=error >&2)
    echo "$_nebula_lock_hash" >"$NEBULA_ROOT/node_modules/.nebula-lock"
  fi
fi

source "$NEBULA_ROOT/tools/nats-server.sh"
if [ "${NEBULA_SKIP_INSTALL:-}" != 1 ]; then nebula_nats_install || exit 1; fi
export PATH="$NEBULA_NATS_DIR/usr/sbin:$PATH"
export NEBULA_ROOT NEBULA_NATS_VERSION
