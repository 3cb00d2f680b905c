#!/usr/bin/env bash
# Install (if needed) and start a local PostgreSQL on 127.0.0.1 with a password-protected role and
# database for evalkit, then print the SQLAlchemy URL on stdout (everything else goes to stderr):
#
#   export EVALKIT_TEST_PG_URL="$(scripts/start_postgres.sh)"
#
# Idempotent: reuses an existing cluster, role and database. Debian/Ubuntu (apt, pg_ctlcluster).
# Settings: EVALKIT_PG_PORT (5432, used when the cluster is created), EVALKIT_PG_USER (evalkit), EVALKIT_PG_PASSWORD (evalkit),
# EVALKIT_PG_DB (evalkit), EVALKIT_PG_CLUSTER (main); the password must be URL-safe.
set -euo pipefail

PORT="${EVALKIT_PG_PORT:-5432}"
ROLE="${EVALKIT_PG_USER:-evalkit}"
PASSWORD="${EVALKIT_PG_PASSWORD:-evalkit}"
DB="${EVALKIT_PG_DB:-evalkit}"
CLUSTER="${EVALKIT_PG_CLUSTER:-main}"

log() { echo "start_postgres: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# cd /: the postgres user may not be allowed into the caller's working directory.
as_postgres() { (cd / && if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi); }

install_server() {
    command -v pg_lsclusters >/dev/null && return
    log "installing postgresql"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q postgresql >&2 || { as_root apt-get update -q >&2 && as_root apt-get install -y -q postgresql >&2; }
}

ensure_cluster() {
    VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
    if ! pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {found=1} END {exit !found}'; then
        log "creating cluster $VERSION/$CLUSTER"
        as_root pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT" >&2
    fi
}

# A conf.d drop-in, read after postgresql.conf; restarting is needed only when it changes.
configure_cluster() {
    local conf="/etc/postgresql/$VERSION/$CLUSTER/conf.d/evalkit.conf"
    local wanted="listen_addresses = '127.0.0.1'  # written by evalkit's start_postgres.sh"
    CHANGED=0
    if [ "$(cat "$conf" 2>/dev/null || true)" != "$wanted" ]; then
        echo "$wanted" | as_root tee "$conf" >/dev/null
        CHANGED=1
    fi
    PORT="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $3}')"
}

start_cluster() {
    local status
    status="$(pg_lsclusters -h | awk -v v="$VERSION" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}')"
    if [ "$status" != online ]; then
        log "starting cluster $VERSION/$CLUSTER on 127.0.0.1:$PORT"
        as_root pg_ctlcluster "$VERSION" "$CLUSTER" start >&2
    elif [ "$CHANGED" = 1 ]; then
        log "restarting cluster $VERSION/$CLUSTER to apply settings"
        as_root pg_ctlcluster "$VERSION" "$CLUSTER" restart >&2
    fi
    for _ in $(seq 60); do
        pg_isready -q -h 127.0.0.1 -p "$PORT" && return
        sleep 0.5
    done
    log "PostgreSQL did not become ready on 127.0.0.1:$PORT"; exit 1
}

create_role_and_database() {
    as_postgres psql -p "$PORT" -v ON_ERROR_STOP=1 -q -v role="$ROLE" -v password="$PASSWORD" -v db="$DB" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
}

install_server
ensure_cluster
configure_cluster
start_cluster
create_role_and_database
log "ready"
echo "postgresql+psycopg://${ROLE}:${PASSWORD}@127.0.0.1:${PORT}/${DB}"
