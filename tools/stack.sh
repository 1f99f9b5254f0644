#!/usr/bin/env bash
# The local stack: PostgreSQL, NATS with JetStream, the Docker engine and a registry on 127.0.0.1:5000
# (and Docker Compose v2 installed into .toolchain/, tools/compose.sh).
#
#   tools/stack.sh up       install what is missing, start what is not running, wait until each answers
#   tools/stack.sh down     stop what this script started (PostgreSQL's Debian cluster included)
#   tools/stack.sh status   one line per component; exit 1 if any is down
#
#   NATS_CLUSTER=3 tools/stack.sh up|down|status
#                           NATS as a three-server JetStream cluster instead of one server: clients on
#                           4222-4224, routes on 6222-6224, monitors on 8222-8224, data in .stack/nats-cluster/
#                           (the same bus keys; services take NATS_URL=nats://127.0.0.1:4222,nats://127.0.0.1:4223,...).
#                           Unset (or 1): one server, as always.
#
# Idempotent: a component that already answers is left alone (a nats-server of another version than
# tools/nats-server.sh pins is replaced, see nats_up). State lives in .stack/ (git-ignored).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/tools/nats-server.sh" # NEBULA_NATS_VERSION, NEBULA_NATS_BIN, nebula_nats_install
source "$ROOT/tools/compose.sh"     # NEBULA_COMPOSE_VERSION, nebula_compose_install
STATE="${NEBULA_STACK_DIR:-$ROOT/.stack}"
PG_VERSION=15
PG_CLUSTER=main
NATS_PORT="${NEBULA_NATS_PORT:-4222}"
NATS_MONITOR_PORT="${NEBULA_NATS_MONITOR_PORT:-8222}"
NATS_CLUSTER_PORT="${NEBULA_NATS_CLUSTER_PORT:-6222}"
NATS_CLUSTER="${NATS_CLUSTER:-1}"
[[ "$NATS_CLUSTER" =~ ^[1-9]$ ]] || { printf '[stack] ERROR: NATS_CLUSTER=%s: want the number of servers, 1 to 9\n' "$NATS_CLUSTER" >&2; exit 2; }
REGISTRY_ADDR="127.0.0.1:5000"
# The bus's keys and credentials (tools/src/bus-init.ts): one per machine, since the stack's NATS is
# the machine's, whichever checkout started it. Made once; kept.
BUS_DIR="${NEBULA_BUS_DIR:-/var/lib/nebula/local-bus}"

log() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

apt_install() {
  local missing=()
  for spec in "$@"; do
    local pkg="${spec%%:*}" bin="${spec#*:}"
    command -v "$bin" >/dev/null 2>&1 || [ -e "$bin" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_all() {
  # NATS is not Debian 12's package (2.9.10) but trixie's 2.10, into .toolchain/ (tools/nats-server.sh).
  nebula_nats_install || die "nats-server $NEBULA_NATS_VERSION could not be installed (see above)"
  # Compose v2 (trixie's 2.26; Debian 12's docker-compose is v1) into .toolchain/ (tools/compose.sh),
  # for deploy/compose.yaml and its end-to-end test.
  nebula_compose_install || die "docker compose $NEBULA_COMPOSE_VERSION could not be installed (see above)"
  apt_install \
    "docker.io:dockerd" \
    "postgresql:/usr/lib/postgresql/$PG_VERSION/bin/postgres" \
    "docker-registry:docker-registry" \
    "busybox-static:/bin/busybox" \
    "ca-certificates:/etc/ssl/certs/ca-certificates.crt" \
    "iproute2:ip" \
    "socat:socat" \
    "curl:curl" \
    "openssl:openssl" \
    "procps:pgrep" \
    "chromium:/usr/bin/chromium" \
    "systemd:systemd-analyze"
}

wait_for() { # name tries command...
  local name="$1" tries="$2"; shift 2
  for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  return 1
}

# --- probes -----------------------------------------------------------------------------------
pg_ok()       { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
nats_ok()     { curl -fsS "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null 2>&1; }
# Operator mode: no anonymous client gets in.
nats_secured() { curl -fsS "http://127.0.0.1:$NATS_MONITOR_PORT/varz" 2>/dev/null | grep -q '"auth_required": *true'; }
docker_ok()   { docker info >/dev/null 2>&1; }
registry_ok() { curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

# --- PostgreSQL ------------------------------------------------------------------------------
pg_up() {
  if ! pg_ok; then
    if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$PG_VERSION $PG_CLUSTER"; then
      pg_createcluster "$PG_VERSION" "$PG_CLUSTER" >/dev/null
    fi
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start || true
  fi
  wait_for postgresql 60 pg_ok || die "postgresql did not answer on 127.0.0.1:5432 (see /var/log/postgresql/)"
  # The nebula role and database; the role may create databases so tests can make throwaway ones.
  su postgres -c "psql -qtAX -c \"DO \\\$\\\$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'nebula') THEN
        CREATE ROLE nebula LOGIN CREATEDB PASSWORD 'nebula';
      END IF; END \\\$\\\$;\"" >/dev/null
  if [ "$(su postgres -c "psql -qtAX -c \"SELECT 1 FROM pg_database WHERE datname = 'nebula'\"")" != 1 ]; then
    su postgres -c "createdb -O nebula nebula"
  fi
}
pg_down() { pg_ok && pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop || true; }

# --- NATS ------------------------------------------------------------------------------------
# Field of the running server's /varz (monitoring port): version, or JetStream's store_dir.
nats_varz() { curl -fsS "http://127.0.0.1:$NATS_MONITOR_PORT/varz" 2>/dev/null | sed -n "s/^ *\"$1\": *\"\([^\"]*\)\".*/\1/p" | head -1; }
nats_running_version() { nats_varz version; }

# Stops the nats-server of another version that answers on NATS_PORT (e.g. Debian 12's 2.9.10, started
# by an older stack.sh of any checkout) and prints the folder it kept JetStream in (its -sd), so the
# new server takes over its streams and consumers: 2.10 reads 2.9's store.
nats_stop_other() { # running-version
  local pid dir
  pid="$(ss -ltnpH "sport = :$NATS_PORT" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nats-server ] ||
    die "nats-server $1 answers on 127.0.0.1:$NATS_PORT, not a secured $NEBULA_NATS_VERSION, and its process cannot be found to replace it: stop it, then run up again"
  dir="$(nats_varz store_dir)"
  dir="${dir%/jetstream}"
  log "replacing nats-server $1 (pid $pid, JetStream data in ${dir:-?}) with $NEBULA_NATS_VERSION"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && die "nats-server $1 (pid $pid) did not stop within 15 s"
  wait_for "port $NATS_PORT free" 40 sh -c "! ss -ltnH 'sport = :$NATS_PORT' | grep -q ." ||
    die "127.0.0.1:$NATS_PORT is still taken after nats-server $1 stopped"
  printf '%s\n' "$dir"
}

nats_up() {
  bash "$ROOT/tools/node.sh" "$ROOT/tools/src/bus-init.ts" "$BUS_DIR" >/dev/null
  local data="$STATE/nats"
  if nats_ok; then
    local running; running="$(nats_running_version)"
    # Another version, or a server from before the bus had users (anyone could connect): replace
    # it, keeping its data.
    if [ "$running" != "$NEBULA_NATS_VERSION" ] || ! nats_secured; then
      local kept; kept="$(nats_stop_other "${running:-unknown}")"
      [ -n "$kept" ] && [ -d "$kept" ] && data="$kept"
    fi
  fi
  if ! nats_ok; then
    mkdir -p "$data"
    nohup "$NEBULA_NATS_BIN" -c "$BUS_DIR/nats.conf" -js -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" -sd "$data" \
      >"$STATE/nats.log" 2>&1 </dev/null &
    echo $! >"$STATE/nats.pid"
  fi
  wait_for nats 60 nats_ok || die "nats-server did not answer on 127.0.0.1:$NATS_PORT (see $STATE/nats.log)"
  local now; now="$(nats_running_version)"
  [ "$now" = "$NEBULA_NATS_VERSION" ] || die "the nats-server on 127.0.0.1:$NATS_PORT is ${now:-of unknown version}, not $NEBULA_NATS_VERSION"
}

# --- NATS as a cluster (NATS_CLUSTER=N) -------------------------------------------------------
# Server i (1..N) answers on NATS_PORT+i-1, routes on NATS_CLUSTER_PORT+i-1, monitor on
# NATS_MONITOR_PORT+i-1; configs from tools/src/nats-cluster-conf.ts (libs/bus-auth clusterServerConfig).
cluster_monitor() { echo $((NATS_MONITOR_PORT + $1 - 1)); }
cluster_node_ok() { curl -fsS "http://127.0.0.1:$(cluster_monitor "$1")/healthz?js-enabled-only=true" >/dev/null 2>&1; }
cluster_node_named() { curl -fsS "http://127.0.0.1:$(cluster_monitor "$1")/varz" 2>/dev/null | grep -q "\"server_name\": *\"n$1\""; }
cluster_ok() { local i; for i in $(seq 1 "$NATS_CLUSTER"); do cluster_node_ok "$i" || return 1; done; }
cluster_urls() { local i out=""; for i in $(seq 1 "$NATS_CLUSTER"); do out="$out${out:+,}nats://127.0.0.1:$((NATS_PORT + i - 1))"; done; echo "$out"; }
# The meta leader is known and every server's JetStream is current (/healthz without options).
cluster_current() { local i; for i in $(seq 1 "$NATS_CLUSTER"); do curl -fsS "http://127.0.0.1:$(cluster_monitor "$i")/healthz" >/dev/null 2>&1 || return 1; done; }

nats_cluster_up() {
  bash "$ROOT/tools/node.sh" "$ROOT/tools/src/bus-init.ts" "$BUS_DIR" >/dev/null
  # A single server on the first port (the default stack) is not part of a cluster: say so rather
  # than start the others around it.
  if nats_ok && ! cluster_node_named 1; then
    die "a nats-server that is not cluster server n1 answers on 127.0.0.1:$NATS_PORT: stop it (tools/stack.sh down) before NATS_CLUSTER=$NATS_CLUSTER up"
  fi
  local dir="$STATE/nats-cluster"
  mkdir -p "$dir"
  local name client monitor conf i=0
  while read -r name client monitor conf; do
    i=$((i + 1))
    if ! cluster_node_ok "$i"; then
      ss -ltnH "sport = :$client" 2>/dev/null | grep -q . && die "127.0.0.1:$client is taken by something else than cluster server $name"
      nohup "$NEBULA_NATS_BIN" -c "$conf" >"$STATE/nats-$name.log" 2>&1 </dev/null &
      echo $! >"$STATE/nats-$name.pid"
    fi
  done < <(bash "$ROOT/tools/node.sh" "$ROOT/tools/src/nats-cluster-conf.ts" "$BUS_DIR" "$dir" "$NATS_CLUSTER" \
    --client-port "$NATS_PORT" --cluster-port "$NATS_CLUSTER_PORT" --monitor-port "$NATS_MONITOR_PORT")
  for i in $(seq 1 "$NATS_CLUSTER"); do
    wait_for "nats n$i" 60 cluster_node_ok "$i" || die "cluster server n$i did not answer on 127.0.0.1:$((NATS_PORT + i - 1)) (see $STATE/nats-n$i.log)"
  done
  wait_for "the JetStream cluster" 120 cluster_current || die "the cluster's JetStream is not current (no meta leader?): see $STATE/nats-n*.log"
  cluster_join_missing || die "the JetStream meta group does not hold every server ($(cluster_members | tr '\n' ' ')): see $STATE/nats-n*.log"
  wait_for "the JetStream cluster" 120 cluster_current || die "the cluster's JetStream is not current: see $STATE/nats-n*.log"
  local now; now="$(NATS_MONITOR_PORT="$(cluster_monitor 1)" nats_running_version)"
  [ "$now" = "$NEBULA_NATS_VERSION" ] || die "cluster server n1 is ${now:-of unknown version}, not $NEBULA_NATS_VERSION"
}

# The servers in the JetStream meta group, one name a line, as its leader lists them (itself and its replicas).
cluster_members() {
  local i j
  for i in $(seq 1 "$NATS_CLUSTER"); do
    j="$(curl -fsS "http://127.0.0.1:$(cluster_monitor "$i")/jsz?leader-only=true" 2>/dev/null | tr -d ' \n')" || continue
    j="${j#*\"meta_cluster\":}"
    printf '%s' "$j" | grep -o '"\(leader\|name\)":"n[0-9]"' | sed 's/.*:"\(n[0-9]\)"/\1/' | sort -u
    return 0
  done
  return 1
}
cluster_sound() { cluster_current && cluster_whole; }
cluster_whole() { local m; m="$(cluster_members)" || return 1; [ "$(printf '%s\n' "$m" | grep -c .)" = "$NATS_CLUSTER" ]; }

# Servers started together sometimes form a meta group of two, every server healthy, the third
# outside it for minutes (a race seen about one start in four with 2.10.27): a stream with three
# copies is then refused ("no suitable peers for placement"). A server left out is restarted (it
# is added at once); only one this script started.
cluster_join_missing() {
  local round i members
  for round in 1 2 3; do
    wait_for "the whole meta group" 10 cluster_whole && return 0
    members="$(cluster_members || true)"
    [ -n "$members" ] || return 1
    for i in $(seq 1 "$NATS_CLUSTER"); do
      printf '%s\n' "$members" | grep -qx "n$i" && continue
      [ -f "$STATE/nats-n$i.pid" ] || die "cluster server n$i is outside the JetStream meta group and was not started by this script: restart it"
      log "cluster server n$i is outside the JetStream meta group ($(echo $members)): restarting it"
      stop_pidfile "nats-n$i"
      nohup "$NEBULA_NATS_BIN" -c "$STATE/nats-cluster/n$i.conf" >>"$STATE/nats-n$i.log" 2>&1 </dev/null &
      echo $! >"$STATE/nats-n$i.pid"
      wait_for "nats n$i" 60 cluster_node_ok "$i" || die "cluster server n$i did not answer again (see $STATE/nats-n$i.log)"
    done
  done
  cluster_whole
}

nats_cluster_down() {
  local i
  for i in $(seq 1 9); do stop_pidfile "nats-n$i"; done
}

nats_cluster_status() {
  local i rc=0
  for i in $(seq 1 "$NATS_CLUSTER"); do
    line "nats n$i" "cluster_node_ok $i" "127.0.0.1:$((NATS_PORT + i - 1))  routes :$((NATS_CLUSTER_PORT + i - 1)), monitor :$(cluster_monitor "$i")" || rc=1
  done
  line "nats" cluster_sound "cluster of $NATS_CLUSTER, operator mode, credentials in $BUS_DIR; NATS_URL=$(cluster_urls)" || rc=1
  return $rc
}

# --- Docker engine ---------------------------------------------------------------------------
docker_up() {
  if ! docker_ok; then
    [ -z "${DOCKER_HOST:-}" ] || die "docker engine at DOCKER_HOST=$DOCKER_HOST does not answer"
    nohup dockerd >"$STATE/dockerd.log" 2>&1 </dev/null &
    echo $! >"$STATE/dockerd.pid"
  fi
  wait_for docker 120 docker_ok || die "the docker engine did not answer (see $STATE/dockerd.log)"
}

# --- registry --------------------------------------------------------------------------------
registry_up() {
  if ! registry_ok; then
    mkdir -p "$STATE/registry"
    cat >"$STATE/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
YAML
    nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 </dev/null &
    echo $! >"$STATE/registry.pid"
  fi
  wait_for registry 60 registry_ok || die "the registry did not answer on $REGISTRY_ADDR (see $STATE/registry.log)"
}

stop_pidfile() {
  local f="$STATE/$1.pid"
  [ -f "$f" ] || return 0
  local pid; pid="$(cat "$f")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$f"
}

line() { if $2; then printf '%-11s up    %s\n' "$1" "$3"; else printf '%-11s down  %s\n' "$1" "$3"; return 1; fi; }

case "${1:-}" in
  up)
    mkdir -p "$STATE"
    install_all
    if [ "$NATS_CLUSTER" -gt 1 ]; then
      pg_up; nats_cluster_up; docker_up; registry_up
      log "up: postgresql 127.0.0.1:5432, nats $NEBULA_NATS_VERSION cluster of $NATS_CLUSTER (NATS_URL=$(cluster_urls)), docker, registry $REGISTRY_ADDR"
    else
      pg_up; nats_up; docker_up; registry_up
      log "up: postgresql 127.0.0.1:5432, nats $NEBULA_NATS_VERSION 127.0.0.1:$NATS_PORT, docker, registry $REGISTRY_ADDR"
    fi
    ;;
  down)
    stop_pidfile registry; stop_pidfile nats; nats_cluster_down; stop_pidfile dockerd; pg_down
    log "down"
    ;;
  status)
    rc=0
    line postgresql pg_ok "127.0.0.1:5432" || rc=1
    if [ "$NATS_CLUSTER" -gt 1 ]; then
      nats_cluster_status || rc=1
      line docker docker_ok "${DOCKER_HOST:-unix:///var/run/docker.sock}" || rc=1
      line registry registry_ok "$REGISTRY_ADDR" || rc=1
      exit $rc
    fi
    nats_version="$(nats_running_version || true)"
    nats_note="127.0.0.1:$NATS_PORT  nats-server ${nats_version:-?}, operator mode, credentials in $BUS_DIR"
    # Another version than the pinned one counts as a problem: `up` replaces it.
    if [ -n "$nats_version" ] && [ "$nats_version" != "$NEBULA_NATS_VERSION" ]; then
      nats_note="$nats_note (not $NEBULA_NATS_VERSION: tools/stack.sh up replaces it)"; rc=1
    fi
    line nats nats_secured "$nats_note" || rc=1
    line docker docker_ok "${DOCKER_HOST:-unix:///var/run/docker.sock}" || rc=1
    line registry registry_ok "$REGISTRY_ADDR" || rc=1
    exit $rc
    ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
