#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (Debian's postgresql package): initdb in a temporary folder, started on
# a free loopback port, trust authentication, fsync off. Nothing outside the folder is touched.
#
#   scripts/test-postgres.sh start [DIR]   prints shell assignments: POSTLENS_TEST_DATABASE_URL, POSTLENS_TEST_PGDATA,
#                                          POSTLENS_TEST_PGBIN, POSTLENS_TEST_PGPORT (eval them)
#   scripts/test-postgres.sh stop DIR      stops the cluster and removes the folder
#   scripts/test-postgres.sh restart DIR   stops and starts it again on the same port (the live tests' database restart)
#
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user the package creates.
set -euo pipefail

bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  [ -x "$dir/initdb" ] || { echo "PostgreSQL is not installed: run scripts/install-deps.sh --test (apt-get install postgresql)" >&2; exit 1; }
  echo "$dir"
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start_server() {  # DIR PORT
  local dir=$1 port=$2 bin
  bin=$(bindir)
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null
}

case "${1:-}" in
  start)
    bin=$(bindir)
    dir=${2:-$(mktemp -d -t postlens-pg-XXXXXX)}
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postlens --auth=trust -E UTF8 --no-instructions >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(free_port)
    echo "$port" >"$dir/port"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/port"
    start_server "$dir" "$port"
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postlens postlens_test
    echo "export POSTLENS_TEST_DATABASE_URL='postgres://postlens@127.0.0.1:$port/postlens_test?sslmode=disable'"
    echo "export POSTLENS_TEST_PGDATA='$dir'"
    echo "export POSTLENS_TEST_PGBIN='$bin'"
    echo "export POSTLENS_TEST_PGPORT='$port'"
    ;;
  restart)
    dir=${2:?usage: $0 restart DIR}
    bin=$(bindir)
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    start_server "$dir" "$(cat "$dir/port")"
    ;;
  stop)
    dir=${2:?usage: $0 stop DIR}
    bin=$(bindir)
    [ -d "$dir/data" ] && as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 start [DIR] | restart DIR | stop DIR" >&2
    exit 2
    ;;
esac
