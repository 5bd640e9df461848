#!/bin/sh
# SPDX-License-Identifier: MIT
# A node killed (SIGKILL) mid-step: its heartbeat expires, the coordinator
# declares it lost within ~3 s and places the step again as a new attempt on
# the other node, where it completes within 5 s of the loss being detected.
# The loss is in the fleet's audit chain (node_lost) and the workflow's
# (step_moved); a late result of the old attempt is recorded
# (late_result) and otherwise ignored.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb

uniq=$$$(date +%N | cut -c1-6)
workflow loss \
        "$(sh_step work "sleep 3.$uniq; echo done-\$AUTOOS_ATTEMPT")" \
        "$(sh_step after 'cat /work/inputs/work.stdout' '{"needs":["work"]}')" >"$TEST_TMP/loss.json"
id=$(wf_submit "$TEST_TMP/loss.json") || bail_out "not accepted"
ok "the step is placed on a node" wait_for 10 eval '[ -n "$(ps_marker "3.$uniq")" ] &&
        [ "$(step_field "$id" work node)" != null ]'
first=$(step_field "$id" work node)
case $first in
na) other=nb ;;
nb) other=na ;;
*) bail_out "the step is on node '$first'" ;;
esac
diag "the step runs on $first; killing it"
sleep 0.3
t_kill=$(now_ms)
node_kill "$first" KILL
ok "the node's runs die with it" wait_for 3 eval '[ -z "$(ps_marker "3.$uniq")" ]'

ok "the step completes on the other node" wf_wait "$id" succeeded 15
t_done=$(now_ms)
is "$(step_field "$id" work node)" "$other" "the step ended on $other"
is "$(step_field "$id" work attempt)" 2 "as attempt 2"
is "$(step_field "$id" work stdout)" done-2 "with attempt 2's output"
is "$(step_field "$id" after stdout)" done-2 "which its dependent read"

# Detection time: the fleet chain's node_lost row, against the kill.
lost_us=$(psql_q "SELECT min(ts_epoch_us) FROM audit_log WHERE workflow_id IS NULL AND action = 'node_lost'
                  AND detail::text LIKE '%\"$first\"%'")
ok "node_lost for $first is in the fleet audit chain" test -n "$lost_us"
lost_ms=$((${lost_us:-0} / 1000))
diag "node lost detected $((lost_ms - t_kill)) ms after the kill; workflow done $((t_done - lost_ms)) ms after that"
# node_timeout is 2 s; the slack past it (a monitor tick, a beat in flight) is scaled to this host.
detect=$((2000 + $(time_bound 1500)))
cmp_ok "$((lost_ms - t_kill))" '<=' "$detect" "the loss is detected within $detect ms of the kill (heartbeat 1 s, timeout 2 s)"
cmp_ok "$((lost_ms - t_kill))" '>=' 0 "and not before it"
# The step's second run: from the runs row of attempt 2 (finished_at), against the detection.
fin_ms=$(psql_q "SELECT (extract(epoch FROM finished_at) * 1000)::bigint FROM runs
                 WHERE workflow_id = '$id' AND step_id = 'work' AND attempt = 2")
cmp_ok "$((${fin_ms:-0} - lost_ms))" '<=' "$(time_bound 5000)" "the step completed on $other within $(time_bound 5000) ms of the loss being detected ($((${fin_ms:-0} - lost_ms)) ms)"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id IS NULL AND action = 'node_lost'
              AND detail::text LIKE '%\"$first\"%'")" 1 "one node_lost row for it"

a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "step_replaced" or .action == "step_moved")] | length' "$a")" 1 \
        "the workflow's chain has one step_moved (step_replaced) row"
is "$(jf '[.rows[] | select(.action == "retry_scheduled")] | length' "$a")" 0 \
        "the move did not use the retry budget (no retry_scheduled)"
api GET /v1/nodes
is "$(jf '.nodes[] | select(.id == "'"$first"'") | .state' "$RESP")" lost "GET /v1/nodes: $first is lost"
is "$(jf '.nodes[] | select(.id == "'"$other"'") | .state' "$RESP")" healthy "and $other healthy"

# A late result of attempt 1 (as a node would send it after a partition): recorded, ignored.
late=$(jq -cn --arg w "$id" --arg n "$first" '{id: ($w + ".work.1"), workflow: $w, step: "work", attempt: 1,
        node: $n, outcome: "exited", exit_code: 0, signal: null, wall_ms: 3000, cpu_ms: 1, memory_peak_bytes: 1,
        oom_kills: 0, stdout: "LATE", stderr: "", stdout_truncated: false, stderr_truncated: false,
        denied_syscalls: [], started_at: "2024-01-01T00:00:00Z", finished_at: "2024-01-01T00:00:03Z"}')
result_xadd "$late" >/dev/null
ok "the late result is recorded in the audit trail" wait_for 5 eval '[ "$(audit_count "$id" late_result)" -ge 1 ]'
is "$(step_field "$id" work stdout)/$(step_field "$id" work attempt)/$(step_field "$id" work state)" done-2/2/succeeded \
        "and otherwise ignored: the step keeps attempt 2's result"
is "$(wf_state "$id")" succeeded "the workflow stays succeeded"

# The lost node comes back: healthy again, and takes work.
node_start "$first" "max_runs = 4" || bail_out "$first did not restart"
ok "$first is healthy again" wait_for 5 eval \
        'api GET /v1/nodes; [ "$(jf ".nodes[] | select(.id == \"$first\") | .state" "$RESP")" = healthy ]'
is "$(audit_verified "$id")" true "the chain verifies"

fleet_finish
