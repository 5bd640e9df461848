#!/bin/sh
# SPDX-License-Identifier: MIT
# PostgreSQL stopped mid-workflow while steps finish, then started again: the
# coordinator says so (/healthz 503, submissions 503 with nothing written),
# then the workflow completes with no result lost (a run row and one
# 'result' audit row for every step) and the audit chain verifies.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb
# The parallel steps must still run when PostgreSQL stops: P s each, longer on a
# slow host (AUTOOS_TIME_SCALE, tests/lib.sh).
P=$((1 + AUTOOS_TIME_SCALE))

workflow pg-outage \
        "$(sh_step s1 'sleep 0.3; echo one')" \
        "$(sh_step p1 "sleep $P; echo p1" '{"needs":["s1"]}')" \
        "$(sh_step p2 "sleep $P; echo p2" '{"needs":["s1"]}')" \
        "$(sh_step p3 "sleep $P; echo p3" '{"needs":["s1"]}')" \
        "$(sh_step p4 "sleep $P; echo p4" '{"needs":["s1"]}')" \
        "$(sh_step join 'cat /work/inputs/p1.stdout /work/inputs/p2.stdout /work/inputs/p3.stdout /work/inputs/p4.stdout | tr "\n" " "' \
                '{"needs":["p1","p2","p3","p4"]}')" >"$TEST_TMP/wf.json"
id=$(wf_submit "$TEST_TMP/wf.json") || bail_out "not accepted"
ok "the four parallel steps are running" wait_for 10 eval \
        '[ "$(($(node_running na) + $(node_running nb)))" = 4 ]'
before=$(psql_q "SELECT count(*) FROM audit_log")
pg_stop fast || bail_out "pg_ctl stop failed"
t_down=$(now_ms)
ok "the four steps finish while PostgreSQL is down" wait_for 5 eval \
        '[ "$(rcli XRANGE autoos:results - + | grep "^{" | jq -c "select(.step | test(\"^p\"))" | wc -l)" -ge 4 ]'
ok "/healthz answers 503 while PostgreSQL is down" wait_for 3 eval \
        '[ "$(curl -s -o /dev/null -w "%{http_code}" "$COORD_URL/healthz")" = 503 ]'
is "$(curl -s "$COORD_URL/healthz" | jq -r '[.db, .redis] | map(tostring) | join(",")')" false,true \
        "naming the database as the failing part"
api POST /v1/workflows "$(workflow refused "$(sh_step x 'echo x')")"
is "$HTTP_STATUS" 503 "a submission is refused with 503 meanwhile"
is "$(jf .error.code "$RESP")" unavailable "code unavailable"
sleep "$(awk -v t="$(($(now_ms) - t_down))" 'BEGIN { r = 3 - t / 1000; print (r > 0 ? r : 0) }')"
pg_start || bail_out "PostgreSQL did not start again"
diag "PostgreSQL was down $(($(now_ms) - t_down)) ms"
ok "the workflow completes once PostgreSQL is back" wf_wait "$id" succeeded 30
is "$(step_field "$id" join stdout)" "p1 p2 p3 p4 " "every parallel result reached the join"
is "$(psql_q "SELECT string_agg(step_id || ':' || attempt || ':' || outcome, ' ' ORDER BY step_id) FROM runs
              WHERE workflow_id = '$id'")" \
        "join:1:exited p1:1:exited p2:1:exited p3:1:exited p4:1:exited s1:1:exited" "a run row for every step, first attempt"
a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "result") | (.detail.step // .detail.step_id)] | sort | join(" ")' "$a")" \
        "join p1 p2 p3 p4 s1" "one 'result' audit row for every step"
is "$(psql_q "SELECT count(*) FROM workflows WHERE name = 'refused'")" 0 "nothing was stored for the refused submission"
is "$(audit_verified "$id")" true "the chain verifies"
cmp_ok "$(psql_q "SELECT count(*) FROM audit_log")" '>' "$before" "the audit trail grew after the outage"
ok "every result acknowledged" wait_for 5 eval '[ "$(rcli XPENDING autoos:results coordinators | head -n 1)" = 0 ]'
ok "/healthz is 200 again" wait_for 5 eval '[ "$(curl -s -o /dev/null -w "%{http_code}" "$COORD_URL/healthz")" = 200 ]'
id2=$(wf_submit "$(workflow after-outage "$(sh_step x 'echo fine')")") || bail_out "not accepted after the outage"
ok "a new workflow runs after the outage" wf_wait "$id2" succeeded 20

fleet_finish
