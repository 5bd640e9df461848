#!/bin/sh
# SPDX-License-Identifier: MIT
# Bad entries on the jobs stream (malformed JSON, unknown field, over-ceiling
# limits, wrong types, no id, wrong entry field) each get a 'rejected' result
# whose error names the field; each is acknowledged; the daemon keeps running
# and still runs the good job that follows.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

redis_start
autoosd_start --max-runs 4 || bail_out "autoosd did not start"

# reject ID SPEC FIELD_ERE DESC: SPEC gets a 'rejected' result for ID whose error matches FIELD_ERE.
reject() {
        job_add "$2" >/dev/null
        if wait_result "$1" 5; then
                is "$(jf .outcome "$RESULT")" rejected "$4: rejected"
                like "$(jf .error "$RESULT")" "$3" "$4: the error names the field ($(jf .error "$RESULT"))"
        else
                tap_result 1 "$4: rejected"
                tap_result 1 "$4: the error names the field"
        fi
}

reject unk-1 '{"id":"unk-1","argv":["/bin/true"],"bogus_field":1}' 'bogus_field' "unknown top-level field"
reject unk-2 '{"id":"unk-2","argv":["/bin/true"],"limits":{"memroy_bytes":1}}' 'memroy_bytes' "unknown limits field"
reject mem-1 '{"id":"mem-1","argv":["/bin/true"],"limits":{"memory_bytes":107374182400}}' 'limits\.memory_bytes' \
        "memory 100G, over the ceiling"
reject pids-1 '{"id":"pids-1","argv":["/bin/true"],"limits":{"pids":100000000}}' 'limits\.pids' "pids over the ceiling"
reject type-1 '{"id":"type-1","argv":"/bin/true"}' 'argv' "argv of the wrong type"
reject noargv-1 '{"id":"noargv-1"}' 'argv' "no argv"
reject rel-1 '{"id":"rel-1","argv":["bin/true"]}' 'argv' "relative program path (a '/' in a name that is not absolute)"
reject trust-1 '{"id":"trust-1","argv":["/bin/true"],"trust":"root"}' 'trust' "unknown trust level"
reject net-1 '{"id":"net-1","argv":["/bin/true"],"network":"everything"}' 'network' "unknown network mode"
reject egress-1 '{"id":"egress-1","argv":["/bin/true"],"trust":"elevated","network":"egress"}' \
        '^network: egress is not configured on this node$' "network egress (no node has it yet), rejected not sandbox_error"
reject wfs-1 '{"id":"wfs-1","workflow":"w","step":"s","attempt":1,"argv":["/bin/true"],"limits":{"wall_ms":"x"}}' \
        'limits\.wall_ms' "wall_ms of the wrong type, in a workflow"
is "$(jf '[.workflow, .step, (.attempt | tostring)] | join(" ")' "$RESULT")" "w s 1" \
        "a rejected workflow job still echoes workflow, step and attempt"

# Malformed JSON: no id to be had; answered under its stream entry id.
e=$(job_add '{"id":"bad-json-1","argv":["/bin/true"')
if wait_for 5 eval '[ -n "$(results | jq -c --arg e "$e" "select(.id == \$e or .id == \"bad-json-1\")" | tail -n 1)" ]'; then
        r=$(results | jq -c --arg e "$e" 'select(.id == $e or .id == "bad-json-1")' | tail -n 1)
        is "$(jf .outcome "$r")" rejected "malformed JSON: rejected"
        like "$(jf .error "$r")" '[Jj][Ss][Oo][Nn]|parse|syntax|spec' "malformed JSON: the error says so ($(jf .error "$r"))"
else
        tap_result 1 "malformed JSON: a result (under the entry id $e)"
fi
e=$(rcli XADD "autoos:jobs:$NODE" '*' spec 'not json at all')
wait_for 5 eval '[ -n "$(results_for "$e")" ]'
r=$(results_for "$e" | tail -n 1)
is "$(jf .outcome "$r")" rejected "not JSON at all: rejected, under the entry id"
e=$(job_add '[1,2,3]')
wait_for 5 eval '[ -n "$(results_for "$e")" ]'
is "$(jf .outcome "$(results_for "$e" | tail -n 1)")" rejected "a JSON array instead of an object: rejected"
e=$(job_add '{"argv":["/bin/true"]}')
wait_for 5 eval '[ -n "$(results_for "$e")" ]'
r=$(results_for "$e" | tail -n 1)
is "$(jf .outcome "$r")" rejected "no id: rejected"
like "$(jf .error "$r")" '\bid\b' "no id: the error names id ($(jf .error "$r"))"
e=$(rcli XADD "autoos:jobs:$NODE" '*' speck '{"id":"f-1","argv":["/bin/true"]}')
wait_for 5 eval '[ -n "$(results | jq -c --arg e "$e" "select(.id == \$e or .id == \"f-1\")")" ]'
r=$(results | jq -c --arg e "$e" 'select(.id == $e or .id == "f-1")' | tail -n 1)
is "$(jf .outcome "$r")" rejected "an entry with field 'speck': rejected"
like "$(jf .error "$r")" 'speck' "the error names the entry's field"

ok "the daemon is still running" pid_alive "$D_PID"
job_add '{"id":"good-1","argv":["/bin/echo","still here"]}' >/dev/null
wait_result good-1 5
is "$(jf .outcome "$RESULT") $(jf .stdout "$RESULT")" "exited still here" "and still runs the good job that follows"
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "every entry, good or bad, is acknowledged"
is "$(metric autoosd_runs_total rejected)" 16 "metrics: autoosd_runs_total{outcome=rejected}"
is "$(metric autoosd_run_duration_seconds_count)" 1 "rejected specs are not timed as runs"

# The control socket refuses the same way, with the field named.
printf '%s' '{"id":"loc-1","argv":["/bin/true"],"limits":{"memory_bytes":107374182400}}' >"$TEST_TMP/spec.json"
r=$(autoosctl node run --json --socket "$D_SOCK" --spec "$TEST_TMP/spec.json" 2>&1)
is "$(jf .outcome "$r")" rejected "autoosctl node run: over-ceiling spec rejected"
like "$(jf .error "$r")" 'limits\.memory_bytes' "autoosctl node run: the error names the field"

autoosd_stop
is "$D_RC" 0 "exit 0 on SIGTERM"

finish
