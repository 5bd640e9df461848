# SPDX-License-Identifier: MIT
# Helpers for the coordinator's end-to-end tests (tests/orchestrator/test-*.sh):
# a throwaway PostgreSQL (initdb in the test's directory, run as the postgres
# system user), a throwaway redis-server, one or more autoos-coordinator
# processes and several autoosd nodes, all children of the test on free
# loopback ports. Source tests/lib.sh first. POSIX sh.
#
#   need_fleet                        # skips the file unless everything is there
#   fleet_up a b                      # pg_start, redis_start, coord_start c1, KEY (operator), nodes a, b
#   id=$(wf_submit "$TEST_TMP/wf.json")   # or a JSON document
#   wf_wait "$id" succeeded 30 || diag "..."
#   is "$(step_field "$id" d stdout)" "..." "..."
#   api GET "/v1/workflows/$id/audit?verify=1"   # sets HTTP_STATUS, RESP, RESP_HEADERS
#   fleet_finish                      # done_testing, after checking no coordinator crashed
#
# The database is split as the README says: --migrate runs as the owner
# (PGURL, the superuser here), coordinators and --create-key as the service
# role "autoos" (PGSVC_URL), a member of autoos_app only. Coordinators sign
# audit checkpoints with AUDIT_KEY; ctl() verifies with its public key AUDIT_PUB.
#
# Everything started here is stopped when the test exits, whatever happens,
# by PID (never by name): coordinators with SIGTERM (SIGKILL after 5 s),
# nodes with SIGTERM twice (the second ends the drain), then SIGKILL;
# PostgreSQL with `pg_ctl stop -m immediate`; redis-server (tests/lib-redis.sh)
# with SIGKILL. FLEET_KEEP_LOGS=DIR keeps the logs of a run in DIR.
. "$top_srcdir/tests/lib-redis.sh"

# Redis as doc/trust.md says: the default user (the coordinator's, and rcli's)
# has a password, each enrolled node connects as its own ACL user, confined to
# its own keys. REDIS_ACL=0 (before redis_start) runs without.
REDIS_ACL=${REDIS_ACL:-1}

COORD=$top_builddir/orchestrator/autoos-coordinator
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGDATA_DIR=$TEST_TMP/pg
PGPORT=
PGURL=
PGSVC_URL=
AUDIT_KEY=$TEST_TMP/audit.key
AUDIT_PUB=$TEST_TMP/audit.key.pub
COORD_URL=
KEY=
HTTP_STATUS=
RESP=
RESP_HEADERS=$TEST_TMP/api.headers
# An empty configuration file, so that nothing in /etc/autoos matters.
FLEET_CONF=$TEST_TMP/coordinator.conf
_fl_coords=""   # ids of the coordinators started (running or not)
_fl_nodes=""    # names of the nodes started
_fl_bg=""       # other background processes (curl -N ...)
_fl_migrated=""

need_fleet() {
        need_root
        [ -x "$PGBIN/initdb" ] || skip_all "$PGBIN/initdb missing (Debian package postgresql)"
        id -u postgres >/dev/null 2>&1 || skip_all "no postgres system user"
        need_cmd runuser psql curl jq
        need_redis
        [ -x "$AUTOOSD" ] || skip_all "$AUTOOSD not built"
        [ -x "$COORD" ] || skip_all "$COORD not built"
        [ -x "$AUTOOSCTL" ] || skip_all "$AUTOOSCTL not built"
        # Node identity on (the default), with the test's own fleet key; FLEET_BUS_AUTH=off runs without.
        printf '%s\n' "fleet_key_file = $TEST_TMP/fleet.key" "bus_auth = ${FLEET_BUS_AUTH:-on}" >"$FLEET_CONF"
}

# --- cleanup -------------------------------------------------------------------

# _fl_reap PID SECONDS: waits for PID to end; SIGKILL after SECONDS; reaps it.
_fl_dead() {
        ! pid_alive "$1"
}

_fl_reap() {
        wait_for "$2" _fl_dead "$1" || kill -KILL "$1" 2>/dev/null
        wait_for 5 _fl_dead "$1"
        wait "$1" 2>/dev/null
        :
}

_fl_cleanup() {
        for _p in $_fl_bg; do
                pid_alive "$_p" && kill -TERM "$_p" 2>/dev/null
        done
        for _id in $_fl_coords; do
                _p=$(cat "$TEST_TMP/coord-$_id/pid" 2>/dev/null)
                [ -n "$_p" ] && pid_alive "$_p" && kill -TERM "$_p" 2>/dev/null
        done
        for _id in $_fl_coords; do
                _p=$(cat "$TEST_TMP/coord-$_id/pid" 2>/dev/null)
                [ -n "$_p" ] && pid_alive "$_p" && _fl_reap "$_p" 5
        done
        for _n in $_fl_nodes; do
                _p=$(cat "$TEST_TMP/node-$_n/pid" 2>/dev/null)
                [ -n "$_p" ] && pid_alive "$_p" && kill -TERM "$_p" 2>/dev/null
        done
        sleep 0.2
        for _n in $_fl_nodes; do
                _p=$(cat "$TEST_TMP/node-$_n/pid" 2>/dev/null)
                if [ -n "$_p" ] && pid_alive "$_p"; then
                        kill -TERM "$_p" 2>/dev/null
                        _fl_reap "$_p" 5
                fi
        done
        if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
                runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" stop -m immediate >/dev/null 2>&1
        fi
        if [ -n "${FLEET_KEEP_LOGS:-}" ]; then
                _d=$FLEET_KEEP_LOGS/$(basename "$0" .sh)
                mkdir -p "$_d" && cp "$TEST_TMP"/*.log "$_d/" 2>/dev/null
                cp "$TEST_TMP/pg.log" "$REDIS_DIR/redis.log" "$_d/" 2>/dev/null
        fi
        :
}
at_exit _fl_cleanup

# fleet_bg PID: stop this background process (SIGTERM) when the test ends.
fleet_bg() {
        _fl_bg="$_fl_bg $1"
}

# --- PostgreSQL ------------------------------------------------------------------

_pg() {
        _pg_prog=$1
        shift
        runuser -u postgres -- "$PGBIN/$_pg_prog" "$@"
}

_pg_spawn() {
        _pg pg_ctl -D "$PGDATA_DIR" -l "$TEST_TMP/pg.log" -w -t 20 \
                -o "-k $PGDATA_DIR -p $PGPORT -c listen_addresses=127.0.0.1 -c fsync=off" \
                start >/dev/null 2>&1
}

# pg_start: the first time, initdb a cluster in TEST_TMP (trust authentication)
# and start it on a free port; later (after pg_stop), start it again on the
# same port. Sets PGPORT and PGURL.
pg_start() {
        if [ ! -d "$PGDATA_DIR" ]; then
                chmod 711 "$TEST_TMP"
                mkdir -m 700 "$PGDATA_DIR"
                chown postgres: "$PGDATA_DIR"
                touch "$TEST_TMP/pg.log"
                chown postgres: "$TEST_TMP/pg.log"
                _pg initdb -D "$PGDATA_DIR" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
                        >"$TEST_TMP/initdb.log" 2>&1 || {
                        diag "$(cat "$TEST_TMP/initdb.log")"
                        bail_out "initdb failed"
                }
        fi
        if [ -n "$PGPORT" ]; then
                for _a in $(seq 1 50); do
                        _pg_spawn && return 0
                        sleep 0.1
                done
                diag "$(tail -n 20 "$TEST_TMP/pg.log")"
                return 1
        fi
        for _a in 1 2 3 4 5; do
                PGPORT=$(free_port)
                if _pg_spawn; then
                        PGURL=postgresql://postgres@127.0.0.1:$PGPORT/postgres
                        PGSVC_URL=postgresql://autoos@127.0.0.1:$PGPORT/postgres
                        return 0
                fi
        done
        diag "$(tail -n 20 "$TEST_TMP/pg.log")"
        bail_out "PostgreSQL did not start"
}

# pg_stop [MODE]: pg_ctl stop -m MODE (default fast), waiting for it.
pg_stop() {
        _pg pg_ctl -D "$PGDATA_DIR" stop -m "${1:-fast}" -w -t 20 >/dev/null 2>&1
}

pg_restart() {
        pg_stop "$@" && pg_start
}

# psql_q SQL: runs SQL as the superuser; unaligned tuples only, '|' between columns.
psql_q() {
        psql -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres -c "$1"
}

# --- coordinators --------------------------------------------------------------------

# fleet_migrate: autoos-coordinator --migrate as the owner, once per test; the
# service role autoos (a member of autoos_app only) and the audit key.
fleet_migrate() {
        [ -n "$_fl_migrated" ] && return 0
        "$COORD" --config "$FLEET_CONF" --migrate --db-owner "$PGURL" --db "$PGSVC_URL" --sql-dir "$top_srcdir/sql" \
                >"$TEST_TMP/migrate.log" 2>&1 || {
                diag "$(tail -n 20 "$TEST_TMP/migrate.log")"
                bail_out "autoos-coordinator --migrate failed"
        }
        psql_q "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'autoos') THEN
                CREATE ROLE autoos LOGIN; END IF; END \$\$; GRANT autoos_app TO autoos" >/dev/null 2>&1 ||
                bail_out "could not make the service role autoos"
        [ -f "$AUDIT_KEY" ] || "$COORD" --create-audit-key "$AUDIT_KEY" >/dev/null 2>"$TEST_TMP/audit-key.log" ||
                bail_out "autoos-coordinator --create-audit-key failed: $(cat "$TEST_TMP/audit-key.log")"
        _fl_migrated=1
}

# key_create NAME ROLE: a new API key; prints it.
key_create() {
        fleet_migrate
        "$COORD" --config "$FLEET_CONF" --create-key "$1" --role "$2" --db "$PGSVC_URL" 2>>"$TEST_TMP/keys.log" ||
                bail_out "autoos-coordinator --create-key $1 --role $2 failed: $(tail -n 3 "$TEST_TMP/keys.log")"
}

# Coordinators started with --tls-cert/--tls-key: set COORD_SCHEME=https and
# COORD_CACERT=FILE (the CA their certificate chains to) before coord_start;
# the helpers' curl then verifies them against it.
_fl_curl() {
        if [ -n "${COORD_CACERT:-}" ]; then
                curl --cacert "$COORD_CACERT" "$@"
        else
                curl "$@"
        fi
}

# coord_url ID: the base URL of coordinator ID.
coord_url() {
        echo "${COORD_SCHEME:-http}://127.0.0.1:$(cat "$TEST_TMP/coord-$1/port")"
}

# coord_pid ID
coord_pid() {
        cat "$TEST_TMP/coord-$1/pid" 2>/dev/null
}

# coord_log ID: its log file (JSON lines on stderr).
coord_log() {
        echo "$TEST_TMP/coord-$1.log"
}

_fl_healthy() {
        pid_alive "$1" && [ "$(_fl_curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$2/healthz")" = 200 ]
}

# (wait_for stops early once the process is gone.)
_fl_healthy_or_dead() {
        _fl_healthy "$1" "$2" || ! pid_alive "$1"
}

# coord_start [ID [FLAG]...]: migrates (once), then starts coordinator ID
# (default c1) against the test's PostgreSQL and Redis, on a free port (the
# same port again when ID was started before), and waits up to 10 s for
# /healthz to answer 200. Sets COORD_URL to it. Returns 1 (with a diag) when
# it did not come up. (free_port is racy: a first start that could not bind
# tries another port.)
coord_start() {
        _cid=${1:-c1}
        [ $# -gt 0 ] && shift
        fleet_migrate
        _cdir=$TEST_TMP/coord-$_cid
        _cfirst=""
        if [ ! -d "$_cdir" ]; then
                mkdir -p "$_cdir"
                free_port >"$_cdir/port"
                _fl_coords="$_fl_coords $_cid"
                _cfirst=1
        fi
        for _ctry in 1 2 3 4 5; do
                _cport=$(cat "$_cdir/port")
                _curl=${COORD_SCHEME:-http}://127.0.0.1:$_cport
                _clog=$TEST_TMP/coord-$_cid.log
                echo "--- start $(date +%T.%N) on port $_cport" >>"$_clog"
                _cline=$(wc -l <"$_clog")
                "$COORD" --config "$FLEET_CONF" --db "$PGSVC_URL" --audit-key "$AUDIT_KEY" --redis "$REDIS_URL" \
                        --listen "127.0.0.1:$_cport" \
                        --id "$_cid" --sql-dir "$top_srcdir/sql" --log-level "${COORD_LOG_LEVEL:-debug}" "$@" \
                        </dev/null >>"$_clog" 2>&1 &
                echo $! >"$_cdir/pid"
                rm -f "$_cdir/killed"
                wait_for 10 _fl_healthy_or_dead "$!" "$_curl"
                if _fl_healthy "$(coord_pid "$_cid")" "$_curl"; then
                        COORD_URL=$_curl
                        return 0
                fi
                pid_alive "$(coord_pid "$_cid")" && break
                wait "$(coord_pid "$_cid")" 2>/dev/null
                tail -n "+$((_cline + 1))" "$_clog" | grep -qiE 'in use|bind' || break
                if [ -n "$_cfirst" ]; then
                        free_port >"$_cdir/port"
                else
                        sleep 0.5
                fi
        done
        diag "coordinator $_cid did not come up on $_curl; its log:" "$(tail -n 20 "$_clog" | cut -c1-400)"
        return 1
}

# coord_kill ID [SIG]: sends SIG (default TERM) to coordinator ID and reaps it
# (SIGKILL after 10 s).
coord_kill() {
        _p=$(coord_pid "$1")
        [ -n "$_p" ] || return 1
        touch "$TEST_TMP/coord-$1/killed"
        kill "-${2:-TERM}" "$_p" 2>/dev/null
        _fl_reap "$_p" 10
}

# --- nodes -----------------------------------------------------------------------------

# Up: running, connected to Redis, and the heartbeat is this daemon's own (the
# key of a daemon killed just before a restart lives on for up to 3 s, while
# the new one beats only at its first timer tick after connecting).
_fl_node_up() {
        pid_alive "$(node_pid "$1")" || return 1
        _nj=$(node_info "$1")
        [ "$(printf '%s' "$_nj" | jq -r '.redis_connected // .status.redis_connected' 2>/dev/null)" = true ] || return 1
        _ns=$(printf '%s' "$_nj" | jq -r '.started_at // .status.started_at // empty' 2>/dev/null)
        if [ -n "$_ns" ]; then
                [ "$(rcli HGET "autoos:node:$1" started_at)" = "$_ns" ]
        else
                [ "$(rcli EXISTS "autoos:node:$1")" = 1 ]
        fi
}

_fl_node_up_or_dead() {
        _fl_node_up "$1" || ! pid_alive "$(node_pid "$1")"
}

# _fl_acl_apply LINE: runs an "ACL SETUSER ..." line of --node-acl.
_fl_acl_apply() {
        set -f
        # shellcheck disable=SC2086 # the ACL's words, as printed
        _fl_acl_out=$(rcli $1 2>&1)
        set +f
        [ "$_fl_acl_out" = OK ] || {
                diag "ACL SETUSER: $_fl_acl_out"
                return 1
        }
}

# redis_on_start: (tests/lib-redis.sh calls it each time its redis-server is
# up) a restarted Redis has lost its ACL users: the nodes' come back.
redis_on_start() {
        for _fl_af in "$TEST_TMP"/redis-acl/*; do
                [ -f "$_fl_af" ] && _fl_acl_apply "$(cat "$_fl_af")"
        done
        :
}

# _fl_enroll NAME DIR: enrolls node NAME once (autoos-coordinator --enroll-node;
# its key in DIR/node.key, mode 0600), unless FLEET_BUS_AUTH=off. With
# REDIS_ACL=1 (the default) the node also gets its own Redis ACL user (--node-acl), which
# confines it to its own keys. Sets _nd_redis, the URL the node connects with.
_fl_enroll() {
        _nd_redis=$REDIS_URL
        [ "${FLEET_BUS_AUTH:-on}" = on ] || return 0
        if [ ! -s "$2/node.key" ]; then
                fleet_migrate
                (umask 077 && "$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" --enroll-node "$1" \
                        >"$2/node.key" 2>>"$TEST_TMP/enroll.log") ||
                        bail_out "autoos-coordinator --enroll-node $1 failed: $(tail -n 3 "$TEST_TMP/enroll.log")"
        fi
        if [ "${REDIS_ACL:-0}" = 1 ]; then
                _acl=$("$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" --node-acl "$1" \
                        2>>"$TEST_TMP/enroll.log") ||
                        bail_out "autoos-coordinator --node-acl $1 failed: $(tail -n 3 "$TEST_TMP/enroll.log")"
                mkdir -p "$TEST_TMP/redis-acl"
                printf '%s\n' "$_acl" >"$TEST_TMP/redis-acl/$1"
                _fl_acl_apply "$_acl" || bail_out "ACL SETUSER $1 failed"
                _pw=$(printf '%s\n' "$_acl" | sed -n 's/.* >\([0-9a-f]*\) .*/\1/p')
                _nd_redis=redis://$1:$_pw@127.0.0.1:$REDIS_PORT
        fi
}

# node_start NAME [CONFIG-LINE]...: autoosd as node NAME with its own
# configuration file (the lines given, e.g. "labels = zone=a" "max_runs = 2"),
# state dir and control socket (the same ones when NAME was started before: a
# restart), a free metrics port, the built-in policy; waits (10 s) until its
# heartbeat key autoos:node:NAME exists and it says it is connected to Redis.
# Returns 1 (with a diag) otherwise.
node_start() {
        _nn=$1
        shift
        _nd=$TEST_TMP/node-$_nn
        if [ ! -d "$_nd" ]; then
                mkdir -p "$_nd"
                _fl_nodes="$_fl_nodes $_nn"
        fi
        _fl_enroll "$_nn" "$_nd"
        if [ $# -gt 0 ]; then
                printf '%s\n' "node_key_file = $_nd/node.key" "bus_auth = ${FLEET_BUS_AUTH:-on}" "$@" >"$_nd/conf"
        elif [ ! -f "$_nd/conf" ]; then
                printf '%s\n' "# node $_nn" "node_key_file = $_nd/node.key" "bus_auth = ${FLEET_BUS_AUTH:-on}" \
                        >"$_nd/conf"
        fi
        # free_port is racy: a daemon that could not bind its metrics port tries another.
        for _ntry in 1 2 3 4 5; do
                _nlog=$TEST_TMP/node-$_nn.log
                echo "--- start $(date +%T.%N)" >>"$_nlog"
                _nline=$(wc -l <"$_nlog")
                "$AUTOOSD" --config "$_nd/conf" --redis "$_nd_redis" --node-id "$_nn" \
                        --metrics "127.0.0.1:$(free_port)" --control-socket "$_nd/ctl.sock" \
                        --state-dir "$_nd/state" --policy "$_nd/policy.json" \
                        </dev/null >>"$_nlog" 2>&1 &
                echo $! >"$_nd/pid"
                wait_for 10 _fl_node_up_or_dead "$_nn"
                if _fl_node_up "$_nn"; then
                        return 0
                fi
                pid_alive "$(node_pid "$_nn")" && break
                wait "$(node_pid "$_nn")" 2>/dev/null
                tail -n "+$((_nline + 1))" "$_nlog" | grep -qiE 'in use|bind' || break
        done
        diag "node $_nn did not come up; its log:" "$(tail -n 20 "$TEST_TMP/node-$_nn.log" | cut -c1-400)"
        return 1
}

# node_pid NAME
node_pid() {
        cat "$TEST_TMP/node-$1/pid" 2>/dev/null
}

# node_kill NAME [SIG]: sends SIG (default TERM; a TERM is sent twice so the
# drain does not wait for runs) and reaps the daemon (SIGKILL after 10 s).
node_kill() {
        _p=$(node_pid "$1")
        [ -n "$_p" ] || return 1
        kill "-${2:-TERM}" "$_p" 2>/dev/null
        if [ "${2:-TERM}" = TERM ]; then
                sleep 0.2
                kill -TERM "$_p" 2>/dev/null
        fi
        _fl_reap "$_p" 10
}

# node_info NAME: the node's status JSON over its control socket.
node_info() {
        "$AUTOOSCTL" node status --json --socket "$TEST_TMP/node-$1/ctl.sock" 2>/dev/null
}

# node_running NAME: how many runs the node has now.
node_running() {
        node_info "$1" | jq -r '.running // .status.running' 2>/dev/null
}

# fleet_up [NODE]...: PostgreSQL, Redis, coordinator c1 (COORD_URL), an
# operator key (KEY) and the nodes named, each with max_runs 4.
fleet_up() {
        pg_start
        redis_start
        KEY=$(key_create operator operator)
        coord_start c1 || bail_out "the coordinator did not start"
        for _n in "$@"; do
                node_start "$_n" "max_runs = 4" || bail_out "node $_n did not start"
        done
}

# --- HTTP API ----------------------------------------------------------------------------

# api_as KEY METHOD PATH [BODY]: one request to COORD_URL (or API_URL when set)
# with that bearer key (none when KEY is empty). BODY is a JSON string, or
# @FILE. Sets HTTP_STATUS (000 when there was no answer), RESP (the body) and
# the headers in the file RESP_HEADERS. Prints nothing.
api_as() {
        _ak=$1
        _am=$2
        _ap=$3
        : >"$TEST_TMP/api.req"
        _ab=
        if [ $# -ge 4 ]; then
                case $4 in
                @*) _ab=${4#@} ;;
                *)
                        printf '%s' "$4" >"$TEST_TMP/api.req"
                        _ab=$TEST_TMP/api.req
                        ;;
                esac
        fi
        set -- -s -o "$TEST_TMP/api.body" -D "$RESP_HEADERS" -w '%{http_code}' --max-time "${API_TIMEOUT:-30}" \
                -X "$_am"
        [ -n "$_ak" ] && set -- "$@" -H "Authorization: Bearer $_ak"
        [ -n "$_ab" ] && set -- "$@" -H 'Content-Type: application/json' --data-binary "@$_ab"
        : >"$TEST_TMP/api.body"
        HTTP_STATUS=$(_fl_curl "$@" "${API_URL:-$COORD_URL}$_ap")
        [ -n "$HTTP_STATUS" ] || HTTP_STATUS=000
        RESP=$(cat "$TEST_TMP/api.body")
}

# api METHOD PATH [BODY]: api_as with $KEY.
api() {
        api_as "$KEY" "$@"
}

# resp_header NAME: a header of the last answer (case-insensitive name).
resp_header() {
        tr -d '\r' <"$RESP_HEADERS" | awk -v n="$1" 'BEGIN { n = tolower(n) ":" }
                tolower(substr($0, 1, length(n))) == n { sub(/^[^:]*:[ \t]*/, ""); v = $0 } END { print v }'
}

# ctl ARG...: autoosctl against COORD_URL with KEY (audit --verify against AUDIT_PUB).
ctl() {
        env AUTOOS_URL="$COORD_URL" AUTOOS_API_KEY="$KEY" AUTOOS_CACERT="${COORD_CACERT:-}" AUTOOS_AUDIT_PUBKEY="$AUDIT_PUB" "$AUTOOSCTL" "$@"
}

# result_xadd JSON: XADDs a result to autoos:results as the node it names
# would: with bus_auth, sealed with that node's key (TEST_TMP/node-NAME/node.key)
# and its run's dispatch token (tests/orchestrator/seal-result).
result_xadd() {
        _rn=$(printf '%s' "$1" | jq -r '.node // empty')
        _rid=$(printf '%s' "$1" | jq -r '.id // empty')
        if [ "${FLEET_BUS_AUTH:-on}" = on ]; then
                _seal=$(printf '%s' "$1" | "$top_builddir/tests/orchestrator/seal-result" "$TEST_TMP/fleet.key" \
                        "$TEST_TMP/node-$_rn/node.key" "$_rn" "$_rid") || return 1
                rcli XADD autoos:results '*' result "$1" node "$_rn" token "${_seal%% *}" auth "${_seal#* }"
        else
                rcli XADD autoos:results '*' result "$1" node "$_rn"
        fi
}

# --- workflows ----------------------------------------------------------------------------

# sh_step ID SCRIPT [JSON]: a step running /bin/sh -c SCRIPT, merged with the
# object JSON (e.g. '{"needs":["a"],"retry":{"max_attempts":3}}'); one line.
sh_step() {
        _sx=${3:-}
        [ -n "$_sx" ] || _sx='{}'
        jq -cn --arg id "$1" --arg s "$2" --argjson x "$_sx" '{id: $id, run: {argv: ["/bin/sh", "-c", $s]}} * $x'
}

# workflow NAME STEP-JSON...: a workflow document, one line.
workflow() {
        _wn=$1
        shift
        for _s in "$@"; do
                printf '%s\n' "$_s"
        done | jq -cs --arg n "$_wn" '{name: $n, steps: .}'
}

# wf_submit FILE|JSON: POST /v1/workflows; prints the new workflow's id.
# Returns 1 (diag on stderr) unless the answer is 201 with an id.
wf_submit() {
        if [ -f "$1" ]; then
                api POST /v1/workflows "@$1"
        else
                api POST /v1/workflows "$1"
        fi
        _wid=$(printf '%s' "$RESP" | jq -r '.id // empty' 2>/dev/null)
        if [ "$HTTP_STATUS" = 201 ] && [ -n "$_wid" ]; then
                echo "$_wid"
                return 0
        fi
        diag "submit: HTTP $HTTP_STATUS: $RESP" >&2
        return 1
}

# wf_json ID: GET /v1/workflows/ID (the body; empty unless 200).
wf_json() {
        api GET "/v1/workflows/$1"
        [ "$HTTP_STATUS" = 200 ] && printf '%s' "$RESP"
}

# wf_state ID
wf_state() {
        wf_json "$1" | jq -r '.state' 2>/dev/null
}

# step_field ID STEP FIELD: one field of one step of GET /v1/workflows/ID ("null" when absent).
step_field() {
        wf_json "$1" | jq -r --arg s "$2" --arg f "$3" '.steps[] | select(.id == $s) | .[$f]' 2>/dev/null
}

# wf_steps ID: "step=state" for each step, space-separated (for diagnostics).
wf_steps() {
        wf_json "$1" | jq -r '[.steps[] | "\(.id)=\(.state)/\(.attempt)@\(.node)"] | join(" ")' 2>/dev/null
}

_fl_wf_is() {
        _ws=$(wf_state "$1")
        [ "$_ws" = "$2" ] && return 0
        # A final state other than the one awaited: no point in waiting.
        case $_ws in
        succeeded | failed | cancelled) return 2 ;;
        esac
        return 1
}

# wf_wait ID STATE [SECONDS]: polls until the workflow is in STATE (default
# 30 s); returns 1 with a diag (state and steps) when it is not, or ended in
# another final state.
wf_wait() {
        _wdl=$(($(now_ms) + ${3:-30} * 1000))
        while :; do
                _fl_wf_is "$1" "$2"
                _wr=$?
                [ $_wr = 0 ] && return 0
                [ $_wr = 2 ] && break
                [ "$(now_ms)" -ge "$_wdl" ] && break
                sleep 0.1
        done
        diag "workflow $1: state '$(wf_state "$1")', not '$2'; steps: $(wf_steps "$1")"
        return 1
}

_fl_step_is() {
        [ "$(step_field "$1" "$2" state)" = "$3" ]
}

# step_wait ID STEP STATE [SECONDS]: polls until that step is in STATE (default 30 s).
step_wait() {
        if wait_for "${4:-30}" _fl_step_is "$1" "$2" "$3"; then
                return 0
        fi
        diag "workflow $1 step $2: state '$(step_field "$1" "$2" state)', not '$3'; steps: $(wf_steps "$1")"
        return 1
}

# audit_json ID [verify]: GET /v1/workflows/ID/audit (?verify=1 with a second argument).
audit_json() {
        if [ $# -ge 2 ]; then
                api GET "/v1/workflows/$1/audit?verify=1"
        else
                api GET "/v1/workflows/$1/audit"
        fi
        printf '%s' "$RESP"
}

# audit_actions ID: the actions of the workflow's audit trail, one a line, in order.
audit_actions() {
        audit_json "$1" | jq -r '.rows[].action' 2>/dev/null
}

# audit_count ID ACTION: how many rows of the trail have that action.
audit_count() {
        audit_actions "$1" | grep -cx -- "$2"
}

# audit_verified ID: "true" when GET .../audit?verify=1 says the chain verifies.
audit_verified() {
        audit_json "$1" verify | jq -r '.verify.ok' 2>/dev/null
}

# --- end --------------------------------------------------------------------------------------

# fleet_finish: done_testing, after one test per coordinator that was not
# stopped on purpose (it is still running: no crash) and one that no log holds
# a sanitizer report; on any failure the coordinators' and nodes' log tails
# are shown.
fleet_finish() {
        for _id in $_fl_coords; do
                [ -f "$TEST_TMP/coord-$_id/killed" ] && continue
                ok "coordinator $_id is still running (no crash)" pid_alive "$(coord_pid "$_id")"
        done
        _san=$(cat "$TEST_TMP"/coord-*.log "$TEST_TMP"/node-*.log 2>/dev/null |
                grep -E -m 5 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:')
        is "$_san" "" "no sanitizer report in the coordinators' and nodes' logs"
        if [ "$tap_failed" -gt 0 ]; then
                for _id in $_fl_coords; do
                        diag "coordinator $_id log, last 30 lines but GET requests:" \
                                "$(grep -v '"method":"GET"' "$(coord_log "$_id")" | tail -n 30 | cut -c1-400)"
                done
                for _n in $_fl_nodes; do
                        diag "node $_n log, last 8 lines:" "$(tail -n 8 "$TEST_TMP/node-$_n.log" | cut -c1-300)"
                done
        fi
        done_testing
}
