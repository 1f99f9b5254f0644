# One package from Debian 13 (trixie), unpacked into a folder of .toolchain/ (git-ignored): how
# tools/nats-server.sh and tools/compose.sh get a newer server or tool than Debian 12 has, for packages
# whose binaries depend on nothing newer than Debian 12 (libc6 >= 2.34). Sourced, never run.
#
#   nebula_trixie_install PACKAGE VERSION DIR BINARY VERSION_OF PIN [NOTE]
#
#     PACKAGE     the Debian package (nats-server)
#     VERSION     its upstream version, pinned (2.10.27): any Debian revision of it is taken (-1+b2)
#     DIR         where the package's files go (.toolchain/nats-server): DIR/usr/sbin/... as in the package
#     BINARY      the binary to check, relative to DIR (usr/sbin/nats-server)
#     VERSION_OF  a function printing the version a binary reports ("" when it does not run), compared
#                 with VERSION before and after the download
#     PIN         where VERSION is set, for the message when trixie has moved on ("NEBULA_NATS_VERSION
#                 in tools/nats-server.sh")
#     NOTE        added to the "installing" line (what the machine has instead)
#
# Only this one package is taken from trixie: the download uses a private apt configuration (its own
# source list, package lists and cache, under a temporary folder in .toolchain/) and never touches the
# machine's /etc/apt, so nothing else on the machine is upgraded or installed. apt checks the package
# against the signed trixie index (Debian's archive keyring). Idempotent: a binary that already reports
# VERSION is left alone; another version is replaced. One install at a time (a lock per DIR); the new
# files are swapped in whole, so a failed or interrupted install never leaves half a package behind.
# NEBULA_TRIXIE_MIRROR: another Debian mirror.
NEBULA_TRIXIE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" # for the messages

_nebula_trixie_fail() { # message [log file]
  printf '[setup] ERROR: %s\n' "$1" >&2
  if [ -n "${2:-}" ] && [ -s "$2" ]; then sed 's/^/[setup]   /' "$2" | tail -n 8 >&2; fi
  return 1
}

# The download and unpacking of PACKAGE=VERSION-* into $tmp/root ($tmp is removed by the caller).
_nebula_trixie_fetch() { # tmp package version pin
  local tmp="$1" pkg="$2" version="$3" pin="$4"
  local keyring=/usr/share/keyrings/debian-archive-keyring.gpg suite=trixie
  local mirror="${NEBULA_TRIXIE_MIRROR:-http://deb.debian.org/debian}"
  for tool in apt-get dpkg-deb; do
    command -v "$tool" >/dev/null 2>&1 || { _nebula_trixie_fail "installing $pkg $version needs $tool (a Debian machine)"; return 1; }
  done
  [ -r "$keyring" ] || { _nebula_trixie_fail "installing $pkg $version needs Debian's archive keyring ($keyring, package debian-archive-keyring)"; return 1; }
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"
  echo "deb [signed-by=$keyring] $mirror $suite main" >"$tmp/sources.list"
  local apt=(apt-get -q
    -o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o Dir::State::Status=/dev/null
    -o Acquire::Languages=none -o "APT::Sandbox::User=$(id -un)")
  "${apt[@]}" --error-on=any update >"$tmp/apt.log" 2>&1 ||
    { _nebula_trixie_fail "could not read the package list of Debian $suite from $mirror (needed for $pkg $version: is it reachable?)" "$tmp/apt.log"; return 1; }
  (cd "$tmp/deb" && "${apt[@]}" download "$pkg=$version-*") >"$tmp/apt.log" 2>&1 ||
    { _nebula_trixie_fail "could not download $pkg $version from Debian $suite ($mirror); if $suite now has another version, change $pin" "$tmp/apt.log"; return 1; }
  local debs=("$tmp/deb/${pkg}_"*.deb)
  dpkg-deb -x "${debs[0]}" "$tmp/root" 2>"$tmp/apt.log" ||
    { _nebula_trixie_fail "could not unpack $(basename "${debs[0]}")" "$tmp/apt.log"; return 1; }
}

nebula_trixie_install() { # package version dir binary version_of pin [note]
  local pkg="$1" version="$2" dir="$3" binary="$4" version_of="$5" pin="$6" note="${7:-}"
  _nebula_trixie_installed() { [ -x "$dir/$binary" ] && [ "$("$version_of" "$dir/$binary")" = "$version" ]; }
  _nebula_trixie_installed && return 0
  local parent; parent="$(dirname "$dir")"
  mkdir -p "$parent"
  (
    # One install at a time; a second caller waits and then finds it done.
    flock 9
    _nebula_trixie_installed && exit 0
    echo "[setup] installing $pkg $version from Debian trixie into ${dir#"$NEBULA_TRIXIE_ROOT/"}/${note:+ ($note)}" >&2
    tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    _nebula_trixie_fetch "$tmp" "$pkg" "$version" "$pin" || exit 1
    got="$("$version_of" "$tmp/root/$binary")"
    [ "$got" = "$version" ] ||
      { _nebula_trixie_fail "the downloaded $pkg reports version '${got:-none: it does not run here}', not $version"; exit 1; }
    rm -rf "$dir"
    mv "$tmp/root" "$dir"
  ) 9>"$dir.lock"
}

