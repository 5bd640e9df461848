#!/bin/sh
# SPDX-License-Identifier: MIT
# The coordinator SIGKILLed mid-workflow (a step running, its result arriving
# while no coordinator is up), then restarted: the workflow completes, each
# step ran once and its result was applied once, and the audit chain verifies.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb

workflow chain \
        "$(sh_step s1 'sleep 0.5; echo one')" \
        "$(sh_step s2 'sleep 1.5; echo "$(cat /work/inputs/s1.stdout) two"' '{"needs":["s1"]}')" \
        "$(sh_step s3 'sleep 0.5; echo "$(cat /work/inputs/s2.stdout) three"' '{"needs":["s2"]}')" \
        "$(sh_step s4 'echo "$(cat /work/inputs/s3.stdout) four"' '{"needs":["s3"]}')" >"$TEST_TMP/chain.json"
id=$(wf_submit "$TEST_TMP/chain.json") || bail_out "not accepted"
ok "s2 is running" wait_for 10 eval '[ "$(step_field "$id" s1 state)" = succeeded ] &&
        [ "$(($(node_running na) + $(node_running nb)))" = 1 ]'
coord_kill c1 KILL
ok "the coordinator is gone (SIGKILL)" _fl_dead "$(coord_pid c1)"
# s2 ends while no coordinator is up: its result waits in autoos:results.
ok "s2's result arrives while the coordinator is down" wait_for 5 eval \
        '[ -n "$(rcli XRANGE autoos:results - + | grep "^{" | jq -c "select(.step == \"s2\")")" ]'
sleep 0.5
coord_start c1 || bail_out "the coordinator did not restart"
ok "after the restart the workflow completes" wf_wait "$id" succeeded 20
is "$(step_field "$id" s4 stdout)" "one two three four" "data passed along the whole chain"
w=$(wf_json "$id")
is "$(jf '[.steps[] | "\(.id)=\(.state)/\(.attempt)"] | join(" ")' "$w")" \
        "s1=succeeded/1 s2=succeeded/1 s3=succeeded/1 s4=succeeded/1" "each step succeeded on its first attempt"
is "$(psql_q "SELECT string_agg(step_id || ':' || attempt, ' ' ORDER BY step_id) FROM runs WHERE workflow_id = '$id'")" \
        "s1:1 s2:1 s3:1 s4:1" "one run row per step"
a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "result") | (.detail.step // .detail.step_id)] | sort | join(" ")' "$a")" \
        "s1 s2 s3 s4" "one 'result' audit row per step (none applied twice)"
is "$(jf '[.rows[] | select(.action == "workflow_finished")] | length' "$a")" 1 "one workflow_finished row"
is "$(audit_verified "$id")" true "the chain verifies"
ok "the result was acknowledged (nothing pending in the group)" wait_for 5 eval \
        '[ "$(rcli XPENDING autoos:results coordinators | head -n 1)" = 0 ]'

# A workflow submitted after the restart runs too.
id2=$(wf_submit "$(workflow after-restart "$(sh_step x 'echo fine')")") || bail_out "not accepted"
ok "a new workflow runs after the restart" wf_wait "$id2" succeeded 20

fleet_finish
