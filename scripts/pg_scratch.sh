#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, in a folder of its own, on 127.0.0.1 and a free port.
#
#   eval "$(scripts/pg_scratch.sh start /tmp/pg)"   # prints: export RHETORIC_TEST_POSTGRES_URL=...
#   scripts/pg_scratch.sh stop /tmp/pg              # stops the server and deletes the folder
#
# Uses the newest /usr/lib/postgresql/*/bin (Debian's `postgresql` package), or PG_BIN. As root the
# server runs as the `postgres` user. Authentication is `trust`, for 127.0.0.1 and the folder's socket only.
set -euo pipefail

usage="usage: $0 start|stop DIR"
action="${1:?$usage}"
dir="${2:?$usage}"

pg_bin="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
if [ "$action" = start ] && { [ -z "$pg_bin" ] || [ ! -x "$pg_bin/pg_ctl" ]; }; then
    echo "pg_scratch: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin; apt-get install postgresql, or set PG_BIN" >&2
    exit 1
fi

as_owner() {  # PostgreSQL refuses to run as root
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
start)
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    as_owner "$pg_bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$pg_bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null || {
        cat "$dir/server.log" >&2; exit 1; }
    as_owner "$pg_bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "CREATE ROLE rhetoric LOGIN PASSWORD 'rhetoric'" -c "CREATE DATABASE rhetoric_test OWNER rhetoric" >&2
    echo "$port" >"$dir/port"
    echo "export RHETORIC_TEST_POSTGRES_URL=postgresql+psycopg://rhetoric:rhetoric@127.0.0.1:$port/rhetoric_test"
    ;;
stop)
    if [ -d "$dir/data" ] && [ -x "$pg_bin/pg_ctl" ]; then
        as_owner "$pg_bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "$usage" >&2
    exit 2
    ;;
esac
