#!/bin/sh
# SPDX-License-Identifier: MIT
# The same result twice in one batch (a node sends a result again after a
# restart): applied once, stored once, not marked late.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na

id=$(wf_submit "$(workflow dup "$(sh_step a 'sleep 1; echo hi')" "$(sh_step b 'cat /work/inputs/a.stdout' '{"needs":["a"]}')")") ||
        bail_out "submit failed"
step_wait "$id" a dispatched 10 || diag "a was not dispatched"
coord_kill c1 KILL
# Its result waits in Redis; a copy goes next to it, as a node re-sends it.
ok "a's result reaches autoos:results" wait_for 15 eval '[ -n "$(rcli XRANGE autoos:results - + | grep "\"step\":\"a\"")" ]'
r=$(rcli XRANGE autoos:results - + | grep '"step":"a"' | tail -n 1)
result_xadd "$r" >/dev/null
coord_start c1
ok "the workflow succeeds" wf_wait "$id" succeeded 20
is "$(psql_q "SELECT step_id || ':' || attempt || ':' || late FROM runs WHERE workflow_id = '$id' AND step_id = 'a'")" \
        "a:1:false" "one run row for a, attempt 1, not late"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id = '$id' AND action = 'result' AND detail->>'step' = 'a'")" 1 \
        "one 'result' audit row for a"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id = '$id' AND action = 'late_result'")" 0 \
        "no late_result row"
is "$(step_field "$id" b stdout)" "hi" "b got a's output"
fleet_finish
