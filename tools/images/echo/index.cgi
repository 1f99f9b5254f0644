#!/bin/sh
printf 'Content-Type: application/json\r\n\r\n'
awk -v port="$(cat /tmp/port)" -v version="$(cat /version)" -v host="$(hostname)" '
function q(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); gsub(/\t/, "\\t", s); return "\"" s "\"" }
BEGIN { printf "{\"port\":%s,\"version\":%s,\"hostname\":%s,\"env\":{", port + 0, q(version), q(host); n = 0 }
{ i = index($0, "="); if (i == 0) next; k = substr($0, 1, i - 1); v = substr($0, i + 1);
  printf "%s%s:%s", (n++ ? "," : ""), q(k), q(v) }
END { print "}}" }' /tmp/container.env
