#!/usr/bin/env bash
# Make sure the services the REX test suite needs are up:
#   RabbitMQ    127.0.0.1:5672  (guest/guest, loopback only - the default)
#               with its management plugin, HTTP API on port 15672 (`rex provision` uses
#               it), and its Prometheus plugin on port 15692 (the alerts' queue depths);
#               each plugin is enabled here if it is not
#   PostgreSQL  127.0.0.1:5432  (trust auth, database "test", role "root")
#
# Up already         -> print "<name>: up" and move on (the usual, fast case).
# Installed, stopped -> start it and wait for it.
# Not installed      -> as root: apt-get install it, configure, start;
#                       otherwise: say what to install and exit non-zero.
#
# REX_SKIP_SERVICES=1 skips everything (0, empty or unset: does not; as rex.environment says).
set -euo pipefail

case "${REX_SKIP_SERVICES:-}" in
    1) echo "services: skipped (REX_SKIP_SERVICES=1)"; exit 0 ;;
    "" | 0) ;;
    *) echo "ensure-services: REX_SKIP_SERVICES: must be 1 (yes) or 0 (no)," \
            "got '$REX_SKIP_SERVICES'; fix it, or unset it" >&2
       exit 2 ;;
esac

# The service tools live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

HOST=127.0.0.1
RABBITMQ_PORT=5672
RABBITMQ_MANAGEMENT_PORT=15672
RABBITMQ_PROMETHEUS_PORT=15692
POSTGRES_PORT=5432

log() { echo "$*"; }
die() { echo "ensure-services: $*" >&2; exit 1; }

is_root() { [[ "$(id -u)" == 0 ]]; }

port_open() {
    timeout 1 bash -c "</dev/tcp/$HOST/$1" 2>/dev/null
}

# wait_for SECONDS DESCRIPTION COMMAND... : poll COMMAND once a second.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local i
    for ((i = 0; i < secs; i++)); do
        if "$@"; then return 0; fi
        sleep 1
    done
    die "$what did not come up within ${secs}s"
}

APT_UPDATED=0
apt_install() {
    is_root || die "need root to install: $*"
    command -v apt-get >/dev/null || die "no apt-get; install by hand: $*"
    if [[ $APT_UPDATED == 0 ]]; then
        apt-get update
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- RabbitMQ ----------------------------------------------------------------

rabbitmq_start() {
    # A node that is running but whose listener is not up yet needs no second start.
    if ! rabbitmqctl -q ping >/dev/null 2>&1; then
        rabbitmq-server -detached
    fi
    wait_for 60 "rabbitmq (port $RABBITMQ_PORT)" port_open "$RABBITMQ_PORT"
    rabbitmqctl -q await_startup --timeout 30 >/dev/null
}

ensure_rabbitmq() {
    if port_open "$RABBITMQ_PORT"; then
        log "rabbitmq: up"
        return
    fi
    if ! command -v rabbitmq-server >/dev/null; then
        is_root || die "rabbitmq: not installed and not running on $HOST:$RABBITMQ_PORT;" \
            "install it (Debian: apt-get install rabbitmq-server) or start one there"
        log "rabbitmq: installing rabbitmq-server"
        apt_install rabbitmq-server
        # The package's postinst may already have started it.
        if port_open "$RABBITMQ_PORT"; then
            log "rabbitmq: up (installed)"
            return
        fi
    fi
    is_root || die "rabbitmq: installed but not running; start it as root (rabbitmq-server -detached)"
    log "rabbitmq: starting"
    rabbitmq_start
    log "rabbitmq: up (started)"
}

# A plugin of the broker that serves a port: the management plugin's HTTP API, which `rex
# provision` uses, and the Prometheus plugin's /metrics, which the queue-bound alerts read
# (docs/operators/metrics.md; tests/system/test_alert_inputs.py). Probing the port first
# keeps the usual case fast (rabbitmq-plugins takes a second or two to start).
ensure_rabbitmq_plugin() {
    local plugin=$1 port=$2 name=$3
    if port_open "$port"; then
        log "$name: up"
        return
    fi
    command -v rabbitmq-plugins >/dev/null ||
        die "$name: nothing on $HOST:$port and no rabbitmq-plugins here; enable $plugin" \
            "on the broker"
    is_root || die "$name: not enabled; as root run rabbitmq-plugins enable $plugin"
    # Idempotent: enabling an enabled plugin is a no-op, and the listener may just be late.
    if ! rabbitmq-plugins -q is_enabled "$plugin" >/dev/null 2>&1; then
        log "$name: enabling the $plugin plugin"
        rabbitmq-plugins -q enable "$plugin" >/dev/null
    fi
    wait_for 60 "$name (port $port)" port_open "$port"
    log "$name: up (enabled)"
}

# --- PostgreSQL --------------------------------------------------------------

pg_version() {
    # Newest cluster version configured under /etc/postgresql, if any.
    ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1
}

pg_ready() {
    pg_isready -q -h "$HOST" -p "$POSTGRES_PORT"
}

pg_start() {
    local ver=$1
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    wait_for 30 "postgresql $ver/main" pg_ready
}

# Trust auth for local socket, 127.0.0.1/32 and ::1/128 (only done on a fresh install).
pg_trust_auth() {
    local ver=$1 hba="/etc/postgresql/$1/main/pg_hba.conf"
    sed -i -E '/^[[:space:]]*(local|host)[[:space:]]/ s/(peer|ident|md5|scram-sha-256)[[:space:]]*$/trust/' "$hba"
    grep -qE '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba" ||
        echo "host    all             all             127.0.0.1/32            trust" >>"$hba"
    grep -qE '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+::1/128[[:space:]]+trust' "$hba" ||
        echo "host    all             all             ::1/128                 trust" >>"$hba"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
}

# Role "root" (superuser) and database "test", if missing. Idempotent.
pg_provision() {
    local psql=(su postgres -s /bin/sh -c)
    if [[ "$("${psql[@]}" "psql -XAtq -c \"SELECT 1 FROM pg_roles WHERE rolname = 'root'\"")" != 1 ]]; then
        log "postgresql: creating role root"
        "${psql[@]}" "createuser --superuser root"
    fi
    if [[ "$("${psql[@]}" "psql -XAtq -c \"SELECT 1 FROM pg_database WHERE datname = 'test'\"")" != 1 ]]; then
        log "postgresql: creating database test"
        "${psql[@]}" "createdb test"
    fi
}

ensure_postgres() {
    if port_open "$POSTGRES_PORT"; then
        log "postgresql: up"
        return
    fi
    local ver fresh=0
    ver=$(pg_version)
    if [[ -z "$ver" ]] || ! command -v pg_ctlcluster >/dev/null; then
        is_root || die "postgresql: not installed and not running on $HOST:$POSTGRES_PORT;" \
            "install it (Debian: apt-get install postgresql) or start one there"
        log "postgresql: installing postgresql"
        apt_install postgresql
        fresh=1
        ver=$(pg_version)
        if [[ -z "$ver" ]]; then
            # Package installed with create_main_cluster=false: make the cluster.
            ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
            pg_createcluster "$ver" main
        fi
    fi
    is_root || die "postgresql: installed but not running; start it as root" \
        "(pg_ctlcluster --skip-systemctl-redirect $ver main start)"
    if ! pg_ready; then
        log "postgresql: starting $ver/main"
        pg_start "$ver"
    fi
    if [[ $fresh == 1 ]]; then
        pg_trust_auth "$ver"
    fi
    pg_provision
    log "postgresql: up (started)"
}

ensure_rabbitmq
ensure_rabbitmq_plugin rabbitmq_management "$RABBITMQ_MANAGEMENT_PORT" "rabbitmq management"
ensure_rabbitmq_plugin rabbitmq_prometheus "$RABBITMQ_PROMETHEUS_PORT" "rabbitmq prometheus"
ensure_postgres
