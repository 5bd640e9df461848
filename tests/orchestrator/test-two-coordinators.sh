#!/bin/sh
# SPDX-License-Identifier: MIT
# Two coordinators on one PostgreSQL and Redis, 20 workflows submitted to
# them alternately: all succeed; every step was dispatched once and its result
# applied once (one run row per step and attempt, one 'dispatched' and one
# 'result' audit row per step); either coordinator answers for every
# workflow; with one of them stopped the other carries on.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb
C1=$COORD_URL
coord_start c2 || bail_out "the second coordinator did not start"
C2=$COORD_URL

ids=""
i=0
while [ $i -lt 20 ]; do
        if [ $((i % 2)) = 0 ]; then API_URL=$C1; else API_URL=$C2; fi
        doc=$(workflow "pair-$i" \
                "$(sh_step a "echo a$i")" \
                "$(sh_step b 'echo "b<$(cat /work/inputs/a.stdout)>"' '{"needs":["a"]}')" \
                "$(sh_step c 'echo "c<$(cat /work/inputs/a.stdout)>"' '{"needs":["a"]}')")
        id=$(wf_submit "$doc") || bail_out "workflow $i was not accepted by $API_URL"
        ids="$ids $id"
        i=$((i + 1))
done
API_URL=
list=$(printf "'%s'," $ids | sed 's/,$//')

all_done() {
        [ "$(psql_q "SELECT count(*) FROM workflows WHERE id IN ($list) AND state IN ('succeeded', 'failed', 'cancelled', 'awaiting_human')")" = 20 ]
}
ok "all 20 workflows end" wait_for 90 all_done
is "$(psql_q "SELECT state || ':' || count(*) FROM workflows WHERE id IN ($list) GROUP BY state")" succeeded:20 \
        "all 20 succeeded"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id IN ($list)")" 60 "60 run rows (3 steps x 20)"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id IN ($list) AND attempt <> 1")" 0 "all on the first attempt"
is "$(psql_q "SELECT count(*) FROM (SELECT workflow_id FROM audit_log WHERE workflow_id IN ($list) AND action = 'result'
              GROUP BY workflow_id HAVING count(*) <> 3) x")" 0 "every workflow has exactly 3 'result' audit rows"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id IN ($list) AND action = 'result'")" 60 \
        "60 'result' rows in all: no result applied twice"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id IN ($list) AND action = 'dispatched'")" 60 \
        "60 'dispatched' rows: no step dispatched twice"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id IN ($list) AND action = 'workflow_finished'")" 20 \
        "one workflow_finished row per workflow"
is "$(rcli XRANGE autoos:results - + | grep '^{' | jq -r .id | sort | uniq -d | wc -l)" 0 \
        "the nodes ran each attempt once (no run id twice on autoos:results)"
is "$(psql_q "SELECT count(*) FROM workflows WHERE id IN ($list) AND autoos_audit_verify(id) IS NOT NULL")" 0 \
        "every chain verifies"
diag "results applied by actor: $(psql_q "SELECT actor || '=' || count(*) FROM audit_log WHERE workflow_id IN ($list)
      AND action = 'result' GROUP BY actor" | tr '\n' ' ')"
for id in $ids; do
        last=$id
done
# The outputs are each workflow's own.
API_URL=$C2
is "$(step_field "$last" c stdout)" "c<a19>" "the second coordinator answers for its workflow"
first=$(echo $ids | cut -d' ' -f1)
is "$(step_field "$first" b stdout)" "b<a0>" "and for the first coordinator's"
API_URL=

# One coordinator stopped: the other carries on.
coord_kill c1 TERM
API_URL=$C2
id=$(wf_submit "$(workflow alone "$(sh_step x 'echo alone')" "$(sh_step y 'cat /work/inputs/x.stdout' '{"needs":["x"]}')")") ||
        bail_out "not accepted by c2"
ok "with c1 stopped, c2 runs a workflow to the end" wf_wait "$id" succeeded 20
is "$(step_field "$id" y stdout)" alone "with its data"

fleet_finish
