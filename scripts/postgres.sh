#!/usr/bin/env bash
# Start, stop or check a private PostgreSQL cluster on 127.0.0.1 for
# integration tests and CI. Never touches Debian's "main" cluster: the cluster
# lives in its own data directory and listens on its own port.
#
#   scripts/postgres.sh start|stop|status
#
# Environment:
#   LEDGER_PG_DATA   data directory (default: /var/tmp/ledger-postgres)
#   LEDGER_PG_PORT   TCP port on 127.0.0.1 (default: 55432)
#   LEDGER_PG_BIN    directory holding pg_ctl/initdb (default: newest
#                    /usr/lib/postgresql/*/bin; installed with apt if missing)
#
# Creates role "ledger" (password "ledger", LOGIN CREATEDB) and database
# "ledger" owned by it. TCP connections from 127.0.0.1 need a password
# (scram-sha-256); the Unix socket (inside the data directory, mode 0700) is
# trust, used only by this script as the cluster's superuser "postgres".
set -euo pipefail

PGDATA_DIR="${LEDGER_PG_DATA:-/var/tmp/ledger-postgres}"
PORT="${LEDGER_PG_PORT:-55432}"
HOST=127.0.0.1
APP_USER=ledger
APP_PASSWORD=ledger
APP_DB=ledger
SUPERUSER=postgres
LOGFILE="$PGDATA_DIR/postgresql.log"
SETTINGS_FILE=ledger-settings.conf
URL="postgresql://$APP_USER:$APP_PASSWORD@$HOST:$PORT/$APP_DB"

say() { printf 'postgres: %s\n' "$*"; }
die() { printf 'postgres: ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# OS user owning the cluster when we are root: the data directory's owner, or
# "postgres" for a new cluster (initdb and postgres refuse to run as root).
owner_user() {
  local u=""
  if [[ -d "$PGDATA_DIR" ]]; then
    u="$(stat -c %U "$PGDATA_DIR")"
  fi
  if [[ -z "$u" || "$u" == root || "$u" == UNKNOWN ]]; then
    u=postgres
  fi
  printf '%s\n' "$u"
}

# Run a command as the cluster's owner: see owner_user when we are root,
# else the current user.
as_owner() {
  if is_root; then
    (cd / && runuser -u "$(owner_user)" -- "$@")
  else
    (cd / && "$@")
  fi
}

find_bin() {
  local d
  if [[ -n "${LEDGER_PG_BIN:-}" ]]; then
    [[ -x "$LEDGER_PG_BIN/pg_ctl" ]] || die "LEDGER_PG_BIN=$LEDGER_PG_BIN has no pg_ctl"
    printf '%s\n' "$LEDGER_PG_BIN"
    return 0
  fi
  d="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/pg_ctl' 2>/dev/null \
        | sort -V | tail -n 1)"
  [[ -n "$d" ]] || return 1
  dirname "$d"
}

install_postgres() {
  say "no PostgreSQL server binaries found; installing Debian's postgresql package..."
  command -v apt-get >/dev/null || die "apt-get not found: install PostgreSQL server binaries and set LEDGER_PG_BIN"
  if is_root; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
  elif command -v sudo >/dev/null; then
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
  else
    die "PostgreSQL is not installed and we are not root (and sudo is missing): run 'apt-get install -y postgresql' as root"
  fi
}

BIN=""
# ensure_bin install: install the server with apt when missing (start only).
ensure_bin() {
  if ! BIN="$(find_bin)"; then
    if [[ "${1:-}" != install ]]; then
      say "PostgreSQL server binaries not installed; not running"
      exit 1
    fi
    install_postgres
    BIN="$(find_bin)" || die "PostgreSQL installed, but no /usr/lib/postgresql/*/bin/pg_ctl found"
  fi
}

# Exit status of pg_ctl status: 0 running, 3 not running, 4 no data dir.
cluster_running() {
  [[ -f "$PGDATA_DIR/PG_VERSION" ]] || return 1
  as_owner "$BIN/pg_ctl" status -D "$PGDATA_DIR" >/dev/null 2>&1
}

accepting() {
  "$BIN/pg_isready" -q -h "$HOST" -p "$PORT" -t 2 >/dev/null 2>&1
}

prepare_datadir() {
  if [[ -f "$PGDATA_DIR/PG_VERSION" ]]; then
    return 0
  fi
  if [[ -e "$PGDATA_DIR" && ! -r "$PGDATA_DIR" ]]; then
    die "$PGDATA_DIR is not readable by $(id -un) (created by another user?); set LEDGER_PG_DATA"
  fi
  mkdir -p "$PGDATA_DIR"
  if [[ -n "$(ls -A "$PGDATA_DIR")" ]]; then
    die "$PGDATA_DIR exists, is not empty and holds no cluster; remove it or set LEDGER_PG_DATA"
  fi
  if is_root; then
    chown postgres:postgres "$PGDATA_DIR"
    as_owner test -w "$PGDATA_DIR" \
      || die "user postgres cannot reach $PGDATA_DIR (a parent directory is private?); choose another LEDGER_PG_DATA"
  fi
  chmod 700 "$PGDATA_DIR"
  say "initialising cluster in $PGDATA_DIR ($("$BIN/postgres" --version))"
  as_owner "$BIN/initdb" -D "$PGDATA_DIR" -U "$SUPERUSER" -E UTF8 --locale=C \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null \
    || die "initdb failed"
  printf "\n# Settings for the ledger test cluster (rewritten by scripts/postgres.sh)\ninclude_if_exists = '%s'\n" \
    "$SETTINGS_FILE" | as_owner tee -a "$PGDATA_DIR/postgresql.conf" >/dev/null
}

write_settings() {
  as_owner tee "$PGDATA_DIR/$SETTINGS_FILE" >/dev/null <<EOF
# Rewritten by scripts/postgres.sh on every start.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$PGDATA_DIR'
max_connections = 100
shared_buffers = 128MB
work_mem = 8MB
maintenance_work_mem = 64MB
password_encryption = 'scram-sha-256'
logging_collector = off
log_min_messages = warning
log_timezone = 'UTC'
timezone = 'UTC'
EOF
}

psql_super() {
  as_owner "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDATA_DIR" -p "$PORT" \
    -U "$SUPERUSER" -d postgres
}

ensure_role_and_db() {
  psql_super <<EOF
SELECT format('CREATE ROLE %I LOGIN CREATEDB', '$APP_USER')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_USER')\gexec
ALTER ROLE $APP_USER LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
SELECT format('CREATE DATABASE %I OWNER %I', '$APP_DB', '$APP_USER')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$APP_DB')\gexec
EOF
}

wait_accepting() {
  local i
  for ((i = 0; i < 60; i++)); do
    accepting && return 0
    sleep 1
  done
  tail -n 30 "$LOGFILE" >&2 || true
  die "PostgreSQL not accepting connections on $HOST:$PORT after 60 s"
}

cmd_start() {
  ensure_bin install
  if cluster_running; then
    say "already running (data: $PGDATA_DIR), reusing it"
  else
    if accepting; then
      die "another server already listens on $HOST:$PORT (not the cluster in $PGDATA_DIR); stop it or set LEDGER_PG_PORT"
    fi
    prepare_datadir
    write_settings
    say "starting PostgreSQL on $HOST:$PORT (log: $LOGFILE)"
    as_owner "$BIN/pg_ctl" start -D "$PGDATA_DIR" -l "$LOGFILE" -w -t 60 -s \
      || { tail -n 30 "$LOGFILE" >&2 || true; die "pg_ctl start failed"; }
  fi
  wait_accepting
  ensure_role_and_db
  say "PostgreSQL ready: $URL"
}

cmd_stop() {
  ensure_bin
  if ! cluster_running; then
    say "PostgreSQL not running (data: $PGDATA_DIR)"
    return 0
  fi
  as_owner "$BIN/pg_ctl" stop -D "$PGDATA_DIR" -m fast -w -t 60 -s
  say "PostgreSQL stopped"
}

cmd_status() {
  ensure_bin
  if cluster_running && accepting; then
    say "PostgreSQL running: $URL (data: $PGDATA_DIR)"
    return 0
  fi
  if cluster_running; then
    say "PostgreSQL running (data: $PGDATA_DIR) but not accepting connections on $HOST:$PORT"
  else
    say "PostgreSQL not running (data: $PGDATA_DIR)"
  fi
  return 1
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *)
    echo "usage: $0 {start|stop|status}" >&2
    exit 2
    ;;
esac
