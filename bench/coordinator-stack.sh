# SPDX-License-Identifier: MIT
# A whole AUTOOS fleet on this host, for scripts/demo and bench/coordinator
# (sourced, POSIX sh): a throwaway PostgreSQL (initdb as the postgres user),
# a redis-server, autoos-coordinator and autoosd nodes, each on a free
# loopback port in one temporary directory, each a child of the calling
# script and stopped by its PID when the script ends, whatever the reason.
#
#   top_srcdir=...; . "$top_srcdir/bench/coordinator-stack.sh"
#   stack_init demo                  # root, tools, built programs; STACK_DIR
#   pg_start; redis_start            # DB_URL, REDIS_URL
#   coord_migrate; KEY=$(coord_key NAME ROLE); coord_start    # COORD_URL
#   node_start node-a "zone=a" 4; nodes_wait_healthy node-a
#   api GET /v1/nodes                # curl with the key; body on stdout
#
# Programs come from the build directory: $AUTOOS_BUILDDIR, else the current
# directory when it holds a built cli/autoosctl, else the source tree.
# STACK_KEEP=1 keeps the temporary directory (logs, data) after the end.
# STACK_PG_OPTS adds postgres server options (-c name=value ...).

LC_ALL=C
export LC_ALL

STACK_DIR=""
STACK_KEEP=${STACK_KEEP:-0}
PG_PORT=""
PG_DATA=""
REDIS_PID=""
REDIS_PORT=""
COORD_PID=""
COORD_URL=""
STACK_NODES="" # "name:pid" words
_stack_pg_started=""

if [ -t 1 ] && [ "${TERM:-dumb}" != dumb ] && [ -z "${NO_COLOR:-}" ]; then
        _stack_b=$(printf '\033[1m')
        _stack_r=$(printf '\033[0m')
        _stack_red=$(printf '\033[1;31m')
else
        _stack_b=""
        _stack_r=""
        _stack_red=""
fi

now_ms() {
        date +%s%3N
}

# say MSG: announces a step.
say() {
        printf '\n%s==> %s%s\n' "$_stack_b" "$*" "$_stack_r"
}

# info MSG: a detail of the current step.
info() {
        printf '    %s\n' "$*"
}

# warn MSG: something unexpected, on stderr.
warn() {
        printf '%s%s: %s%s\n' "$_stack_red" "$STACK_NAME" "$*" "$_stack_r" >&2
}

# die MSG [LOGFILE]: says what failed (and the end of LOGFILE) and exits 1;
# the EXIT trap tears everything down.
die() {
        warn "$1"
        if [ -n "${2:-}" ] && [ -s "$2" ]; then
                printf '    last lines of %s:\n' "$2" >&2
                tail -n 15 "$2" | cut -c1-300 | sed 's/^/    | /' >&2
        fi
        exit 1
}

# pid_alive PID: running and not a zombie.
pid_alive() {
        [ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
        _st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
        [ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

# wait_for SECONDS CMD [ARG]...: polls CMD every 50 ms until it succeeds (0)
# or SECONDS have passed (1).
wait_for() {
        _wf_deadline=$(($(now_ms) + $1 * 1000))
        shift
        while :; do
                "$@" && return 0
                [ "$(now_ms)" -ge "$_wf_deadline" ] && return 1
                sleep 0.05
        done
}

# free_port: a loopback TCP port no socket uses right now (racy: each start
# checks that what it started owns the port, and tries another one if not).
free_port() {
        while :; do
                _p=$(awk -v s="$$$(date +%N)" 'BEGIN { srand(s % 2147483647); print 20000 + int(rand() * 40000) }')
                _hex=$(printf '%04X' "$_p")
                cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | grep -q ":$_hex " || {
                        echo "$_p"
                        return
                }
        done
}

# stop_pid PID SECONDS: SIGTERM, SIGKILL after SECONDS; reaped when it is our child.
stop_pid() {
        _sp_pid=$1
        pid_alive "$_sp_pid" || {
                wait "$_sp_pid" 2>/dev/null
                return 0
        }
        kill -TERM "$_sp_pid" 2>/dev/null
        wait_for "$2" eval '! pid_alive "$_sp_pid"' || kill -KILL "$_sp_pid" 2>/dev/null
        wait "$_sp_pid" 2>/dev/null
        return 0
}

# ---- setup and teardown ----------------------------------------------------

# stack_init NAME: checks root, the tools and the built programs; makes
# STACK_DIR and installs the teardown trap.
stack_init() {
        STACK_NAME=$1
        [ "$(id -u)" = 0 ] || {
                printf '%s: needs root (sandboxes need namespaces and cgroups, and PostgreSQL runs as the postgres user); try: sudo %s\n' \
                        "$STACK_NAME" "$0" >&2
                exit 1
        }
        if [ -n "${AUTOOS_BUILDDIR:-}" ]; then
                top_builddir=$AUTOOS_BUILDDIR
        elif [ -x "$PWD/cli/autoosctl" ] && [ -x "$PWD/orchestrator/autoos-coordinator" ]; then
                top_builddir=$PWD
        else
                top_builddir=$top_srcdir
        fi
        COORD=$top_builddir/orchestrator/autoos-coordinator
        AUTOOSD=$top_builddir/daemon/autoosd
        AUTOOSCTL=$top_builddir/cli/autoosctl
        for _b in "$COORD" "$AUTOOSD" "$AUTOOSCTL"; do
                [ -x "$_b" ] || {
                        printf '%s: %s is not built; first: ./autogen.sh && ./configure && make -j"$(nproc)" (or set AUTOOS_BUILDDIR)\n' \
                                "$STACK_NAME" "$_b" >&2
                        exit 1
                }
        done
        if [ -z "${PGBIN:-}" ]; then
                PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n | tail -n 1)
        fi
        _missing=""
        [ -n "$PGBIN" ] && [ -x "$PGBIN/initdb" ] && [ -x "$PGBIN/pg_ctl" ] || _missing="$_missing postgresql(initdb)"
        for _c in psql redis-server redis-cli curl jq runuser; do
                command -v "$_c" >/dev/null 2>&1 || _missing="$_missing $_c"
        done
        id -u postgres >/dev/null 2>&1 || _missing="$_missing postgres-user"
        [ -z "$_missing" ] || {
                printf '%s: missing:%s (scripts/install-deps installs them)\n' "$STACK_NAME" "$_missing" >&2
                exit 1
        }
        STACK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/autoos-$STACK_NAME.XXXXXX") || exit 1
        chmod 711 "$STACK_DIR" # the postgres user reaches its data directory below
        trap stack_teardown EXIT
        trap 'exit 130' INT
        trap 'exit 143' TERM
        trap 'exit 129' HUP
}

# stack_teardown: stops everything started here by its PID: nodes (SIGTERM
# twice: drain, then stop now), the coordinator, Redis, PostgreSQL; removes
# STACK_DIR unless STACK_KEEP=1. The EXIT trap.
stack_teardown() {
        _rc=$?
        set +e
        trap '' INT TERM HUP
        _said=""
        for _np in $STACK_NODES; do
                _pid=${_np#*:}
                pid_alive "$_pid" || {
                        wait "$_pid" 2>/dev/null
                        continue
                }
                [ -n "$_said" ] || printf '\n==> tearing down\n'
                _said=1
                kill -TERM "$_pid" 2>/dev/null
        done
        sleep 0.2
        for _np in $STACK_NODES; do
                _pid=${_np#*:}
                pid_alive "$_pid" && kill -TERM "$_pid" 2>/dev/null
                stop_pid "$_pid" 10
        done
        STACK_NODES=""
        if pid_alive "$COORD_PID" || pid_alive "$REDIS_PID" || [ -n "$_stack_pg_started" ]; then
                [ -n "$_said" ] || printf '\n==> tearing down\n'
        fi
        [ -n "$COORD_PID" ] && stop_pid "$COORD_PID" 10
        [ -n "$REDIS_PID" ] && stop_pid "$REDIS_PID" 5
        if [ -n "$_stack_pg_started" ]; then
                _pm=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null)
                runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 10 stop >/dev/null 2>&1 ||
                        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 10 stop >/dev/null 2>&1
                [ -n "$_pm" ] && pid_alive "$_pm" && kill -KILL "$_pm" 2>/dev/null
                _stack_pg_started=""
        fi
        if [ -n "$STACK_DIR" ] && [ -d "$STACK_DIR" ]; then
                if [ "$STACK_KEEP" = 1 ]; then
                        printf '    logs and data kept in %s\n' "$STACK_DIR"
                else
                        rm -rf "$STACK_DIR"
                fi
        fi
        [ -n "$_said" ] && printf '    stopped: nodes, coordinator, Redis, PostgreSQL\n'
        exit "$_rc"
}

# ---- PostgreSQL --------------------------------------------------------------

_pg() {
        runuser -u postgres -- "$PGBIN/$@"
}

# pg_start: initdb (trust auth) and a server on a free loopback port;
# sets PG_PORT, PG_DATA, DB_URL (the superuser, who owns the schema),
# SVC_DB_URL (the coordinator's role autoos, made by coord_migrate), PSQL (a
# command prefix).
pg_start() {
        PG_DATA=$STACK_DIR/pg
        mkdir -m 700 "$PG_DATA" && chown postgres: "$PG_DATA" || die "cannot make $PG_DATA"
        touch "$STACK_DIR/pg.log" && chown postgres: "$STACK_DIR/pg.log"
        _pg initdb -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$STACK_DIR/initdb.log" 2>&1 ||
                die "initdb failed" "$STACK_DIR/initdb.log"
        for _try in 1 2 3 4 5; do
                PG_PORT=$(free_port)
                if _pg pg_ctl -D "$PG_DATA" -l "$STACK_DIR/pg.log" -w -t 30 \
                        -o "-k $PG_DATA -p $PG_PORT -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100 ${STACK_PG_OPTS:-}" \
                        start >/dev/null 2>&1; then
                        _stack_pg_started=1
                        DB_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
                        SVC_DB_URL=postgresql://autoos@127.0.0.1:$PG_PORT/postgres
                        PSQL="psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PG_PORT -U postgres -d postgres"
                        return 0
                fi
        done
        die "PostgreSQL did not start" "$STACK_DIR/pg.log"
}

# ---- Redis -------------------------------------------------------------------

rcli() {
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw "$@"
}

_redis_is_ours() {
        rcli INFO server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$REDIS_PID"
}

# redis_start: a fresh redis-server (no persistence) on a free port; sets
# REDIS_PORT, REDIS_PID, REDIS_URL.
redis_start() {
        mkdir -p "$STACK_DIR/redis"
        for _try in 1 2 3 4 5 6 7 8; do
                REDIS_PORT=$(free_port)
                redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STACK_DIR/redis" --save '' \
                        --appendonly no --daemonize no --logfile "$STACK_DIR/redis/redis.log" </dev/null >/dev/null 2>&1 &
                REDIS_PID=$!
                if wait_for 10 eval '_redis_is_ours || ! pid_alive "$REDIS_PID"' && _redis_is_ours; then
                        REDIS_URL=redis://127.0.0.1:$REDIS_PORT
                        return 0
                fi
                stop_pid "$REDIS_PID" 1
                REDIS_PID=""
        done
        die "redis-server would not start" "$STACK_DIR/redis/redis.log"
}

# ---- coordinator ---------------------------------------------------------------

# coord_migrate: applies sql/*.sql as the schema's owner (DB_URL); makes the
# coordinator's own role autoos, a member of autoos_app only (it may append to
# audit_log, never disable its triggers), and the audit key that signs the
# trail's checkpoints (AUDIT_KEY; its public half AUDIT_PUB, exported as
# AUTOOS_AUDIT_PUBKEY for autoosctl audit --verify).
coord_migrate() {
        "$COORD" --migrate --db-owner "$DB_URL" --db "$SVC_DB_URL" --sql-dir "$top_srcdir/sql" </dev/null \
                >"$STACK_DIR/migrate.log" 2>&1 || die "autoos-coordinator --migrate failed" "$STACK_DIR/migrate.log"
        $PSQL -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'autoos') THEN
                  CREATE ROLE autoos LOGIN; END IF; END \$\$; GRANT autoos_app TO autoos" >>"$STACK_DIR/migrate.log" 2>&1 ||
                die "cannot make the coordinator's database role" "$STACK_DIR/migrate.log"
        AUDIT_KEY=$STACK_DIR/audit.key
        AUDIT_PUB=$AUDIT_KEY.pub
        [ -f "$AUDIT_KEY" ] || "$COORD" --create-audit-key "$AUDIT_KEY" </dev/null >/dev/null 2>>"$STACK_DIR/migrate.log" ||
                die "autoos-coordinator --create-audit-key failed" "$STACK_DIR/migrate.log"
        AUTOOS_AUDIT_PUBKEY=$AUDIT_PUB
        export AUTOOS_AUDIT_PUBKEY
}

# coord_key NAME ROLE: prints a new API key. Run in $(...), so the caller
# adds "|| exit 1".
coord_key() {
        _k=$("$COORD" --create-key "$1" --role "$2" --db "$SVC_DB_URL" </dev/null 2>>"$STACK_DIR/keys.log") ||
                die "autoos-coordinator --create-key $1 failed" "$STACK_DIR/keys.log"
        _k=$(printf '%s\n' "$_k" | tail -n 1)
        [ -n "$_k" ] || die "autoos-coordinator --create-key $1 printed no key" "$STACK_DIR/keys.log"
        printf '%s\n' "$_k"
}

_coord_healthy() {
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$COORD_URL/healthz" 2>/dev/null)" = 200 ]
}

# coord_start [FLAG]...: the coordinator on a free port (its own empty
# configuration file, so a host's /etc/autoos/coordinator.conf does not
# matter); waits for /healthz. Sets COORD_PID, COORD_URL, COORD_LOG.
coord_start() {
        COORD_LOG=$STACK_DIR/coordinator.log
        _stack_conf
        for _try in 1 2 3 4 5; do
                _port=$(free_port)
                COORD_URL=http://127.0.0.1:$_port
                "$COORD" --config "$STACK_DIR/coordinator.conf" --db "$SVC_DB_URL" --audit-key "$AUDIT_KEY" \
                        --redis "$REDIS_URL" --listen "127.0.0.1:$_port" --id "$STACK_NAME" \
                        --sql-dir "$top_srcdir/sql" "$@" \
                        </dev/null >>"$COORD_LOG" 2>&1 &
                COORD_PID=$!
                if wait_for 20 eval '_coord_healthy || ! pid_alive "$COORD_PID"' && pid_alive "$COORD_PID"; then
                        return 0
                fi
                stop_pid "$COORD_PID" 5
                COORD_PID=""
                grep -qi 'in use' "$COORD_LOG" 2>/dev/null || break
        done
        die "autoos-coordinator did not come up" "$COORD_LOG"
}

# api METHOD PATH [CURL-ARG]...: the API with $KEY; the body on stdout; fails
# on an HTTP error.
api() {
        _m=$1
        _path=$2
        shift 2
        curl -sS --fail-with-body --max-time 30 -X "$_m" -H "Authorization: Bearer $KEY" "$@" "$COORD_URL$_path"
}

# ---- nodes ------------------------------------------------------------------------

# node_pid NAME
node_pid() {
        for _np in $STACK_NODES; do
                [ "${_np%%:*}" = "$1" ] && {
                        echo "${_np#*:}"
                        return 0
                }
        done
        return 1
}

# node_forget NAME: after the caller has stopped it.
node_forget() {
        _l=""
        for _np in $STACK_NODES; do
                [ "${_np%%:*}" = "$1" ] || _l="$_l $_np"
        done
        STACK_NODES=$_l
}

_node_ready() {
        pid_alive "$2" || return 2
        [ "$("$AUTOOSCTL" node status --json --socket "$1/ctl.sock" 2>/dev/null |
                jq -r '.redis_connected // .status.redis_connected' 2>/dev/null)" = true ]
}

# node_enroll NAME: enrolls node NAME (autoos-coordinator --enroll-node) and
# writes its key to $STACK_DIR/keys/NAME.key (mode 0600); nothing when
# STACK_BUS_AUTH=off. The fleet key is $STACK_DIR/fleet.key.
node_enroll() {
        [ "${STACK_BUS_AUTH:-on}" = on ] || return 0
        mkdir -p "$STACK_DIR/keys"
        [ -s "$STACK_DIR/keys/$1.key" ] && return 0
        _stack_conf
        (umask 077 && "$COORD" --config "$STACK_DIR/coordinator.conf" --db "${SVC_DB_URL:-$DB_URL}" --enroll-node "$1" \
                </dev/null >"$STACK_DIR/keys/$1.key" 2>>"$STACK_DIR/keys.log") ||
                die "autoos-coordinator --enroll-node $1 failed" "$STACK_DIR/keys.log"
}

# The coordinator's settings file: node identity on (its fleet key here) unless STACK_BUS_AUTH=off.
_stack_conf() {
        printf 'fleet_key_file = %s\nbus_auth = %s\n' "$STACK_DIR/fleet.key" "${STACK_BUS_AUTH:-on}" \
                >"$STACK_DIR/coordinator.conf"
        # The web console and the OpenAPI document from the source tree (installed: $(datadir)/autoos).
        printf 'console_dir = %s/console\nopenapi_file = %s/doc/openapi.json\n' "$top_srcdir" "$top_srcdir" \
                >>"$STACK_DIR/coordinator.conf"
        # more settings, one a line (scripts/demo: the fabric of its model steps)
        [ -z "${STACK_CONF_EXTRA:-}" ] || printf '%s\n' "$STACK_CONF_EXTRA" >>"$STACK_DIR/coordinator.conf"
}

# node_start NAME LABELS MAX_RUNS: autoosd as node NAME (labels k=v,k=v) with
# its own state directory, control socket, metrics port and configuration;
# built-in policy. Waits until it is connected to Redis.
node_start() {
        _dir=$STACK_DIR/$1
        mkdir -p "$_dir"
        node_enroll "$1"
        printf 'labels = %s\nmax_runs = %s\nbus_auth = %s\nnode_key_file = %s\n' "$2" "$3" "${STACK_BUS_AUTH:-on}" \
                "$STACK_DIR/keys/$1.key" >"$_dir/autoosd.conf"
        "$AUTOOSD" --config "$_dir/autoosd.conf" --redis "$REDIS_URL" --node-id "$1" \
                --metrics "127.0.0.1:$(free_port)" --control-socket "$_dir/ctl.sock" --state-dir "$_dir/state" \
                --policy "$_dir/policy.json" </dev/null >>"$_dir/autoosd.log" 2>&1 &
        _pid=$!
        STACK_NODES="$STACK_NODES $1:$_pid"
        wait_for 15 _node_ready "$_dir" "$_pid" || die "autoosd $1 did not come up" "$_dir/autoosd.log"
}

_nodes_healthy() {
        _n=$(api GET /v1/nodes 2>/dev/null) || return 1
        for _name in "$@"; do
                [ "$(printf '%s' "$_n" | jq -r --arg n "$_name" '.nodes[] | select(.id == $n) | .state')" = healthy ] ||
                        return 1
        done
}

# nodes_wait_healthy NAME...: until the coordinator lists each as healthy (10 s).
nodes_wait_healthy() {
        wait_for 10 _nodes_healthy "$@" || die "the coordinator does not see node(s) $* as healthy" "$COORD_LOG"
}
