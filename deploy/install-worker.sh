#!/usr/bin/env bash
# Installs the Nebula worker on a bare host (a device, an appliance, a VM) as a systemd service:
#
#   /opt/nebula/worker/<version>/        the worker bundle (main.js and what sits next to it)
#   /opt/nebula/worker/current           -> <version>, switched atomically
#   /opt/nebula/node/bin/node            Node 24
#   /etc/nebula/worker.env               its settings, mode 600 (the join token, until it has joined)
#   /var/lib/nebula/worker/              its state, mode 700 (credentials.json: the host's bus identity)
#   /etc/systemd/system/nebula-worker.service
#
# Run it again to upgrade in place: the new bundle goes next to the old one, `current` is switched
# and the service restarted; the env file and the credentials are kept (only the settings given
# on the command line change). See deploy/README.md, "Bare hosts: install-worker.sh".
#
#   sudo deploy/install-worker.sh --url https://nebula.example:8080 --nats-url tls://nats.example:4222 \
#        --apps web,db --join-token-stdin < token.txt
#   sudo deploy/install-worker.sh                 # upgrade: a new bundle, same settings
#   sudo deploy/install-worker.sh --uninstall     # keeps the env file and the credentials (--purge: not)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
UNIT_NAME=nebula-worker.service
NAME_RE='^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$'
TOKEN_RE='^nebula-join\.[0-9a-f]{32}\.[0-9a-f-]{36}\.[A-Za-z0-9_-]{20,100}$'
# Values are written unquoted to a systemd EnvironmentFile: nothing it would read specially.
VALUE_RE='^[A-Za-z0-9._~:/%@,+=-]*$'

usage() {
  cat <<'EOF'
Usage: install-worker.sh [options]
       install-worker.sh --uninstall [--purge] [--root DIR]

Installs (or upgrades) the Nebula worker as the systemd service nebula-worker. Runs as root.

  --bundle DIR          the worker bundle (main.js and what sits next to it); default: dist/worker
                        of this repository, or worker/ next to this script (a release tarball)
  --node PATH           a Node 24 binary to copy; default: `node` on PATH if it is Node 24, else the
                        one already installed
  --url URL             the control plane's API (NEBULA_URL), e.g. https://nebula.example:8080
  --join-token TOKEN    a join token (`nebula hosts join-token create`); it lands in your shell
                        history and the process list: prefer --join-token-stdin
  --join-token-stdin    read the join token from standard input (one line)
  --apps LIST           the apps this host serves, comma-separated (APP_NAME)
  --device-group NAME   the device group this host follows live (DEVICE_GROUP): its apps and cron
                        jobs, besides those of --apps
  --host-id ID          this host's id (HOST_ID); default: the worker uses the machine id
  --nats-url URL        the NATS servers (NATS_URL), e.g. tls://nats.example:4222 (several: comma-separated)
  --nats-ca FILE        the CA of the NATS servers' certificates: copied to /etc/nebula/nats-ca.pem (NATS_TLS_CA)
  --set KEY=VALUE       any other worker setting (e.g. WORKER_ALLOW_DEVICES=/dev/ttyUSB0); repeatable
  --root DIR            install under DIR instead of / (for tests and images): systemctl is not called
  --uninstall           stop and remove the service, /opt/nebula/worker and /opt/nebula/node; keeps
                        /etc/nebula/worker.env and the credentials (the host can be installed again
                        without joining again)
  --purge               with --uninstall: remove those too (joining again takes a new token)
  -h, --help            this help

Settings given are written to /etc/nebula/worker.env; on an upgrade the others there are kept.
The apps' containers are not touched by the installer: they keep running across upgrades and
after an uninstall.
EOF
}

die() {
  printf 'install-worker: %s\n' "$*" >&2
  exit 1
}
say() { printf 'install-worker: %s\n' "$*"; }

# --- arguments ---------------------------------------------------------------------------------

ROOT=/
BUNDLE=
NODE_BIN=
UNINSTALL=false
PURGE=false
TOKEN_STDIN=false
NATS_CA=
# The settings to write, in order; values in SETTING_VALUE (the token never leaves this process:
# only shell builtins see it).
SETTING_KEYS=()
declare -A SETTING_VALUE=()

set_setting() { # key value
  [[ -v "SETTING_VALUE[$1]" ]] || SETTING_KEYS+=("$1")
  SETTING_VALUE[$1]="$2"
}

need_value() { # option remaining-args
  [ "$2" -ge 2 ] || die "$1 needs a value (see --help)"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --bundle) need_value "$1" $#; BUNDLE="$2"; shift 2 ;;
    --node) need_value "$1" $#; NODE_BIN="$2"; shift 2 ;;
    --url) need_value "$1" $#; set_setting NEBULA_URL "$2"; shift 2 ;;
    --join-token) need_value "$1" $#; set_setting NEBULA_JOIN_TOKEN "$2"; shift 2 ;;
    --join-token-stdin) TOKEN_STDIN=true; shift ;;
    --apps) need_value "$1" $#; set_setting APP_NAME "$2"; shift 2 ;;
    --device-group) need_value "$1" $#; set_setting DEVICE_GROUP "$2"; shift 2 ;;
    --host-id) need_value "$1" $#; set_setting HOST_ID "$2"; shift 2 ;;
    --nats-url) need_value "$1" $#; set_setting NATS_URL "$2"; shift 2 ;;
    --nats-ca) need_value "$1" $#; NATS_CA="$2"; shift 2 ;;
    --set)
      need_value "$1" $#
      [[ "$2" == *=* ]] || die "--set takes KEY=VALUE (got a value without =)"
      set_setting "${2%%=*}" "${2#*=}"
      shift 2
      ;;
    --root) need_value "$1" $#; ROOT="$2"; shift 2 ;;
    --uninstall) UNINSTALL=true; shift ;;
    --purge) PURGE=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if $TOKEN_STDIN; then
  [[ -v "SETTING_VALUE[NEBULA_JOIN_TOKEN]" ]] && die "give the join token once: --join-token or --join-token-stdin"
  token=
  if [ -t 0 ]; then
    printf 'join token: ' >&2
    IFS= read -rs token || true
    printf '\n' >&2
  else
    IFS= read -r token || true
  fi
  token="${token//[[:space:]]/}"
  [ -n "$token" ] || die "--join-token-stdin: nothing on standard input"
  set_setting NEBULA_JOIN_TOKEN "$token"
  unset token
fi
$PURGE && ! $UNINSTALL && die "--purge goes with --uninstall"

[[ "$ROOT" == /* ]] || die "--root must be an absolute path (got $ROOT)"
ROOT="${ROOT%/}" # "" for /
if [ -z "$ROOT" ]; then
  [ "$(id -u)" -eq 0 ] || die "run as root (sudo $0 ...)"
else
  [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
fi

# The paths the unit names, and where they are under --root.
OPT="$ROOT/opt/nebula"
WORKER_DIR="$OPT/worker"
NODE_DEST="$OPT/node/bin/node"
ETC="$ROOT/etc/nebula"
ENV_FILE="$ETC/worker.env"
STATE_DIR="$ROOT/var/lib/nebula/worker"
CREDENTIALS="$STATE_DIR/credentials.json"
UNIT_DEST="$ROOT/etc/systemd/system/$UNIT_NAME"

# systemctl only on the machine itself, and only when systemd runs it.
with_systemd() { [ -z "$ROOT" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# --- uninstall ---------------------------------------------------------------------------------

if $UNINSTALL; then
  if [ ${#SETTING_KEYS[@]} -gt 0 ] || [ -n "$BUNDLE$NODE_BIN$NATS_CA" ]; then die "--uninstall takes no settings"; fi
  if with_systemd; then
    systemctl disable --now "$UNIT_NAME" 2>/dev/null || true
  fi
  rm -f "$UNIT_DEST"
  if with_systemd; then systemctl daemon-reload; fi
  rm -rf "$WORKER_DIR" "$OPT/node"
  rmdir "$OPT" 2>/dev/null || true
  if $PURGE; then
    rm -f "$ENV_FILE" "$ETC/nats-ca.pem"
    rm -rf "$STATE_DIR"
    rmdir "$ETC" "$ROOT/var/lib/nebula" 2>/dev/null || true
    say "removed the service, the worker, Node, its settings and its credentials (joining again takes a new token)"
  else
    say "removed the service, the worker and Node; kept $ENV_FILE and $STATE_DIR (--purge removes them)"
  fi
  say "the apps' containers were left running"
  exit 0
fi

# --- checks, before anything is changed ---------------------------------------------------------

for key in "${SETTING_KEYS[@]}"; do
  [[ "$key" =~ ^[A-Z_][A-Z0-9_]*$ ]] || die "setting $key: not a variable name (A-Z, 0-9, _)"
  value="${SETTING_VALUE[$key]}"
  case "$key" in
    NEBULA_JOIN_TOKEN)
      # Never echoed: it is a secret.
      [[ "$value" =~ $TOKEN_RE ]] || die "the join token is not one (nebula-join.<fingerprint>.<id>.<secret>, as \`nebula hosts join-token create\` prints)"
      continue
      ;;
    NEBULA_URL) [[ "$value" =~ ^https?://[A-Za-z0-9._~:/%@+-]+$ ]] || die "--url $value: not an http:// or https:// URL" ;;
    NATS_URL) [[ "$value" =~ ^(nats|tls)://[A-Za-z0-9._~:/%@+-]+(,(nats|tls)://[A-Za-z0-9._~:/%@+-]+)*$ ]] || die "--nats-url $value: not a nats:// or tls:// URL (several: comma-separated)" ;;
    HOST_ID) [[ "$value" =~ $NAME_RE ]] || die "--host-id $value: letters, digits, _ and - (at most 63, starting with a letter or digit)" ;;
    DEVICE_GROUP) [[ "$value" =~ $NAME_RE ]] || die "--device-group $value: letters, digits, _ and - (at most 63, starting with a letter or digit)" ;;
    APP_NAME)
      IFS=, read -ra apps <<<"$value"
      for app in "${apps[@]}"; do
        [[ "$app" =~ $NAME_RE ]] || die "--apps: $app is not an app name (letters, digits, _ and -; comma-separated)"
      done
      ;;
    NEBULA_CREDENTIALS_FILE | NATS_TLS_CA) die "$key is set by the installer" ;;
  esac
  [[ "$value" =~ $VALUE_RE ]] || die "setting $key: the value has characters an environment file would misread (allowed: letters, digits and ._~:/%@,+=-)"
done
if [ -n "$NATS_CA" ]; then
  [ -r "$NATS_CA" ] || die "--nats-ca $NATS_CA: not a readable file"
  grep -q -- '-----BEGIN CERTIFICATE-----' "$NATS_CA" || die "--nats-ca $NATS_CA: not a PEM certificate"
fi

# The bundle.
if [ -z "$BUNDLE" ]; then
  for candidate in "$SCRIPT_DIR/../dist/worker" "$SCRIPT_DIR/worker" "$SCRIPT_DIR/dist/worker"; do
    if [ -f "$candidate/main.js" ]; then
      BUNDLE="$candidate"
      break
    fi
  done
  [ -n "$BUNDLE" ] || die "no worker bundle found (dist/worker/main.js): build it with \`npm run release\`, or give --bundle DIR"
fi
[ -f "$BUNDLE/main.js" ] || die "--bundle $BUNDLE: no main.js in it"
BUNDLE="$(cd "$BUNDLE" && pwd)"

node_major() { "$1" -e 'process.stdout.write(process.versions.node.split(".")[0])' 2>/dev/null || true; }

# Node 24: given, on PATH, or the one installed before (an upgrade of the worker alone).
if [ -n "$NODE_BIN" ]; then
  [ -x "$NODE_BIN" ] || die "--node $NODE_BIN: not an executable file"
  major="$(node_major "$NODE_BIN")"
  [ "$major" = 24 ] || die "--node $NODE_BIN is not Node 24 (it says ${major:-nothing}): the worker needs Node 24"
elif command -v node >/dev/null && [ "$(node_major node)" = 24 ]; then
  NODE_BIN="$(command -v node)"
elif [ -x "$NODE_DEST" ] && [ "$(node_major "$NODE_DEST")" = 24 ]; then
  NODE_BIN="$NODE_DEST"
else
  found="$(command -v node || true)"
  die "Node 24 is needed: ${found:+$found is Node $(node_major "$found"); }give one with --node PATH (the Linux x64 binary from nodejs.org, or \`npm install --prefix /tmp/node24 node@24\` then --node /tmp/node24/node_modules/node/bin/node; from this repository: bash tools/node.sh --version, then --node .toolchain/node_modules/node/bin/node)"
fi
NODE_BIN="$(readlink -f "$NODE_BIN")"

# First install: enough to join. (An env file there already, or a credentials file: joined or configured.)
if [ ! -f "$ENV_FILE" ] && [ ! -f "$CREDENTIALS" ]; then
  [[ -v "SETTING_VALUE[NEBULA_URL]" ]] || die "first install: --url is needed (the control plane's API)"
  [[ -v "SETTING_VALUE[NEBULA_JOIN_TOKEN]" ]] || die "first install: a join token is needed (--join-token-stdin; \`nebula hosts join-token create\` makes one)"
fi
[[ -v "SETTING_VALUE[APP_NAME]" ]] || [[ -v "SETTING_VALUE[DEVICE_GROUP]" ]] || [ -f "$ENV_FILE" ] || say "note: no --apps nor --device-group: the host serves no app until APP_NAME or DEVICE_GROUP is set in $ENV_FILE"

UNIT_SRC="$SCRIPT_DIR/$UNIT_NAME"
[ -f "$UNIT_SRC" ] || die "$UNIT_SRC is missing (it ships next to this script)"

# --- the bundle: /opt/nebula/worker/<version>/ and `current` ------------------------------------

bundle_version() {
  local v=
  if [ -f "$BUNDLE/VERSION" ]; then
    v="$(head -n1 "$BUNDLE/VERSION" | tr -d '[:space:]')"
  elif [ -f "$BUNDLE/package.json" ]; then
    v="$("$NODE_BIN" -e 'process.stdout.write(String(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).version ?? ""))' "$BUNDLE/package.json" 2>/dev/null || true)"
  fi
  [[ "$v" =~ ^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$ ]] || v=unversioned
  printf '%s' "$v"
}

# Same content, same hash: a second run with the same bundle changes nothing.
bundle_hash() { (cd "$BUNDLE" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12); }

mkdir -p "$WORKER_DIR"
chmod 755 "$OPT" "$WORKER_DIR"
# Leftovers of a run that was interrupted.
rm -rf "$WORKER_DIR"/.incoming.* "$WORKER_DIR"/.current.*

VERSION="$(bundle_version)"
HASH="$(bundle_hash)"
TARGET="$VERSION"
if [ -e "$WORKER_DIR/$TARGET" ] && ! diff -rq "$BUNDLE" "$WORKER_DIR/$TARGET" >/dev/null 2>&1; then
  TARGET="$VERSION-$HASH" # another build under the same version: kept apart, never overwritten
fi
if [ -e "$WORKER_DIR/$TARGET" ] && diff -rq "$BUNDLE" "$WORKER_DIR/$TARGET" >/dev/null 2>&1; then
  say "worker $TARGET already in $WORKER_DIR"
else
  rm -rf "${WORKER_DIR:?}/$TARGET"
  incoming="$(mktemp -d "$WORKER_DIR/.incoming.XXXXXX")"
  cp -R "$BUNDLE/." "$incoming/"
  chmod -R u=rwX,go=rX "$incoming"
  [ "$(id -u)" -ne 0 ] || chown -R root:root "$incoming"
  mv -T "$incoming" "$WORKER_DIR/$TARGET"
  say "installed worker $TARGET in $WORKER_DIR/$TARGET"
fi

PREVIOUS="$(readlink "$WORKER_DIR/current" 2>/dev/null || true)"
# Relative, so that it holds under --root too; switched in one rename.
ln -sfn "$TARGET" "$WORKER_DIR/.current.$$"
mv -T "$WORKER_DIR/.current.$$" "$WORKER_DIR/current"
if [ -n "$PREVIOUS" ] && [ "$PREVIOUS" != "$TARGET" ]; then
  say "current: $PREVIOUS -> $TARGET"
else
  say "current: $TARGET"
fi
# Kept: the current and the previous version (to switch back by hand). Older ones go.
for dir in "$WORKER_DIR"/*; do
  name="$(basename "$dir")"
  [ "$name" = current ] || [ "$name" = "$TARGET" ] || [ "$name" = "$PREVIOUS" ] || rm -rf "${WORKER_DIR:?}/$name"
done

# --- Node --------------------------------------------------------------------------------------

mkdir -p "$(dirname "$NODE_DEST")"
chmod 755 "$OPT/node" "$(dirname "$NODE_DEST")"
if [ "$NODE_BIN" = "$(readlink -f "$NODE_DEST" 2>/dev/null || true)" ] || cmp -s "$NODE_BIN" "$NODE_DEST"; then
  say "node $("$NODE_DEST" --version) already in $NODE_DEST"
else
  # A new file renamed over the old one: a running worker keeps the binary it started with.
  cp "$NODE_BIN" "$NODE_DEST.new.$$"
  chmod 755 "$NODE_DEST.new.$$"
  mv -f "$NODE_DEST.new.$$" "$NODE_DEST"
  say "installed node $("$NODE_DEST" --version) in $NODE_DEST"
fi

# --- settings: /etc/nebula/worker.env (mode 600) -----------------------------------------------

mkdir -p "$ETC"
chmod 755 "$ETC"
if [ -n "$NATS_CA" ]; then
  cp "$NATS_CA" "$ETC/nats-ca.pem.new.$$"
  chmod 644 "$ETC/nats-ca.pem.new.$$"
  mv -f "$ETC/nats-ca.pem.new.$$" "$ETC/nats-ca.pem"
  set_setting NATS_TLS_CA /etc/nebula/nats-ca.pem
fi
if [ -f "$CREDENTIALS" ] && [[ -v "SETTING_VALUE[NEBULA_JOIN_TOKEN]" ]]; then
  say "already joined ($CREDENTIALS): the join token is not written"
  unset 'SETTING_VALUE[NEBULA_JOIN_TOKEN]'
fi
set_setting NEBULA_CREDENTIALS_FILE /var/lib/nebula/worker/credentials.json

# The old file line by line, each given key replaced where it stands, the others appended; once
# joined, the join token is dropped (the worker no longer reads it). Written with mode 600 from the
# start, then renamed over the old one.
write_env() {
  local line key
  declare -A written=()
  if [ -f "$ENV_FILE" ]; then
    while IFS= read -r line || [ -n "$line" ]; do
      key="${line%%=*}"
      if [ "$key" = NEBULA_JOIN_TOKEN ] && [ -f "$CREDENTIALS" ]; then continue; fi
      if [[ "$line" == *=* ]] && [[ -v "SETTING_VALUE[$key]" ]]; then
        [[ -v "written[$key]" ]] || printf '%s=%s\n' "$key" "${SETTING_VALUE[$key]}"
        written[$key]=1
      else
        printf '%s\n' "$line"
      fi
    done <"$ENV_FILE"
  else
    printf '# The Nebula worker'"'"'s settings (see deploy/README.md and services/worker/README.md).\n'
    printf '# Mode 600: it may hold the join token until the host has joined. After a change:\n'
    printf '#   systemctl restart nebula-worker\n'
  fi
  for key in "${SETTING_KEYS[@]}"; do
    [[ -v "SETTING_VALUE[$key]" ]] || continue
    [[ -v "written[$key]" ]] || printf '%s=%s\n' "$key" "${SETTING_VALUE[$key]}"
  done
}

tmp_env="$(umask 077 && mktemp "$ETC/.worker.env.XXXXXX")"
trap 'rm -f "$tmp_env"' EXIT
write_env >"$tmp_env"
chmod 600 "$tmp_env"
[ "$(id -u)" -ne 0 ] || chown root:root "$tmp_env"
if [ -f "$ENV_FILE" ] && cmp -s "$tmp_env" "$ENV_FILE"; then
  rm -f "$tmp_env"
  chmod 600 "$ENV_FILE"
  say "settings unchanged: $ENV_FILE"
else
  mv -f "$tmp_env" "$ENV_FILE"
  say "settings written: $ENV_FILE (mode 600)"
fi
trap - EXIT

# --- state: /var/lib/nebula/worker (mode 700) --------------------------------------------------

mkdir -p "$STATE_DIR"
chmod 700 "$STATE_DIR"
[ "$(id -u)" -ne 0 ] || chown root:root "$STATE_DIR"
if [ -f "$CREDENTIALS" ]; then say "credentials kept: $CREDENTIALS"; fi

# --- the unit ----------------------------------------------------------------------------------

mkdir -p "$(dirname "$UNIT_DEST")"
if [ -z "$ROOT" ] && command -v systemd-analyze >/dev/null; then
  # Checked as it will run (its binary and bundle are in place now), before it replaces the old one.
  check_dir="$(mktemp -d)"
  cp "$UNIT_SRC" "$check_dir/$UNIT_NAME"
  # Its exit code is 0 on a key it ignores: any line about the unit counts as a refusal too.
  if ! out="$(systemd-analyze verify "$check_dir/$UNIT_NAME" 2>&1)" || grep -q "$UNIT_NAME" <<<"$out"; then
    rm -rf "$check_dir"
    die "systemd-analyze verify refuses the unit: $out"
  fi
  rm -rf "$check_dir"
fi
cp "$UNIT_SRC" "$UNIT_DEST.new.$$"
chmod 644 "$UNIT_DEST.new.$$"
mv -f "$UNIT_DEST.new.$$" "$UNIT_DEST"
say "unit installed: $UNIT_DEST"

if with_systemd; then
  was_active=false
  if systemctl is-active --quiet "$UNIT_NAME"; then was_active=true; fi
  systemctl daemon-reload
  systemctl enable --now "$UNIT_NAME"
  # enable --now leaves a running worker as it is: an upgrade restarts it on the new version.
  if $was_active; then systemctl restart "$UNIT_NAME"; fi
  say "nebula-worker enabled and $($was_active && echo restarted || echo started): journalctl -u nebula-worker -f"
else
  say "systemd not called$([ -n "$ROOT" ] && echo " (--root $ROOT)" || echo ' (it is not running here)'); to start the worker, run:"
  say "  systemctl daemon-reload && systemctl enable --now nebula-worker"
fi
