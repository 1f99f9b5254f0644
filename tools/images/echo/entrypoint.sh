#!/bin/sh
# nebula echo test image: an HTTP server on $PORT (default 80) whose answer shows the container's
# environment, its listening port, its hostname and the image's /version. Exits at once on SIGTERM.
PORT="${PORT:-80}"
if [ "$#" -gt 0 ]; then exec "$@"; fi
env > /tmp/container.env
echo "$PORT" > /tmp/port
trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
httpd -f -p "$PORT" -h /www &
pid=$!
wait "$pid"
