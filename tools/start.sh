#!/usr/bin/env bash
# `npm start`: installs what is missing, brings the local stack up, then runs the API, the notifier
# and a worker for this host in the foreground until Ctrl-C (or SIGTERM), which stops all three.
# Settings come from the environment: `APP_NAME=web,db npm start` runs a worker serving web and db.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$NEBULA_ROOT"
bash tools/stack.sh up
bash tools/images/build.sh

pids=()
stop_all() {
  trap - INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop_all; exit 0' INT TERM

for svc in api notifier worker; do
  node "services/$svc/src/main.ts" &
  pids+=($!)
done

API_PORT="${API_PORT:-8080}"
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1; then break; fi
  sleep 0.2
done
cat >&2 <<TEXT

  Nebula is running.
    API:       http://127.0.0.1:$API_PORT   (health: /health, metrics: /metrics)
    worker:    host ${HOST_ID:-$(hostname)}, apps: ${APP_NAME:-none (set APP_NAME=a,b)}
    stack:     bash tools/stack.sh status
  Ctrl-C stops the services (the stack keeps running; bash tools/stack.sh down stops it).

TEXT

# If any service exits, stop the others and exit with its status.
set +e
wait -n "${pids[@]}"
status=$?
stop_all
exit "$status"
