#!/bin/sh
# SPDX-License-Identifier: MIT
# POST /v1/runs: one sandboxed run as a one-step workflow named "run";
# ?wait=1 answers with the result when it ends, without it 202 and the
# workflow completes on its own; invalid specs are 400 invalid_request.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na

api POST "/v1/runs?wait=1" '{"argv":["/bin/sh","-c","echo run-$((6 * 7)); echo oops >&2"],"env":{"WHO":"me"}}'
is "$HTTP_STATUS" 200 "POST /v1/runs?wait=1: 200"
r=$RESP
is "$(jf .state "$r")" succeeded "state succeeded"
is "$(jf .result.outcome "$r")" exited "result.outcome exited"
is "$(jf .result.exit_code "$r")" 0 "exit_code 0"
is "$(jf .result.stdout "$r")" run-42 "result.stdout"
is "$(jf .result.stderr "$r")" oops "result.stderr"
is "$(jf .result.node "$r")" na "result.node"
wid=$(jf .id "$r")
api GET "/v1/workflows/$wid"
is "$HTTP_STATUS" 200 "the run is a workflow"
is "$(jf '[.name, .state, (.steps | length | tostring)] | join(" ")' "$RESP")" "run succeeded 1" \
        "named run, succeeded, one step"

api POST "/v1/runs?wait=1" '{"argv":["/bin/sh","-c","echo $WHO"],"env":{"WHO":"env-ok"},"limits":{"wall_ms":5000}}'
is "$(jf .result.stdout "$RESP")" env-ok "the spec's env reaches the run"

t0=$(now_ms)
api POST "/v1/runs?wait=1" '{"argv":["/bin/sleep","10"],"limits":{"wall_ms":500}}'
t=$(($(now_ms) - t0))
is "$HTTP_STATUS" 200 "a run over its wall limit: 200"
is "$(jf .result.outcome "$RESP")" timeout "outcome timeout"
cmp_ok "$t" '<' 8000 "answered when it ended ($t ms)"

api POST /v1/runs '{"argv":["/bin/sh","-c","sleep 0.5; echo later"]}'
is "$HTTP_STATUS" 202 "POST /v1/runs without wait: 202"
id=$(jf .id "$RESP")
is "$(jf .state "$RESP")" running "state running"
ok "the run's workflow completes" wf_wait "$id" succeeded 20
is "$(wf_json "$id" | jq -r '.steps[0].stdout')" later "with the run's stdout"
is "$(audit_verified "$id")" true "its audit chain verifies"

api POST /v1/runs '{"argv":[]}'
is "$HTTP_STATUS" 400 "an empty argv: 400"
is "$(jf .error.code "$RESP")" invalid_request "code invalid_request"
api POST /v1/runs '{"argv":["/bin/true"],"limits":{"memory_bytes":8589934592}}'
is "$HTTP_STATUS" 400 "a limit over the ceiling: 400"
like "$(jf .error.field "$RESP")" 'memory_bytes' "naming the field ($(jf .error.field "$RESP"))"
api POST /v1/runs '{"argv":["/bin/true"],"bogus":1}'
is "$HTTP_STATUS" 400 "an unknown field: 400"
api POST /v1/runs 'not json'
is "$HTTP_STATUS" 400 "malformed JSON: 400"

fleet_finish
