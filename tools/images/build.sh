#!/usr/bin/env bash
# Builds the images tests need from Debian packages on this machine (nothing is pulled):
#   nebula/echo:1      busybox httpd that answers with its env, port, hostname and /version;
#                      also pushed as 127.0.0.1:5000/nebula/echo:1
#   nebula/nats:2.10   nats-server 2.10 (the one tools/nats-server.sh installs into .toolchain/), for
#                      throwaway servers in tests (testcontainers)
#   nebula/postgres:15 PostgreSQL 15, for throwaway servers in tests (testcontainers) and
#                      deploy/compose.yaml's test (PGDATA on a volume, as the official image)
# An image is rebuilt only when its inputs changed (label nebula.build-hash).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/../nats-server.sh" # NEBULA_NATS_VERSION, NEBULA_NATS_BIN, nebula_nats_install
REGISTRY="127.0.0.1:5000"
log() { printf '[images] %s\n' "$*" >&2; }

current_hash() { docker image inspect -f '{{ index .Config.Labels "nebula.build-hash" }}' "$1" 2>/dev/null || true; }

busybox_root() { # dir
  mkdir -p "$1/bin" "$1/tmp" "$1/etc" "$1/www/cgi-bin" "$1/proc" "$1/sys" "$1/dev"
  chmod 1777 "$1/tmp"
  cp /bin/busybox "$1/bin/busybox"
  for applet in $(/bin/busybox --list); do [ -e "$1/bin/$applet" ] || ln -s busybox "$1/bin/$applet"; done
  printf 'root:x:0:0:root:/:/bin/sh\npostgres:x:999:999:postgres:/tmp:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$1/etc/passwd"
  printf 'root:x:0:\npostgres:x:999:\nnogroup:x:65534:\n' >"$1/etc/group"
}

put() { # root file [cp flags]: copy a file to the same path under root
  mkdir -p "$1$(dirname "$2")" && cp ${3:--a} "$2" "$1$2"
}

copy_with_libs() { # root files...
  local root="$1"; shift
  local f
  for f in "$@"; do put "$root" "$f"; done
  copy_libs "$root" "$@"
}

copy_libs() { # root files...: the libraries the files link to (ldd), at their paths under root
  local root="$1"; shift
  local f
  for f in $(ldd "$@" 2>/dev/null | awk '/=>/ {print $3} /^\t\/lib/ {print $1}' | grep '^/' | sort -u); do
    put "$root" "$f" -L
  done
  put "$root" /lib64/ld-linux-x86-64.so.2 -L
}

import() { # name hash dir changes...
  local name="$1" hash="$2" dir="$3"; shift 3
  local args=(--change "LABEL nebula.build-hash=$hash" --change "LABEL nebula.test-image=true")
  for c in "$@"; do args+=(--change "$c"); done
  tar -C "$dir" -c . | docker import "${args[@]}" - "$name" >/dev/null
}

build_echo() {
  local name="nebula/echo:1"
  local hash; hash="$(cat "$HERE/build.sh" "$HERE"/echo/* /bin/busybox | sha256sum | cut -c1-16)"
  if [ "$(current_hash "$name")" != "$hash" ]; then
    log "building $name"
    local dir; dir="$(mktemp -d)"
    busybox_root "$dir"
    cp "$HERE/echo/entrypoint.sh" "$dir/entrypoint.sh"
    cp "$HERE/echo/index.cgi" "$dir/www/cgi-bin/index.cgi"
    echo 1 >"$dir/version"
    import "$name" "$hash" "$dir" 'ENTRYPOINT ["/entrypoint.sh"]' 'ENV PORT=80' 'EXPOSE 80'
    rm -rf "$dir"
  fi
  docker tag "$name" "$REGISTRY/$name"
  docker push -q "$REGISTRY/$name" >/dev/null
}

build_nats() {
  nebula_nats_install || exit 1
  local name="nebula/nats:${NEBULA_NATS_VERSION%.*}" # nebula/nats:2.10
  local hash; hash="$(cat "$HERE/build.sh" "$NEBULA_NATS_BIN" | sha256sum | cut -c1-16)"
  [ "$(current_hash "$name")" = "$hash" ] && return 0
  log "building $name (nats-server $NEBULA_NATS_VERSION)"
  local dir; dir="$(mktemp -d)"
  mkdir -p "$dir/tmp" "$dir/data" "$dir/usr/sbin" && chmod 1777 "$dir/tmp"
  # The binary from .toolchain/, at the path Debian gives it; its libraries (libc) from this machine.
  cp "$NEBULA_NATS_BIN" "$dir/usr/sbin/nats-server"
  copy_libs "$dir" "$NEBULA_NATS_BIN"
  import "$name" "$hash" "$dir" 'ENTRYPOINT ["/usr/sbin/nats-server"]' 'CMD ["-js", "-sd", "/data", "-m", "8222"]' 'EXPOSE 4222 8222'
  rm -rf "$dir"
}

build_postgres() {
  local name="nebula/postgres:15"
  local pg=/usr/lib/postgresql/15
  local hash; hash="$(cat "$HERE/build.sh" "$HERE"/postgres/* "$pg/bin/postgres" | sha256sum | cut -c1-16)"
  [ "$(current_hash "$name")" = "$hash" ] && return 0
  log "building $name"
  local dir; dir="$(mktemp -d)"
  busybox_root "$dir"
  copy_with_libs "$dir" "$pg"/bin/* $(ls "$pg"/lib/*.so | grep -v llvmjit)
  mkdir -p "$dir/usr/share/postgresql" && cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
  for z in UTC Etc/UTC; do [ -e "/usr/share/zoneinfo/$z" ] && put "$dir" "/usr/share/zoneinfo/$z" -L; done
  cp "$HERE/postgres/entrypoint.sh" "$dir/entrypoint.sh"
  # The official image's volume path, owned by postgres (999): a named volume mounted there starts
  # with this folder's owner and mode, so PGDATA below it can be created (see postgres/entrypoint.sh).
  mkdir -p "$dir/var/lib/postgresql/data" && chmod 700 "$dir/var/lib/postgresql/data"
  chown -R 999:999 "$dir/tmp" "$dir/var/lib/postgresql"
  import "$name" "$hash" "$dir" 'ENTRYPOINT ["/entrypoint.sh"]' "ENV PATH=$pg/bin:/bin TZ=UTC" 'USER 999' 'EXPOSE 5432'
  rm -rf "$dir"
}

build_echo
build_nats
build_postgres
