#!/bin/sh
# SPDX-License-Identifier: MIT
# Cancel of a running workflow kills its running step on the node (sandbox
# gone, node idle again) and ends the workflow cancelled within seconds;
# pause stops new dispatches (a running step finishes), resume goes on;
# actions that do not apply answer 409.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na

uniq=$$$(date +%N | cut -c1-6)
workflow long \
        "$(sh_step sleeper "/bin/sleep 30.$uniq")" \
        "$(sh_step never 'echo never' '{"needs":["sleeper"]}')" >"$TEST_TMP/long.json"
id=$(wf_submit "$TEST_TMP/long.json") || bail_out "not accepted"
ok "the long step runs on the node" wait_for 10 eval '[ "$(node_running na)" = 1 ] && [ -n "$(ps_marker "30.$uniq")" ]'
ok "the step is reported running (or dispatched)" wait_for 5 eval \
        '[ "$(step_field "$id" sleeper state)" = running ] || [ "$(step_field "$id" sleeper state)" = dispatched ]'
t0=$(now_ms)
api POST "/v1/workflows/$id/cancel"
is "$HTTP_STATUS" 200 "cancel: 200"
ok "the workflow is cancelled within 3 s" wf_wait "$id" cancelled 3
diag "cancelled after $(($(now_ms) - t0)) ms"
like "$(step_field "$id" sleeper state)" '^cancelled$' "the running step is cancelled"
like "$(step_field "$id" never state)" '^(cancelled|pending|skipped)$' "the pending step never ran ($(step_field "$id" never state))"
ok "the sandbox is gone from the node within 5 s" wait_for 5 eval '[ -z "$(ps_marker "30.$uniq")" ]'
ok "the node runs nothing any more" wait_for 5 eval '[ "$(node_running na)" = 0 ]'
r=$(rcli XRANGE autoos:results - + | grep '^{' | jq -c --arg w "$id" 'select(.workflow == $w and .step == "sleeper")' | tail -n 1)
like "$(jf .outcome "$r")" '^(signaled|sandbox_error)$' "the node reported the run killed ($(jf .outcome "$r") $(jf .error "$r"))"
early=$(time_bound 10000)
[ "$early" -gt 25000 ] && early=25000
cmp_ok "$(jf .wall_ms "$r")" '<' "$early" "long before its 30 s (bound $early ms)"
sleep 0.5
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id' AND step_id = 'never'")" 0 "the dependent never ran"
is "$(audit_count "$id" cancelled)" 1 "one 'cancelled' audit row"
is "$(audit_verified "$id")" true "the chain verifies"
api POST "/v1/workflows/$id/cancel"
is "$HTTP_STATUS" 409 "cancelling again: 409"
api POST "/v1/workflows/$id/resume"
is "$HTTP_STATUS" 409 "resuming a cancelled workflow: 409"

# autoosctl cancel.
id1=$(wf_submit "$TEST_TMP/long.json") || bail_out "not accepted"
ok "running" wait_for 10 eval '[ "$(node_running na)" = 1 ]'
ctl cancel "$id1" >"$TEST_TMP/ctl.out" 2>&1
is "$?" 0 "autoosctl cancel ID exits 0"
ok "cancelled" wf_wait "$id1" cancelled 3
ok "the node runs nothing any more" wait_for 5 eval '[ "$(node_running na)" = 0 ]'

# Pause: the running step finishes, the next is not dispatched; resume: it is. The first step
# runs long enough (4 s times how slow this host is now, at most 20 s: its wall limit is 30 s) for
# the pause to come while it runs.
first_s=$(awk -v k="${AUTOOS_TIME_SCALE:-1}" 'BEGIN { s = 4 * k; print (s > 20 ? 20 : s) }')
workflow pausable \
        "$(sh_step first "sleep $first_s; echo one")" \
        "$(sh_step second 'cat /work/inputs/first.stdout' '{"needs":["first"]}')" >"$TEST_TMP/pause.json"
id2=$(wf_submit "$TEST_TMP/pause.json") || bail_out "not accepted"
ok "first runs" wait_for 10 eval '[ "$(node_running na)" = 1 ]'
api POST "/v1/workflows/$id2/pause"
is "$HTTP_STATUS" 200 "pause: 200"
is "$(jf .state "$RESP")" paused "the answer says paused"
is "$(wf_state "$id2")" paused "the workflow is paused"
api POST "/v1/workflows/$id2/pause"
is "$HTTP_STATUS" 409 "pausing again: 409"
ok "the running step finishes while paused" step_wait "$id2" first succeeded 40
sleep 1.5
like "$(step_field "$id2" second state)" '^(pending|ready)$' "nothing is dispatched while paused ($(step_field "$id2" second state))"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id2' AND step_id = 'second'")" 0 "no run of it"
is "$(wf_state "$id2")" paused "still paused"
ctl resume "$id2" >"$TEST_TMP/ctl.out" 2>&1
is "$?" 0 "autoosctl resume ID exits 0"
ok "after resume the workflow succeeds" wf_wait "$id2" succeeded 10
is "$(step_field "$id2" second stdout)" one "the second step ran"
a=$(audit_json "$id2")
is "$(jf '[.rows[] | .action | select(. == "paused" or . == "resumed")] | join(" ")' "$a")" "paused resumed" \
        "audit: paused, resumed"
api POST "/v1/workflows/$id2/pause"
is "$HTTP_STATUS" 409 "pausing a succeeded workflow: 409"
like "$(jf .error.message "$RESP")" succeeded "the message says it is succeeded"

fleet_finish
