# SPDX-License-Identifier: MIT
# Helpers for the autoosd tests (tests/daemon/test-*.sh): a throwaway
# redis-server and autoosd, both children of the test, on free loopback ports
# in the test's own temporary directory. Source tests/lib.sh first. POSIX sh.
#
#   need_root; need_redis; need_daemon
#   redis_start                       # REDIS_PORT, REDIS_PID, REDIS_URL
#   autoosd_start [--max-runs 8] ...  # D_PID, D_SOCK, D_METRICS, D_STATE, D_LOG; node $NODE
#   id=$(job_add '{"id":"j1","argv":["/bin/true"]}')
#   wait_result j1 10 && is "$(jf .outcome "$RESULT")" exited "..."
#   autoosd_stop; redis_stop          # or leave it to the EXIT trap
#
# Everything started here is stopped when the test exits, by PID (never by
# name): autoosd with SIGTERM twice (the second one ends it at once and kills
# its runs), then SIGKILL; redis-server with SIGKILL.

AUTOOSD=$top_builddir/daemon/autoosd
NODE=t$$
D_STATE=$TEST_TMP/state
D_SOCK=$TEST_TMP/ctl.sock
D_LOG=$TEST_TMP/autoosd.log
D_CONF=$TEST_TMP/autoosd.conf
D_POLICY=$TEST_TMP/policy.json # absent unless a test writes it: built-in policy
REDIS_DIR=$TEST_TMP/redis
REDIS_PID=
REDIS_EXTRA="" # more redis-server flags, e.g. "--appendonly yes" to keep data over a restart
D_PID=
_lr_daemons=""

need_redis() {
        command -v redis-server >/dev/null 2>&1 || skip_all "needs redis-server (Debian package redis-server)"
        command -v redis-cli >/dev/null 2>&1 || skip_all "needs redis-cli (Debian package redis-tools)"
}

need_daemon() {
        [ -x "$AUTOOSD" ] || bail_out "$AUTOOSD not built"
        need_built
        need_cmd jq curl
}

now_ms() {
        date +%s%3N
}

# pid_alive PID: running and not a zombie.
pid_alive() {
        [ -r "/proc/$1/stat" ] || return 1
        _st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
        [ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

# wait_for SECONDS CMD [ARG]...: polls CMD every 50 ms until it succeeds (0) or
# SECONDS (decimals allowed) times AUTOOS_TIME_SCALE (tests/lib.sh: how slow
# this host is now) have passed (1). It returns as soon as CMD succeeds, so the
# scale costs time only when the condition never comes.
wait_for() {
        _wf_deadline=$(($(now_ms) + $(awk -v s="$1" -v k="${AUTOOS_TIME_SCALE:-1}" 'BEGIN { printf "%d", s * k * 1000 }')))
        shift
        while :; do
                "$@" && return 0
                [ "$(now_ms)" -ge "$_wf_deadline" ] && return 1
                sleep 0.05
        done
}


_lr_cleanup() {
        for _pid in $_lr_daemons; do
                pid_alive "$_pid" || continue
                kill -TERM "$_pid"
                sleep 0.2
                kill -TERM "$_pid"
                _i=0
                while pid_alive "$_pid" && [ $_i -lt 100 ]; do
                        sleep 0.05
                        _i=$((_i + 1))
                done
                pid_alive "$_pid" && kill -KILL "$_pid"
        done
        [ -n "$REDIS_PID" ] && pid_alive "$REDIS_PID" && kill -KILL "$REDIS_PID"
        :
}
at_exit _lr_cleanup

# --- redis-server -----------------------------------------------------------

# rcli ARG...: redis-cli against the test's server, raw output.
rcli() {
        redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --raw "$@"
}

# True once the server on REDIS_PORT answers and is ours (its pid).
_redis_is_ours() {
        rcli INFO server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$REDIS_PID"
}

_redis_spawn() {
        mkdir -p "$REDIS_DIR"
        redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --save '' --appendonly no \
                --daemonize no --logfile "$REDIS_DIR/redis.log" ${REDIS_ADMIN_PASSWORD:+--requirepass "$REDIS_ADMIN_PASSWORD"} \
                $REDIS_EXTRA </dev/null >/dev/null 2>&1 &
        REDIS_PID=$!
        _rs_deadline=$(($(now_ms) + 10000))
        while [ "$(now_ms)" -lt "$_rs_deadline" ]; do
                if ! pid_alive "$REDIS_PID"; then
                        wait "$REDIS_PID" 2>/dev/null
                        REDIS_PID=
                        return 1
                fi
                if _redis_is_ours; then
                        # A hook of tests/lib-fleet.sh: the nodes' ACL users again after a restart.
                        if command -v redis_on_start >/dev/null 2>&1; then
                                redis_on_start
                        fi
                        return 0
                fi
                sleep 0.02
        done
        kill -KILL "$REDIS_PID"
        wait "$REDIS_PID" 2>/dev/null
        REDIS_PID=
        return 1
}

# redis_start: a fresh server on a free port; sets REDIS_PORT, REDIS_PID, REDIS_URL.
# With REDIS_ACL=1 the default user gets a password (REDIS_ADMIN_PASSWORD, in
# REDIS_URL and, for rcli, REDISCLI_AUTH): the coordinator's user, while each
# node gets an ACL user of its own (tests/lib-fleet.sh, its default).
redis_start() {
        if [ "${REDIS_ACL:-0}" = 1 ] && [ -z "$REDIS_ADMIN_PASSWORD" ]; then
                REDIS_ADMIN_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
                REDISCLI_AUTH=$REDIS_ADMIN_PASSWORD
                export REDISCLI_AUTH
        fi
        for _a in 1 2 3 4 5 6 7 8; do
                REDIS_PORT=$(free_port)
                if _redis_spawn; then
                        REDIS_URL=redis://${REDIS_ADMIN_PASSWORD:+:$REDIS_ADMIN_PASSWORD@}127.0.0.1:$REDIS_PORT
                        return 0
                fi
        done
        bail_out "redis-server would not start (see $REDIS_DIR/redis.log)"
}

# redis_stop: SIGTERM (SIGKILL after 5 s) and reap.
redis_stop() {
        [ -n "$REDIS_PID" ] || return 0
        kill -TERM "$REDIS_PID" 2>/dev/null
        wait_for 5 eval '! pid_alive "$REDIS_PID"' || kill -KILL "$REDIS_PID"
        wait "$REDIS_PID" 2>/dev/null
        REDIS_PID=
}

# redis_restart: start again on the same port (empty, unless REDIS_EXTRA asked for persistence).
redis_restart() {
        redis_stop
        for _a in $(seq 1 50); do
                _redis_spawn && return 0
                sleep 0.1
        done
        return 1
}

# --- autoosd ------------------------------------------------------------------

# autoosd_config LINE...: replaces the daemon's configuration file (key = value lines).
# These tests feed the node by hand (rcli XADD), without a coordinator to sign
# its jobs: the file starts with bus_auth = off unless LR_BUS_AUTH=on (then the
# test names node_key_file itself). Node identity is tested through a fleet
# (tests/lib-fleet.sh, tests/orchestrator/test-identity.sh).
autoosd_config() {
        if [ "${LR_BUS_AUTH:-off}" = off ]; then
                printf '%s\n' "bus_auth = off" "$@" >"$D_CONF"
        else
                printf '%s\n' "$@" >"$D_CONF"
        fi
}

_lr_ready() {
        pid_alive "$D_PID" || return 2
        [ "$(autoosctl node status --json --socket "$D_SOCK" 2>/dev/null | jq -r '.redis_connected // .status.redis_connected' 2>/dev/null)" = true ]
}

# autoosd_start [FLAG]...: starts autoosd against the test's Redis with its own
# state dir, control socket, metrics port and configuration file, as node
# $NODE; waits until it has connected to Redis (10 s). Sets D_PID, D_METRICS
# (host:port). The log (JSON lines, stderr) accumulates in D_LOG.
# Returns 1 (with a diag) when it did not come up.
autoosd_start() {
        [ -f "$D_CONF" ] || autoosd_config "# test configuration"
        D_METRICS=127.0.0.1:$(free_port)
        "$AUTOOSD" --config "$D_CONF" --redis "$REDIS_URL" --node-id "$NODE" --metrics "$D_METRICS" \
                --control-socket "$D_SOCK" --state-dir "$D_STATE" --policy "$D_POLICY" "$@" \
                </dev/null >>"$D_LOG" 2>&1 &
        D_PID=$!
        _lr_daemons="$D_PID $_lr_daemons"
        if wait_for 10 _lr_ready; then
                return 0
        fi
        diag "autoosd did not come up; its log:" "$(tail -n 20 "$D_LOG")"
        return 1
}

# autoosd_wait_exit SECONDS: waits for the daemon to exit and reaps it; sets
# D_RC (its exit status). 1 when it is still running after SECONDS.
autoosd_wait_exit() {
        wait_for "$1" eval '! pid_alive "$D_PID"' || return 1
        wait "$D_PID"
        D_RC=$?
        _lr_forget "$D_PID"
        return 0
}

_lr_forget() {
        _l=""
        for _p in $_lr_daemons; do
                [ "$_p" = "$1" ] || _l="$_l $_p"
        done
        _lr_daemons=$_l
}

# autoosd_stop: SIGTERM, and a second SIGTERM (exit now) if it is still
# there after 10 s; SIGKILL after 5 more. Reaps it; D_RC is its status.
autoosd_stop() {
        [ -n "$D_PID" ] || return 0
        kill -TERM "$D_PID" 2>/dev/null
        if ! autoosd_wait_exit 10; then
                kill -TERM "$D_PID" 2>/dev/null
                autoosd_wait_exit 5 || {
                        kill -KILL "$D_PID"
                        autoosd_wait_exit 5
                }
        fi
}

# autoosd_kill9: SIGKILL, reaped (a zombie would still own its cgroups' names).
autoosd_kill9() {
        kill -KILL "$D_PID"
        autoosd_wait_exit 5
}

# --- jobs and results ---------------------------------------------------------------

# job_add SPEC_JSON: XADD it to the node's jobs stream; prints the entry id.
job_add() {
        rcli XADD "autoos:jobs:$NODE" '*' spec "$1"
}

# cancel_add RUN_ID
cancel_add() {
        rcli XADD "autoos:jobs:$NODE" '*' cancel "$1"
}

# results: every result on autoos:results, one JSON document a line, in stream order.
results() {
        rcli XRANGE autoos:results - + | grep '^{'
}

# results_for ID: every result with that id.
results_for() {
        results | jq -c --arg id "$1" 'select(.id == $id)'
}

# count_results ID
count_results() {
        results_for "$1" | wc -l
}

_lr_has_result() {
        RESULT=$(results_for "$1" | tail -n 1)
        [ -n "$RESULT" ]
}

_lr_result_or_dead() {
        _lr_has_result "$1" || ! pid_alive "$D_PID"
}

# wait_result ID [SECONDS]: waits (default 10 s, less if the daemon is gone)
# for a result with that id; sets RESULT to the last one. 1 (with a diag) when
# there is none.
wait_result() {
        wait_for "${2:-10}" _lr_result_or_dead "$1"
        _lr_has_result "$1" && return 0
        if pid_alive "$D_PID"; then
                diag "no result for $1 within ${2:-10} s; daemon log tail:" "$(tail -n 8 "$D_LOG" | cut -c1-300)"
        else
                diag "no result for $1, and autoosd ($D_PID) is not running"
        fi
        return 1
}

# pending: how many entries of the node's jobs stream are read and not acknowledged.
pending() {
        rcli XPENDING "autoos:jobs:$NODE" autoosd | head -n 1
}

# metric NAME [LABELVALUE]: one sample from the metrics endpoint (0 when absent);
# LABELVALUE selects NAME{...="LABELVALUE"}.
metric() {
        curl -sf "http://$D_METRICS/metrics" | awk -v n="$1" -v l="${2:-}" '
                l == "" && $1 == n { v = $2 }
                l != "" && index($1, n "{") == 1 && index($1, "=\"" l "\"}") { v = $2 }
                END { print (v == "" ? 0 : v) }'
}

# node_status: the daemon's status JSON over the control socket.
node_status() {
        autoosctl node status --json --socket "$D_SOCK"
}

# ps_marker MARKER: processes whose command line contains MARKER, one a line.
ps_marker() {
        ps -eo pid=,args= | grep -F -- "$1" | grep -v -F -e 'grep' || true
}

# finish: done_testing for the daemon tests, after one more test: the daemon's
# log holds no sanitizer report (ASan/UBSan builds); on any failure the tail
# of the log is shown.
finish() {
        if [ -s "$D_LOG" ]; then
                _san=$(grep -E -m 5 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$D_LOG")
                is "$_san" "" "no sanitizer report in autoosd's log"
        fi
        if [ -n "${_san:-}" ]; then
                diag "autoosd's sanitizer report:" \
                        "$(awk '/ERROR: (Address|Leak)Sanitizer|runtime error:/ { n = 40 } n-- > 0' "$D_LOG" | head -n 40 | cut -c1-300)"
        elif [ "$tap_failed" -gt 0 ] && [ -s "$D_LOG" ]; then
                diag "autoosd log, last 25 lines:" "$(tail -n 25 "$D_LOG" | cut -c1-400)"
        fi
        done_testing
}
