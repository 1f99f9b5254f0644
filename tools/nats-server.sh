#!/usr/bin/env bash
# nats-server NEBULA_NATS_VERSION (JetStream) from Debian 13 (trixie), unpacked into .toolchain/nats-server/
# (git-ignored). Debian 12's own package is 2.9.10; trixie's 2.10 build depends on nothing newer than
# Debian 12 has (libc6 >= 2.34), so its binary runs here as it is.
#
#   source tools/nats-server.sh; nebula_nats_install   installs it when missing (tools/env.sh, stack.sh, images)
#   bash tools/nats-server.sh ARGS...                  installs it when missing, then runs it with ARGS
#
# Only this one package is taken from trixie: the download uses a private apt configuration (its own
# source list, package lists and cache, under a temporary folder in .toolchain/) and never touches
# the machine's /etc/apt, so nothing else on the machine is upgraded or installed. apt checks the
# package against the signed trixie index (Debian's archive keyring). Idempotent: a binary that
# already reports NEBULA_NATS_VERSION is left alone; another version is replaced.
NEBULA_NATS_VERSION=2.10.27
NEBULA_NATS_SUITE=trixie
NEBULA_NATS_MIRROR="${NEBULA_NATS_MIRROR:-http://deb.debian.org/debian}"
_nebula_nats_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NEBULA_NATS_DIR="$_nebula_nats_root/.toolchain/nats-server"
NEBULA_NATS_BIN="$NEBULA_NATS_DIR/usr/sbin/nats-server"

# "2.10.27" from "nats-server: v2.10.27"; empty when the binary is missing or does not run.
nebula_nats_version_of() { "$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}//p'; }

nebula_nats_installed() {
  [ -x "$NEBULA_NATS_BIN" ] && [ "$(nebula_nats_version_of "$NEBULA_NATS_BIN")" = "$NEBULA_NATS_VERSION" ]
}

_nebula_nats_fail() { # message [log file]
  printf '[setup] ERROR: %s\n' "$1" >&2
  if [ -n "${2:-}" ] && [ -s "$2" ]; then sed 's/^/[setup]   /' "$2" | tail -n 8 >&2; fi
  return 1
}

# The download and unpacking, in the folder $1 (removed by the caller).
_nebula_nats_fetch() {
  local tmp="$1" keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || { _nebula_nats_fail "installing nats-server $NEBULA_NATS_VERSION needs $tool (a Debian machine)"; return 1; }
  done
  [ -r "$keyring" ] || { _nebula_nats_fail "installing nats-server $NEBULA_NATS_VERSION needs Debian's archive keyring ($keyring, package debian-archive-keyring)"; return 1; }
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"
  echo "deb [signed-by=$keyring] $NEBULA_NATS_MIRROR $NEBULA_NATS_SUITE main" >"$tmp/sources.list"
  local apt=(apt-get -q
    -o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o Dir::State::Status=/dev/null
    -o Acquire::Languages=none -o "APT::Sandbox::User=$(id -un)")
  "${apt[@]}" --error-on=any update >"$tmp/apt.log" 2>&1 ||
    { _nebula_nats_fail "could not read the package list of Debian $NEBULA_NATS_SUITE from $NEBULA_NATS_MIRROR (needed for nats-server $NEBULA_NATS_VERSION: is it reachable?)" "$tmp/apt.log"; return 1; }
  # Any Debian revision of the pinned upstream version (2.10.27-1+b2 today).
  (cd "$tmp/deb" && "${apt[@]}" download "nats-server=$NEBULA_NATS_VERSION-*") >"$tmp/apt.log" 2>&1 ||
    { _nebula_nats_fail "could not download nats-server $NEBULA_NATS_VERSION from Debian $NEBULA_NATS_SUITE ($NEBULA_NATS_MIRROR); if $NEBULA_NATS_SUITE now has another version, change NEBULA_NATS_VERSION in tools/nats-server.sh" "$tmp/apt.log"; return 1; }
  dpkg-deb -x "$tmp"/deb/nats-server_*.deb "$tmp/root" 2>"$tmp/apt.log" ||
    { _nebula_nats_fail "could not unpack $(basename "$tmp"/deb/nats-server_*.deb)" "$tmp/apt.log"; return 1; }
  local got; got="$(nebula_nats_version_of "$tmp/root/usr/sbin/nats-server")"
  [ "$got" = "$NEBULA_NATS_VERSION" ] ||
    { _nebula_nats_fail "the downloaded nats-server reports version '${got:-none: it does not run here}', not $NEBULA_NATS_VERSION"; return 1; }
}

# Installs nats-server NEBULA_NATS_VERSION into .toolchain/nats-server/ when it is missing or another
# version. Returns non-zero (after an error message) when it cannot.
nebula_nats_install() {
  nebula_nats_installed && return 0
  mkdir -p "$_nebula_nats_root/.toolchain"
  (
    # One install at a time; a second caller waits and then finds it done.
    flock 9
    nebula_nats_installed && exit 0
    machine="$(nebula_nats_version_of "$(command -v nats-server || echo /nonexistent)")"
    echo "[setup] installing nats-server $NEBULA_NATS_VERSION from Debian $NEBULA_NATS_SUITE into .toolchain/nats-server/ (the machine's: ${machine:-none})" >&2
    tmp="$(mktemp -d "$_nebula_nats_root/.toolchain/nats-server.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    _nebula_nats_fetch "$tmp" || exit 1
    # Swapped in whole, so a failed or interrupted install never leaves half a server behind.
    rm -rf "$NEBULA_NATS_DIR"
    mv "$tmp/root" "$NEBULA_NATS_DIR"
  ) 9>"$_nebula_nats_root/.toolchain/nats-server.lock"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  nebula_nats_install || exit 1
  exec "$NEBULA_NATS_BIN" "$@"
fi
