# SPDX-License-Identifier: MIT
# Shared helpers for the shell TAP tests (tests/<layer>/test-*.sh), run by
# automake's tap-driver.sh. POSIX sh (dash): no arrays, no [[ ]].
#
# A test sources this file, then:
#   need_root                       # "1..0 # SKIP ..." and exit 0 when not root
#   need_cmd jq                     # the same when a tool is missing
#   run_json --memory 64M -- /bin/sh -c '...'
#   is "$(jf .outcome)" oom "memory bomb ends as oom"
#   done_testing                    # prints the plan, exits 1 if anything failed
#
# Environment: top_srcdir and top_builddir (make check exports both, absolute).

if [ -z "${top_srcdir:-}" ]; then
        top_srcdir=$(cd "$(dirname "$0")/../.." && pwd)
fi
if [ -z "${top_builddir:-}" ]; then
        if [ -x "$PWD/cli/autoosctl" ]; then
                top_builddir=$PWD
        else
                top_builddir=$top_srcdir
        fi
fi
export top_srcdir top_builddir

AUTOOSCTL=$top_builddir/cli/autoosctl
PROBE=$top_builddir/tests/sandbox/probe

# The host environment must not matter to the program: a fixed locale for the tools here.
LC_ALL=C
export LC_ALL

tap_n=0
tap_failed=0

# --- TAP --------------------------------------------------------------------

# diag MSG...: each argument on its own "# " line (and each line of it).
diag() {
        for _l in "$@"; do
                printf '%s\n' "$_l"
        done | sed 's/^/# /'
}

# tap_result PASSED(0|1) DESC: one "ok"/"not ok" line. '#' in DESC would start
# a directive, so it is replaced.
tap_result() {
        tap_n=$((tap_n + 1))
        _d=$(printf '%s' "$2" | tr '#\n' '_ ')
        if [ "$1" -eq 0 ]; then
                printf 'ok %d - %s\n' "$tap_n" "$_d"
        else
                printf 'not ok %d - %s\n' "$tap_n" "$_d"
                tap_failed=$((tap_failed + 1))
        fi
}

# ok DESC CMD [ARG]...: passes when CMD succeeds.
ok() {
        _desc=$1
        shift
        if "$@"; then
                tap_result 0 "$_desc"
        else
                tap_result 1 "$_desc"
                diag "  failed: $*"
        fi
}

# is GOT WANT DESC: string equality.
is() {
        if [ "$1" = "$2" ]; then
                tap_result 0 "$3"
        else
                tap_result 1 "$3"
                diag "       got: '$1'" "  expected: '$2'"
        fi
}

# isnt GOT UNWANTED DESC
isnt() {
        if [ "$1" != "$2" ]; then
                tap_result 0 "$3"
        else
                tap_result 1 "$3"
                diag "       got: '$1'" "  expected anything else"
        fi
}

# like GOT ERE DESC: GOT (any line of it) matches the extended regex.
like() {
        if printf '%s\n' "$1" | grep -Eq -- "$2"; then
                tap_result 0 "$3"
        else
                tap_result 1 "$3"
                diag "       got: '$(printf '%s' "$1" | head -c 2000)'" "  expected to match: /$2/"
        fi
}

# unlike GOT ERE DESC: no line of GOT matches.
unlike() {
        if printf '%s\n' "$1" | grep -Eq -- "$2"; then
                tap_result 1 "$3"
                diag "       got: '$(printf '%s' "$1" | head -c 2000)'" "  expected not to match: /$2/"
        else
                tap_result 0 "$3"
        fi
}

# --- time bounds ----------------------------------------------------------------

# A few tests bound how long something the user waits for may take (a cancel
# taking effect, a lost node noticed). Those bounds were set on a host where a
# fork+exec of /bin/true from the shell takes about 1 ms; on a host five times
# slower, or with both CPUs busy, the same promise takes longer. time_bound MS
# prints MS times AUTOOS_TIME_SCALE, which is measured once per test script
# (20 fork+execs, rounded up to whole milliseconds each, at least 1, at most
# 10) unless set. Conditions are never waited for with it: wait_for returns as
# soon as they hold.
if [ -z "${AUTOOS_TIME_SCALE:-}" ]; then
        _ts0=$(date +%s%N)
        _tsi=0
        while [ $_tsi -lt 20 ]; do
                /bin/true
                _tsi=$((_tsi + 1))
        done
        AUTOOS_TIME_SCALE=$((($(date +%s%N) - _ts0 + 19999999) / 20000000))
        [ "$AUTOOS_TIME_SCALE" -lt 1 ] && AUTOOS_TIME_SCALE=1
        [ "$AUTOOS_TIME_SCALE" -gt 10 ] && AUTOOS_TIME_SCALE=10
fi
export AUTOOS_TIME_SCALE

# time_bound MS: MS scaled to this host's speed (above).
time_bound() {
        echo $(($1 * AUTOOS_TIME_SCALE))
}

# cmp_ok A OP B DESC: numeric comparison, OP one of < <= > >= == !=; decimals allowed.
cmp_ok() {
        if awk -v a="$1" -v b="$3" -v op="$2" 'BEGIN {
                if (a !~ /^-?[0-9]+(\.[0-9]+)?$/ || b !~ /^-?[0-9]+(\.[0-9]+)?$/) exit 1
                a += 0; b += 0
                if (op == "<") exit !(a < b); if (op == "<=") exit !(a <= b)
                if (op == ">") exit !(a > b); if (op == ">=") exit !(a >= b)
                if (op == "==") exit !(a == b); if (op == "!=") exit !(a != b)
                exit 1 }'; then
                tap_result 0 "$4"
        else
                tap_result 1 "$4"
                diag "  expected: '$1' $2 '$3'"
        fi
}

# skip N WHY: N skipped tests.
skip() {
        _i=0
        while [ "$_i" -lt "$1" ]; do
                tap_n=$((tap_n + 1))
                printf 'ok %d # SKIP %s\n' "$tap_n" "$2"
                _i=$((_i + 1))
        done
}

# skip_all WHY: the whole file, as a plan of zero.
skip_all() {
        printf '1..0 # SKIP %s\n' "$1"
        exit 0
}

# bail_out WHY: something the remaining tests depend on is broken.
bail_out() {
        printf 'Bail out! %s\n' "$1"
        exit 1
}

# done_testing: the plan, at the end; exits 1 when a test failed.
done_testing() {
        printf '1..%d\n' "$tap_n"
        [ "$tap_failed" -eq 0 ] && exit 0
        exit 1
}

# --- preconditions ------------------------------------------------------------

need_root() {
        [ "$(id -u)" -eq 0 ] || skip_all "needs root (real sandboxes: namespaces, cgroups, uid pool)"
}

need_cmd() {
        for _c in "$@"; do
                command -v "$_c" >/dev/null 2>&1 || skip_all "needs $_c"
        done
}

# need_built: autoosctl (and the probe, when asked) must exist.
need_built() {
        [ -x "$AUTOOSCTL" ] || bail_out "$AUTOOSCTL not built"
        if [ "${1:-}" = probe ]; then
                [ -x "$PROBE" ] || bail_out "$PROBE not built (make check builds it)"
        fi
}

# free_port: a loopback TCP port that no socket uses right now (racy: callers
# check that what they started really owns it).
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

# --- scratch space and cleanup ------------------------------------------------

TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/autoos-test.XXXXXX") || bail_out "mktemp failed"
_at_exit=""

# at_exit CMD: runs CMD (a string, eval'd) when the script ends, last added first.
at_exit() {
        _at_exit="$1
$_at_exit"
}

_run_at_exit() {
        _rc=$?
        set +e
        printf '%s\n' "$_at_exit" | while IFS= read -r _line; do
                [ -n "$_line" ] && eval "$_line" >/dev/null 2>&1
        done
        rm -rf "$TEST_TMP"
        exit "$_rc"
}
trap _run_at_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- autoosctl ----------------------------------------------------------------

autoosctl() {
        "$AUTOOSCTL" "$@"
}

_run_seq=0

# run_json_start TAG [OPTION]... -- PROGRAM [ARG]...: starts `autoosctl run
# --json ...` in the background (stdin from /dev/null); run_json_finish TAG
# waits for it. Several may run at once.
run_json_start() {
        _tag=$1
        shift
        "$AUTOOSCTL" run --json "$@" <"/dev/null" >"$TEST_TMP/run.$_tag.json" 2>"$TEST_TMP/run.$_tag.err" &
        echo $! >"$TEST_TMP/run.$_tag.pid"
}

# run_json_finish TAG: waits for run TAG and sets RUN_JSON (stdout: the result
# line), RUN_ERR (stderr), RUN_RC (exit status), RUN_PID (autoosctl's pid,
# which names its cgroups) and RUN_FILE (where RUN_JSON is kept).
run_json_finish() {
        RUN_PID=$(cat "$TEST_TMP/run.$1.pid")
        wait "$RUN_PID"
        RUN_RC=$?
        RUN_FILE=$TEST_TMP/run.$1.json
        RUN_JSON=$(cat "$RUN_FILE")
        RUN_ERR=$(cat "$TEST_TMP/run.$1.err")
        if ! printf '%s' "$RUN_JSON" | jq -e 'type == "object"' >/dev/null 2>&1; then
                diag "run $1: no JSON result (exit $RUN_RC)" "stdout: $RUN_JSON" "stderr: $RUN_ERR"
        fi
}

# run_json [OPTION]... -- PROGRAM [ARG]...: one run, waited for; sets RUN_* as
# run_json_finish does.
run_json() {
        _run_seq=$((_run_seq + 1))
        run_json_start "s$_run_seq" "$@"
        run_json_finish "s$_run_seq"
}

# jf FILTER [JSON]: jq -r FILTER over JSON (default: the last run's result).
# A missing field prints "null"; an unparsable document prints nothing.
jf() {
        if [ $# -ge 2 ]; then
                printf '%s' "$2" | jq -r "$1" 2>/dev/null
        else
                printf '%s' "$RUN_JSON" | jq -r "$1" 2>/dev/null
        fi
}

# out KEY [JSON]: the value of the first "KEY=VALUE" line the program printed
# on stdout, so one sandbox can answer many questions.
out() {
        jf .stdout "${2:-$RUN_JSON}" | awk -v k="$1=" 'index($0, k) == 1 { print substr($0, length(k) + 1); exit }'
}

# has_denied NAME [JSON]: NAME is in .denied_syscalls.
has_denied() {
        printf '%s' "${2:-$RUN_JSON}" | jq -e --arg n "$1" '.denied_syscalls | index([$n]) != null' >/dev/null 2>&1
}

# run_cgroups PID: the cgroup directories named after autoosctl process PID
# (autoos-PID-N) that exist below each cgroup this shell is in, one a line.
# Empty once every run of that process has cleaned up after itself.
run_cgroups() {
        _pid=$1
        while IFS=: read -r _hid _ctrls _path; do
                [ "$_path" = / ] && _path=""
                if [ -z "$_ctrls" ]; then
                        _dirs="/sys/fs/cgroup$_path /sys/fs/cgroup/unified$_path"
                else
                        _dirs="/sys/fs/cgroup/$_ctrls$_path /sys/fs/cgroup/${_ctrls#name=}$_path"
                        for _c in $(printf '%s' "$_ctrls" | tr ',' ' '); do
                                _dirs="$_dirs /sys/fs/cgroup/$_c$_path"
                        done
                fi
                for _dir in $_dirs; do
                        for _cg in "$_dir"/autoos-"$_pid"-*; do
                                [ -d "$_cg" ] && printf '%s\n' "$_cg"
                        done
                done
        done </proc/self/cgroup | sort -u
}
