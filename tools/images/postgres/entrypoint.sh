#!/bin/sh
# Throwaway PostgreSQL for tests: initialises $PGDATA (default /tmp/pgdata) on first start (user
# postgres, password $POSTGRES_PASSWORD or trust, database $POSTGRES_DB), listens on 5432 on every
# address. As the official image: PGDATA may lie on a volume mounted at /var/lib/postgresql/data
# (owned by the postgres user, 999, in this image, so a new named volume there is too), e.g.
# PGDATA=/var/lib/postgresql/data/pgdata; a data folder already initialised is kept.
set -e
export PGDATA="${PGDATA:-/tmp/pgdata}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -n "$POSTGRES_PASSWORD" ]; then
    echo "$POSTGRES_PASSWORD" > /tmp/pwfile
    initdb -U postgres --pwfile=/tmp/pwfile --auth=scram-sha-256 --locale=C --encoding=UTF8 >/tmp/initdb.log
    rm /tmp/pwfile
  else
    initdb -U postgres --auth=trust --locale=C --encoding=UTF8 >/tmp/initdb.log
  fi
  method=trust; [ -n "$POSTGRES_PASSWORD" ] && method=scram-sha-256
  echo "host all all 0.0.0.0/0 $method" >> "$PGDATA/pg_hba.conf"
  if [ -n "$POSTGRES_DB" ] && [ "$POSTGRES_DB" != postgres ]; then
    postgres --single -D "$PGDATA" postgres <<SQL >/dev/null
CREATE DATABASE "$POSTGRES_DB";
SQL
  fi
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp -c fsync=off "$@"
