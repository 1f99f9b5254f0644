#!/usr/bin/env bash
# `npm start`: installs what is missing, brings the local stack up, then runs the API, the notifier
# and a worker for this host in the foreground until Ctrl-C (or SIGTERM), which stops all three.
# Settings come from the environment: `APP_NAME=web,db npm start` runs a worker serving web and db.
# `FLEET_HOSTS=3 APP_NAME=web npm start` also runs a local fleet: 3 simulated hosts, each in a network
# namespace of its own with its own Docker engine and a worker serving APP_NAME, joined with a token
# (tools/src/fleet/; `npm run -s fleet -- status` lists them). Stopping npm start removes them.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEBULA_ROOT"
FLEET_HOSTS="${FLEET_HOSTS:-0}"
if ! [[ "$FLEET_HOSTS" =~ ^[0-9]{1,3}$ ]]; then
  echo "FLEET_HOSTS must be a whole number of simulated hosts for the local fleet (at most 64), got \"$FLEET_HOSTS\"" >&2
  exit 2
fi
FLEET_HOSTS=$((10#$FLEET_HOSTS))
export FLEET_HOSTS
bash tools/stack.sh up
bash tools/images/build.sh
# The dashboard the API serves at /ui (services/api/ui; built again only when its sources changed).
node services/api/ui/build.ts --if-stale
# What a local fleet that did not stop (a crash, a kill -9) left: its workers, engines, namespaces
# and veths, found by its state file and its own names only. Removed before anything starts.
if [ -e "${NEBULA_FLEET_DIR:-.stack/fleet}/state.json" ]; then node tools/src/fleet/main.ts cleanup >&2 || true; fi

# The API's local admin. The API refuses to start without one (and with AUTH_ENABLED=false), so
# when none is given `npm start` makes one: user "admin" with a random password kept in
# .stack/api-admin-password (git-ignored, mode 600) and printed below. Users with narrower rights
# are made with `nebula users` and `nebula groups`.
if [ -z "${BASIC_AUTH_USER:-}${BASIC_AUTH_PASSWORD:-}${AUTH_TOKEN:-}" ]; then
  secret_file=.stack/api-admin-password
  if [ ! -s "$secret_file" ]; then
    mkdir -p .stack
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=\n' >"$secret_file")
  fi
  export BASIC_AUTH_USER=admin
  BASIC_AUTH_PASSWORD="$(cat "$secret_file")"
  export BASIC_AUTH_PASSWORD
  auth_note="basic, local admin (none was configured): user admin, password $BASIC_AUTH_PASSWORD
               (kept in $secret_file; set BASIC_AUTH_USER/BASIC_AUTH_PASSWORD or AUTH_TOKEN to choose your own)
               e.g. curl -u admin:$BASIC_AUTH_PASSWORD http://127.0.0.1:${API_PORT:-8080}/api/v2/apps"
else
  auth_note=""
  [ -n "${BASIC_AUTH_USER:-}" ] && auth_note="basic (user ${BASIC_AUTH_USER}, password from BASIC_AUTH_PASSWORD)"
  [ -n "${AUTH_TOKEN:-}" ] && auth_note="${auth_note:+$auth_note + }bearer token (from AUTH_TOKEN)"
  [ -z "$auth_note" ] && auth_note="incomplete: BASIC_AUTH_USER and BASIC_AUTH_PASSWORD must be set together (the API will say so)"
fi

# The worker's host id: HOST_ID, else the machine id (never the hostname). A machine without one (a
# minimal container image has an empty /etc/machine-id) gets a random id, kept in .stack/host-id so
# the next start is the same host.
if [ -z "${HOST_ID:-}" ] && [ ! -s "${MACHINE_ID_FILE:-/etc/machine-id}" ]; then
  if [ ! -s .stack/host-id ]; then
    mkdir -p .stack
    od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >.stack/host-id
  fi
  export MACHINE_ID_FILE="$NEBULA_ROOT/.stack/host-id"
fi

pids=()
stop_all() {
  trap - INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
  # The fleet removes its hosts when it stops; if it died instead, what it left goes now.
  if [ "$FLEET_HOSTS" -gt 0 ]; then node tools/src/fleet/main.ts cleanup >/dev/null 2>&1 || true; fi
}
trap 'stop_all; exit 0' INT TERM

# The bus runs secured (tools/stack.sh made its keys): the API and the notifier connect with their
# own credentials; the worker joins with a one-time token the first time and keeps its credential.
BUS_DIR="${NEBULA_BUS_DIR:-/var/lib/nebula/local-bus}"
# NATS_CLUSTER=3 (tools/stack.sh): the API, the notifier and the worker get the servers' list.
if [ "${NATS_CLUSTER:-1}" -gt 1 ] && [ -z "${NATS_URL:-}" ]; then
  NATS_URL="$(seq 1 "$NATS_CLUSTER" | while read -r i; do printf 'nats://127.0.0.1:%s,' $((${NEBULA_NATS_PORT:-4222} + i - 1)); done)"
  export NATS_URL="${NATS_URL%,}"
fi
NATS_CREDS="$BUS_DIR/api.creds" BUS_KEYS_FILE="$BUS_DIR/control-plane.json" node services/api/src/main.ts &
pids+=($!)
NATS_CREDS="$BUS_DIR/notifier.creds" node services/notifier/src/main.ts &
pids+=($!)

API_PORT="${API_PORT:-8080}"
for _ in $(seq 1 150); do
  if curl -fsS "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1; then break; fi
  sleep 0.2
done

export NEBULA_URL="${NEBULA_URL:-http://127.0.0.1:$API_PORT}"
export NEBULA_CREDENTIALS_FILE="${NEBULA_CREDENTIALS_FILE:-$NEBULA_ROOT/.stack/worker-credentials.json}"
if [ ! -s "$NEBULA_CREDENTIALS_FILE" ] && [ -z "${NEBULA_JOIN_TOKEN:-}" ]; then
  api_auth=()
  if [ -n "${BASIC_AUTH_USER:-}" ]; then api_auth=(-u "$BASIC_AUTH_USER:${BASIC_AUTH_PASSWORD:-}")
  elif [ -n "${AUTH_TOKEN:-}" ]; then api_auth=(-H "Authorization: Bearer $AUTH_TOKEN"); fi
  answer="$(curl -fsS --max-time 10 "${api_auth[@]}" -H 'Content-Type: application/json' \
    -d '{"ttl_seconds":600,"uses":1,"description":"npm start: this machine'"'"'s worker"}' \
    "http://127.0.0.1:$API_PORT/api/v2/hosts/join_tokens")" || { echo "could not create a join token for the local worker" >&2; stop_all; exit 1; }
  NEBULA_JOIN_TOKEN="$(printf '%s' "$answer" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.parse(s).token))')"
  export NEBULA_JOIN_TOKEN
fi
node services/worker/src/main.ts &
pids+=($!)
unset NEBULA_JOIN_TOKEN

# The local fleet: its own process (tools/src/fleet/main.ts) starts the hosts and their workers,
# prints their table once they run, and removes them all at SIGTERM. A worker of it that exits is
# reported and stops nothing; the fleet process failing to start stops npm start, as any service does.
fleet_note=""
fleet_stop_note=""
if [ "$FLEET_HOSTS" -gt 0 ]; then
  fleet_stop_note=" and removes the local fleet"
  node tools/src/fleet/main.ts start &
  pids+=($!)
  fleet_note="
    fleet:     $FLEET_HOSTS simulated host(s) starting (fleet-1..$FLEET_HOSTS, apps: ${APP_NAME:-none}); their table follows;
               npm run -s fleet -- status [--json]"
fi

cat >&2 <<TEXT

  Nebula is running.
    API:       http://127.0.0.1:$API_PORT   (health: /health, metrics: /metrics, OpenAPI: /openapi.json)
    API auth:  $auth_note
    worker:    host ${HOST_ID:-$(cat "${MACHINE_ID_FILE:-/etc/machine-id}" 2>/dev/null || echo '(no machine id: set HOST_ID)')}, apps: ${APP_NAME:-none (set APP_NAME=a,b)}
               joined with a one-time token; its credential is kept in $NEBULA_CREDENTIALS_FILE
    NATS:      secured (operator mode); credentials in $BUS_DIR (admin.creds for the nats CLI)
    stack:     bash tools/stack.sh status$fleet_note
  Ctrl-C stops the services${fleet_stop_note} (the stack keeps running; bash tools/stack.sh down stops it).

TEXT

# If any service exits, stop the others and exit with its status.
set +e
wait -n "${pids[@]}"
status=$?
stop_all
exit "$status"
