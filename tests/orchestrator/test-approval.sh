#!/bin/sh
# SPDX-License-Identifier: MIT
# Approval steps ("kind":"approval") wait in awaiting_human while the
# workflow stays running; a viewer key cannot approve (403), nor can the
# operator who submitted it (two people: approval_by_submitter = no), another
# operator can; then the dependents run. A skipped approval lets the workflow
# go on too.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na
VIEWER=$(key_create watcher viewer)
APPROVER=$(key_create approver operator)

workflow release \
        "$(sh_step build 'echo artefact-1')" \
        '{"id":"ship-it","kind":"approval","needs":["build"]}' \
        "$(sh_step deploy 'echo "deploying $(cat /work/inputs/build.stdout)"' '{"needs":["ship-it"]}')" \
        >"$TEST_TMP/release.json"
id=$(wf_submit "$TEST_TMP/release.json") || bail_out "not accepted"
ok "the approval step waits in awaiting_human" step_wait "$id" ship-it awaiting_human 20
is "$(step_field "$id" ship-it kind)" approval "it is reported as kind approval"
is "$(step_field "$id" build state)" succeeded "the step before it ran"
is "$(wf_state "$id")" running "the workflow stays running meanwhile"
sleep 1
is "$(step_field "$id" deploy state)" pending "the dependent does not run before the approval"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id'")" 1 "one run so far"

api_as "$VIEWER" POST "/v1/workflows/$id/steps/ship-it/approve"
is "$HTTP_STATUS" 403 "a viewer key cannot approve (403)"
is "$(jf .error.code "$RESP")" forbidden "code forbidden"
api_as "" POST "/v1/workflows/$id/steps/ship-it/approve"
is "$HTTP_STATUS" 401 "no key: 401"
is "$(step_field "$id" ship-it state)" awaiting_human "the step still awaits approval"

api POST "/v1/workflows/$id/steps/ship-it/approve"
is "$HTTP_STATUS" 403 "the operator who submitted it cannot approve it (403)"
is "$(step_field "$id" ship-it state)" awaiting_human "the step still awaits approval"
api_as "$APPROVER" POST "/v1/workflows/$id/steps/ship-it/approve"
is "$HTTP_STATUS" 200 "another operator approves: 200"
is "$(jf .state "$RESP")" succeeded "the approval step's new state is succeeded"
ok "the workflow succeeds" wf_wait "$id" succeeded 20
is "$(step_field "$id" deploy stdout)" "deploying artefact-1" "the dependent ran with its inputs"
a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "approved") | .actor] | join(",")' "$a")" approver \
        "one 'approved' audit row, by the approver's key"
is "$(jf '[.rows[] | select(.action == "dispatched") | (.detail.step // .detail.step_id)] | join(",")' "$a")" \
        build,deploy "only the run steps were dispatched to nodes"
is "$(audit_verified "$id")" true "the chain verifies"

# Approved through autoosctl.
id2=$(wf_submit "$TEST_TMP/release.json") || bail_out "not accepted"
ok "awaiting approval" step_wait "$id2" ship-it awaiting_human 20
(KEY=$APPROVER && ctl approve "$id2" ship-it >"$TEST_TMP/ctl.out" 2>&1)
is "$?" 0 "autoosctl approve ID STEP exits 0"
ok "and the workflow succeeds" wf_wait "$id2" succeeded 20

# Skipped.
id3=$(wf_submit "$TEST_TMP/release.json") || bail_out "not accepted"
ok "awaiting approval" step_wait "$id3" ship-it awaiting_human 20
api POST "/v1/workflows/$id3/steps/ship-it/skip"
is "$HTTP_STATUS" 200 "skip: 200"
is "$(jf .state "$RESP")" skipped "the approval step is skipped"
ok "a skipped approval lets the workflow go on" wf_wait "$id3" succeeded 20
is "$(audit_count "$id3" skipped)" 1 "one 'skipped' audit row"

fleet_finish
