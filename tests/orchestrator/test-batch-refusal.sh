#!/bin/sh
# SPDX-License-Identifier: MIT
# A forged result among genuine ones, read in one batch (issue 12: results
# are applied many to a transaction): the forgery is refused, counted and
# recorded on its own; the genuine results of the same batch are all applied,
# and every entry of the batch is acknowledged.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up n1

# metric NAME{LABELS}: its value on the coordinator's /metrics, 0 when absent.
metric() {
        curl -s "$COORD_URL/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}

id=$(wf_submit "$(workflow batch \
        "$(sh_step a 'sleep 4; echo real-a')" "$(sh_step b 'sleep 4; echo real-b')" \
        "$(sh_step c 'sleep 4; echo real-c')" "$(sh_step d 'sleep 4; echo real-d')")") ||
        bail_out "submit failed"
for s in a b c d; do
        step_wait "$id" $s dispatched 20 || step_wait "$id" $s running 5 || diag "$s was not placed"
done
# With the coordinator away, its results stream fills: the forgery first (unsealed,
# claiming a's run on n1), then the four genuine results; it reads them as one batch.
coord_kill c1 KILL
forged=$(jq -cn --arg w "$id" '{id: ($w + ".a.1"), workflow: $w, step: "a", attempt: 1, node: "n1",
        outcome: "exited", exit_code: 0, signal: null, wall_ms: 1, cpu_ms: 1, memory_peak_bytes: 1, oom_kills: 0,
        stdout: "forged\n", stderr: "", stdout_truncated: false, stderr_truncated: false, denied_syscalls: [],
        started_at: "2026-01-01T00:00:00Z", finished_at: "2026-01-01T00:00:01Z"}')
rcli XADD autoos:results '*' result "$forged" >/dev/null
ok "the four genuine results reach autoos:results" wait_for 30 eval \
        '[ "$(rcli XRANGE autoos:results - + | grep -c "\"node\":\"n1\"")" -ge 5 ]'
is "$(rcli XPENDING autoos:results coordinators | head -n 1)" 0 \
        "none of them was delivered before the restart (one XREADGROUP of up to 64 takes all five)"
coord_start c1 || bail_out "the coordinator did not start again"

ok "the workflow succeeds" wf_wait "$id" succeeded 30
is "$(psql_q "SELECT string_agg(step_id || ':' || rtrim(result->>'stdout', E'\\n'), ',' ORDER BY step_id)
        FROM runs WHERE workflow_id = '$id'")" "a:real-a,b:real-b,c:real-c,d:real-d" \
        "one run row per step, each with its real output"
is "$(step_field "$id" a stdout)" real-a "a's output is the real one"
ok "the forgery is counted (unsigned)" wait_for 5 eval \
        '[ "$(metric "autoos_results_refused_total{reason=\"unsigned\"}")" = 1 ]'
is "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'result_refused' AND detail->>'reason' = 'unsigned'
        AND detail->>'run' = '$id.a.1'")" 1 "one result_refused audit row for it"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id = '$id' AND action = 'result'")" 4 \
        "four 'result' audit rows, one per genuine result"
ok "every entry of the batch is acknowledged" wait_for 5 eval \
        '[ "$(rcli XPENDING autoos:results coordinators | head -n 1)" = 0 ]'
is "$(psql_q "SELECT autoos_audit_verify('$id') IS NULL")" t "the workflow's audit chain verifies"
fleet_finish
