#!/bin/sh
# SPDX-License-Identifier: MIT
# Recovery level 5: a step failing for good with no fallback puts the step and
# the workflow in awaiting_human, dependents waiting; then an operator
# approves (the workflow goes on and succeeds), retries (through the API and
# through autoosctl) or skips. Each decision is an audit row; actions that do
# not apply answer 409.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb

# --- approve ---
workflow esc-approve \
        "$(sh_step broken 'echo partial; exit 3')" \
        "$(sh_step after 'echo "after saw: $(cat /work/inputs/broken.stdout 2>/dev/null)"' '{"needs":["broken"]}')" \
        >"$TEST_TMP/approve.json"
id=$(wf_submit "$TEST_TMP/approve.json") || bail_out "not accepted"
ok "the failing step escalates: workflow awaiting_human" wf_wait "$id" awaiting_human 20
is "$(step_field "$id" broken state)" awaiting_human "the step is awaiting_human"
is "$(step_field "$id" broken exit_code)" 3 "its exit code is reported"
is "$(step_field "$id" after state)" pending "its dependent waits (pending)"
sleep 1
is "$(step_field "$id" after state)" pending "and still waits a second later"
a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "escalated")] | length' "$a")" 1 "one 'escalated' audit row"
like "$(jf '.rows[] | select(.action == "escalated") | .detail | tostring' "$a")" 'broken' \
        "naming the step"
api POST "/v1/workflows/$id/steps/after/approve"
is "$HTTP_STATUS" 409 "approving a step that is not awaiting_human: 409"
is "$(jf .error.code "$RESP")" conflict "code conflict"
api POST "/v1/workflows/$id/steps/nosuch/approve"
is "$HTTP_STATUS" 404 "approving an unknown step: 404"
api POST "/v1/workflows/$id/steps/broken/approve"
is "$HTTP_STATUS" 200 "approve: 200"
is "$(jf '[.id, .step] | join(" ")' "$RESP")" "$id broken" "answer names workflow and step"
ok "after approval the workflow goes on and succeeds" wf_wait "$id" succeeded 20
is "$(step_field "$id" broken state)" succeeded "the approved step counts as succeeded"
is "$(step_field "$id" after state)" succeeded "the dependent ran"
a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "approved")] | length' "$a")" 1 "one 'approved' audit row"
is "$(jf '.rows[] | select(.action == "approved") | .actor' "$a")" operator "by the operator key"
is "$(audit_verified "$id")" true "the chain verifies"
api POST "/v1/workflows/$id/steps/broken/approve"
is "$HTTP_STATUS" 409 "approving again once the workflow succeeded: 409"

# --- retry through the API: the second attempt succeeds ---
workflow esc-retry \
        "$(sh_step second '[ "$AUTOOS_ATTEMPT" -ge 2 ] || exit 5; echo second-$AUTOOS_ATTEMPT')" \
        "$(sh_step after 'cat /work/inputs/second.stdout' '{"needs":["second"]}')" >"$TEST_TMP/retry.json"
id2=$(wf_submit "$TEST_TMP/retry.json") || bail_out "not accepted"
ok "escalated" step_wait "$id2" second awaiting_human 20
api POST "/v1/workflows/$id2/steps/second/retry"
is "$HTTP_STATUS" 200 "retry: 200"
ok "the retried step succeeds and the workflow with it" wf_wait "$id2" succeeded 20
is "$(step_field "$id2" second attempt)" 2 "on attempt 2"
is "$(step_field "$id2" after stdout)" second-2 "its dependent got attempt 2's output"
is "$(audit_count "$id2" retried)" 1 "one 'retried' audit row"

# --- retry through autoosctl fails again, then skip ---
workflow esc-skip \
        "$(sh_step hopeless 'exit 6')" \
        "$(sh_step after 'echo after-skip' '{"needs":["hopeless"]}')" >"$TEST_TMP/skip.json"
id3=$(wf_submit "$TEST_TMP/skip.json") || bail_out "not accepted"
ok "escalated" step_wait "$id3" hopeless awaiting_human 20
ctl retry "$id3" hopeless >"$TEST_TMP/ctl-retry.out" 2>&1
is "$?" 0 "autoosctl retry ID STEP exits 0"
ok "the retry runs (attempt 2)" wait_for 20 eval '[ "$(step_field "$id3" hopeless attempt)" = 2 ] &&
        [ "$(step_field "$id3" hopeless state)" = awaiting_human ]'
is "$(step_field "$id3" hopeless state)/$(step_field "$id3" hopeless attempt)" awaiting_human/2 \
        "it fails again: awaiting_human on attempt 2"
is "$(wf_state "$id3")" awaiting_human "the workflow awaits a human again"
api POST "/v1/workflows/$id3/steps/hopeless/skip"
is "$HTTP_STATUS" 200 "skip: 200"
is "$(jf .state "$RESP")" skipped "the step's new state is skipped"
ok "after the skip the workflow goes on and succeeds" wf_wait "$id3" succeeded 20
is "$(step_field "$id3" after stdout)" after-skip "the dependent ran"
a=$(audit_json "$id3")
is "$(jf '[.rows[] | .action | select(. == "escalated" or . == "retried" or . == "skipped")] | join(" ")' "$a")" \
        "escalated retried escalated skipped" "audit: escalated, retried, escalated, skipped"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id3' AND step_id = 'hopeless'")" 2 "two runs of the step"
is "$(audit_verified "$id3")" true "the chain verifies"

# --- cancel of an awaiting_human workflow ---
id4=$(wf_submit "$(workflow esc-cancel "$(sh_step x 'exit 1')")") || bail_out "not accepted"
ok "escalated" wf_wait "$id4" awaiting_human 20
api POST "/v1/workflows/$id4/cancel"
is "$HTTP_STATUS" 200 "an awaiting_human workflow can be cancelled"
ok "it is cancelled" wf_wait "$id4" cancelled 10

fleet_finish
