#!/bin/sh
# SPDX-License-Identifier: MIT
# The HTTP API's contract (doc/api.md): keys and roles, every kind of invalid
# workflow refused with 400 naming the problem and the field (and nothing
# stored), body size limit (413), unknown route (404), wrong method (405 with
# Allow), rate limit (429 with Retry-After), malformed JSON, /healthz,
# /metrics, /v1/nodes, and server-sent events.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na
node_start nb "max_runs = 3" "labels = zone=b,disk=ssd" || bail_out "node nb did not start"
VIEWER=$(key_create watcher viewer)
ADMIN=$(key_create boss admin)
like "$VIEWER" '^aok_' "--create-key prints the key (aok_...)"
is "$(psql_q "SELECT count(*) FROM api_keys WHERE key_sha256 = sha256(convert_to('$VIEWER', 'UTF8'))")" 1 \
        "only its SHA-256 is stored"
is "$(psql_q "SELECT count(*) FROM api_keys WHERE name = 'watcher' AND role = 'viewer'")" 1 "with its name and role"

good=$(workflow good "$(sh_step a 'echo hi')")

# --- keys and roles ---
api_as "" GET /v1/workflows
is "$HTTP_STATUS" 401 "no key: 401"
is "$(jf .error.code "$RESP")" unauthorized "code unauthorized"
api_as "aok_not-a-real-key-0123456789" GET /v1/workflows
is "$HTTP_STATUS" 401 "an unknown key: 401"
api_as "$VIEWER" POST /v1/workflows "$good"
is "$HTTP_STATUS" 403 "a viewer cannot submit: 403"
is "$(jf .error.code "$RESP")" forbidden "code forbidden"
api_as "$VIEWER" POST /v1/runs '{"argv":["/bin/true"]}'
is "$HTTP_STATUS" 403 "a viewer cannot start a run: 403"
api_as "$VIEWER" GET /v1/workflows
is "$HTTP_STATUS" 200 "a viewer may list: 200"
api POST /v1/workflows "$good"
is "$HTTP_STATUS" 201 "an operator submits: 201"
id=$(jf .id "$RESP")
is "$(jf '[.name, .state, (.steps | tostring)] | join(" ")' "$RESP")" "good running 1" "answer: name, state running, steps 1"
api_as "$VIEWER" GET "/v1/workflows/$id"
is "$HTTP_STATUS" 200 "a viewer may read a workflow: 200"
is "$(jf .created_by "$RESP")" operator "created_by is the submitting key's name"
api_as "$VIEWER" POST "/v1/workflows/$id/cancel"
is "$HTTP_STATUS" 403 "a viewer cannot cancel: 403"
api_as "$ADMIN" POST /v1/workflows "$good"
is "$HTTP_STATUS" 201 "an admin may do what an operator does: 201"
id_admin=$(jf .id "$RESP")
wf_wait "$id" succeeded 20 || diag "the good workflow did not succeed"
wf_wait "$id_admin" succeeded 20 || diag "the admin's workflow did not succeed"

# --- invalid workflows: 400 naming the problem and the field, nothing stored ---
count_wf() { psql_q "SELECT count(*) FROM workflows"; }
# The workflows' chains (the fleet chain has rows of its own, e.g. for keys).
count_audit() { psql_q "SELECT count(*) FROM audit_log WHERE workflow_id IS NOT NULL"; }
n_wf=$(count_wf)
n_audit=$(count_audit)
api GET "/v1/workflows?limit=1000"
n_list=$(jf '.workflows | length' "$RESP")

# refused NAME DOC MESSAGE-ERE FIELD-ERE
refused() {
        api POST /v1/workflows "$2"
        is "$HTTP_STATUS" 400 "$1: 400"
        is "$(jf .error.code "$RESP")" invalid_workflow "$1: code invalid_workflow"
        like "$(jf .error.message "$RESP")" "$3" "$1: the message names it ($(jf .error.message "$RESP"))"
        like "$(jf .error.field "$RESP")" "$4" "$1: field $(jf .error.field "$RESP")"
}
refused "duplicate step id" \
        "$(workflow dup "$(sh_step a 'true')" "$(sh_step a 'true')")" \
        "[Dd]uplicate.*'?a'?|'?a'?.*[Dd]uplicate" '^steps(\[1\]|\.a)\.id$'
refused "unknown needs" \
        "$(workflow unk "$(sh_step a 'true')" "$(sh_step b 'true' '{"needs":["ghost"]}')")" \
        "ghost" '^steps\.b\.needs'
refused "a cycle" \
        "$(workflow cyc "$(sh_step a 'true' '{"needs":["b"]}')" "$(sh_step b 'true' '{"needs":["a"]}')")" \
        "a -> b -> a|b -> a -> b" '^steps\.(a|b)\.needs'
refused "a longer cycle" \
        "$(workflow cyc3 "$(sh_step x 'true')" "$(sh_step a 'true' '{"needs":["x","c"]}')" \
                "$(sh_step b 'true' '{"needs":["a"]}')" "$(sh_step c 'true' '{"needs":["b"]}')")" \
        "a -> c -> b -> a|c -> b -> a -> c|b -> a -> c -> b" '^steps\.(a|b|c)\.needs'
refused "a self-dependency" \
        "$(workflow self "$(sh_step a 'true' '{"needs":["a"]}')")" \
        "a -> a|itself" '^steps\.a\.needs'
refused "an unknown step field" \
        "$(workflow field "$(sh_step a 'true' '{"colour":"red"}')")" \
        "colour" '^steps\.a\.colour$'
refused "an unknown top-level field" \
        '{"name":"top","stepz":[],"steps":[{"id":"a","run":{"argv":["/bin/true"]}}]}' \
        "stepz" '^stepz$'
refused "a limit over the ceiling" \
        "$(workflow big "$(jq -cn '{id: "build", run: {argv: ["/bin/true"], limits: {memory_bytes: 8589934592}}}')")" \
        "build.*memory_bytes|memory_bytes.*build" '^steps\.build\.run\.limits\.memory_bytes$'
refused "an unknown run field" \
        "$(workflow runf "$(jq -cn '{id: "a", run: {argv: ["/bin/true"], argh: 1}}')")" \
        "argh" '^steps\.a\.run\.argh$'
refused "a run step without run" \
        '{"name":"norun","steps":[{"id":"a"}]}' \
        "run" '^steps\.a(\.run)?$'
refused "an unknown fallback" \
        "$(workflow fb "$(sh_step a 'true' '{"fallback":"nope"}')")" \
        "nope" '^steps\.a\.fallback$'
refused "no steps" '{"name":"empty","steps":[]}' "steps" '^steps$'
refused "a bad step id" \
        "$(workflow badid "$(sh_step 'has space' 'true')")" \
        "id" '^steps\[0\]\.id$'
is "$(count_wf)" "$n_wf" "nothing stored for the refused workflows (workflows table)"
is "$(count_audit)" "$n_audit" "no audit row for them"
api GET "/v1/workflows?limit=1000"
is "$(jf '.workflows | length' "$RESP")" "$n_list" "the list is unchanged"
is "$(jf '[.workflows[] | select(.created_by == "operator")] | length > 0' "$RESP")" true \
        "the list's rows name who submitted each workflow (created_by)"

# --- malformed requests ---
api POST /v1/workflows '{"name": "x", "steps": ['
is "$HTTP_STATUS" 400 "malformed JSON: 400"
is "$(jf .error.code "$RESP")" invalid_json "code invalid_json"
api POST /v1/workflows '[1, 2]'
is "$HTTP_STATUS" 400 "a JSON document that is not an object: 400"
head -c 1200000 /dev/zero | tr '\0' ' ' >"$TEST_TMP/big.json"
printf '%s' "$good" >>"$TEST_TMP/big.json"
api POST /v1/workflows "@$TEST_TMP/big.json"
is "$HTTP_STATUS" 413 "a body over 1 MiB: 413"
is "$(jf .error.code "$RESP")" payload_too_large "code payload_too_large"
is "$(count_wf)" "$n_wf" "nothing stored"
api GET /v1/nosuch
is "$HTTP_STATUS" 404 "an unknown route: 404"
is "$(jf .error.code "$RESP")" not_found "code not_found"
api GET /v1/workflows/00000000-0000-0000-0000-000000000000
is "$HTTP_STATUS" 404 "an unknown workflow: 404"
api GET /v1/workflows/not-a-uuid
like "$HTTP_STATUS" '^(400|404)$' "a malformed workflow id: 400 or 404 ($HTTP_STATUS)"
api DELETE /v1/workflows
is "$HTTP_STATUS" 405 "a wrong method: 405"
is "$(jf .error.code "$RESP")" method_not_allowed "code method_not_allowed"
like "$(resp_header Allow)" 'GET' "with an Allow header listing GET ($(resp_header Allow))"
api GET "/v1/workflows/$id/cancel"
is "$HTTP_STATUS" 405 "GET on a POST route: 405"
api GET "/v1/workflows?state=bogus"
is "$HTTP_STATUS" 400 "an unknown state filter: 400"
is "$(jf .error.code "$RESP")" invalid_request "code invalid_request"
api GET "/v1/workflows?state=succeeded&limit=1"
is "$HTTP_STATUS/$(jf '.workflows | length' "$RESP")/$(jf '.workflows[0].state' "$RESP")" "200/1/succeeded" \
        "?state=succeeded&limit=1: one succeeded workflow"
is "$(jf '.workflows[0].steps.succeeded' "$RESP")" 1 "with its steps counted by state"

# --- health, metrics, nodes ---
h=$(curl -s -w '\n%{http_code}' "$COORD_URL/healthz")
is "$(printf '%s' "$h" | tail -n 1)" 200 "GET /healthz without a key: 200"
is "$(printf '%s' "$h" | head -n 1 | jq -r '[.status, .db, .redis] | map(tostring) | join(" ")')" "ok true true" \
        "status ok, db and redis true"
m=$(curl -s "$COORD_URL/metrics")
like "$m" '^# TYPE ' "GET /metrics is Prometheus text"
like "$m" '^autoos_[a-z_]*workflows?[a-z_]*(\{[^}]*\})? [0-9]' "workflow metrics"
like "$m" '^autoos_[a-z_]*steps?[a-z_]*(\{[^}]*\})? [0-9]' "step metrics"
like "$m" '^autoos_coordinator_http_requests_total\{code="200"\} [1-9]' "API requests counted by status code (the earlier requests' 200s)"
like "$m" '^autoos_[a-z_]*audit[a-z_]*(\{[^}]*\})? [0-9]' "audit rows written"
like "$m" '^autoos_[a-z_]*dispatch[a-z_]*(_bucket|_sum|_count)?(\{[^}]*\})? [0-9]' "dispatch latency"
api GET /v1/nodes
is "$HTTP_STATUS" 200 "GET /v1/nodes: 200"
is "$(jf '[.nodes[] | .id] | sort | join(",")' "$RESP")" na,nb "lists both nodes"
is "$(jf '[.nodes[] | .state] | unique | join(",")' "$RESP")" healthy "both healthy"
is "$(jf '.nodes[] | select(.id == "nb") | [.capacity, .labels.zone, .labels.disk] | map(tostring) | join(" ")' "$RESP")" \
        "3 b ssd" "nb's capacity and labels"

# --- node_selector: placement honours labels ---
sel=$(workflow selected \
        "$(sh_step s1 'echo sel' '{"node_selector":{"zone":"b"}}')" \
        "$(sh_step s2 'echo sel' '{"node_selector":{"zone":"b"}}')" \
        "$(sh_step s3 'echo sel' '{"node_selector":{"zone":"b"}}')" \
        "$(sh_step s4 'echo sel' '{"node_selector":{"disk":"ssd"}}')" \
        "$(sh_step s5 'echo sel' '{"node_selector":{"disk":"ssd","zone":"b"}}')" \
        "$(sh_step s6 'echo sel' '{"node_selector":{"disk":"ssd","zone":"b"}}')")
sid=$(wf_submit "$sel") || bail_out "not accepted"
ok "a workflow with node selectors succeeds" wf_wait "$sid" succeeded 20
is "$(wf_json "$sid" | jq -r '[.steps[] | .node] | unique | join(",")')" nb "its six steps all ran on nb, the node with the labels"
nid=$(wf_submit "$(workflow nowhere "$(sh_step x 'echo x' '{"node_selector":{"zone":"nowhere"}}')")") ||
        bail_out "not accepted"
sleep 1.5
like "$(step_field "$nid" x state)" '^(pending|ready)$' "a step no node matches is not dispatched ($(step_field "$nid" x state))"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$nid'")" 0 "and does not run"
api POST "/v1/workflows/$nid/cancel"

# --- server-sent events ---
curl -sN --max-time 60 -H "Authorization: Bearer $VIEWER" "$COORD_URL/v1/events" >"$TEST_TMP/events.txt" 2>&1 &
sse=$!
fleet_bg $sse
sleep 0.5
eid=$(wf_submit "$(workflow events "$(sh_step e1 'echo ev')" "$(sh_step e2 'echo ev2' '{"needs":["e1"]}')")") ||
        bail_out "not accepted"
wf_wait "$eid" succeeded 20 || diag "the events workflow did not succeed"
has_event() {
        awk -v t="$1" -v id="$2" '/^event: / { ev = substr($0, 8) } /^data: / && ev == t && index($0, id) { f = 1 }
                END { exit !f }' "$TEST_TMP/events.txt"
}
ok "SSE: workflow.submitted for it" wait_for 5 has_event workflow.submitted "$eid"
ok "SSE: step.dispatched" wait_for 5 has_event step.dispatched "$eid"
ok "SSE: step.finished" wait_for 5 has_event step.finished "$eid"
ok "SSE: workflow.finished" wait_for 5 has_event workflow.finished "$eid"
like "$(grep -m 1 '^id: ' "$TEST_TMP/events.txt")" '^id: [0-9]+-[0-9]+$' "each event has the stream id"
first_data=$(grep -m 1 '^data: ' "$TEST_TMP/events.txt" | cut -c7-)
is "$(jf 'type' "$first_data")" object "data is a JSON object"
kill "$sse" 2>/dev/null
# Replay with Last-Event-ID: everything after the first event.
first_id=$(grep -m 1 '^id: ' "$TEST_TMP/events.txt" | cut -c5-)
curl -sN --max-time 2 -H "Authorization: Bearer $VIEWER" -H "Last-Event-ID: $first_id" \
        "$COORD_URL/v1/events" >"$TEST_TMP/replay.txt" 2>&1
like "$(grep '^id: ' "$TEST_TMP/replay.txt" | head -n 1)" "^id: " "Last-Event-ID replays what followed"
unlike "$(grep '^id: ' "$TEST_TMP/replay.txt")" "^id: $first_id\$" "but not that event itself"
api_as "" GET /v1/events
is "$HTTP_STATUS" 401 "events need a key too"

# --- rate limit (a second coordinator at 1 request/s per key, burst 2: one request
# after another outruns it, however slow the host; at 5/s a loaded host's curl did not) ---
coord_start rl --rate-limit 1 || bail_out "the rate-limited coordinator did not start"
got=""
i=0
while [ $i -lt 400 ]; do
        api_as "$VIEWER" GET /v1/nodes
        if [ "$HTTP_STATUS" = 429 ]; then
                got=1
                break
        fi
        i=$((i + 1))
done
ok "over the key's rate: 429 (after $i requests)" test -n "$got"
is "$(jf .error.code "$RESP")" rate_limited "code rate_limited"
ra=$(resp_header Retry-After)
like "$ra" '^[1-9][0-9]*$' "with Retry-After ($ra)"
api_as "$ADMIN" GET /v1/nodes
is "$HTTP_STATUS" 200 "another key is not limited by it"
case $ra in
[1-9] | [1-9][0-9]) sleep "$ra" ;;
*) sleep 1 ;;
esac
sleep 0.5
api_as "$VIEWER" GET /v1/nodes
is "$HTTP_STATUS" 200 "after Retry-After the key is served again"


# A key works the moment it is made, however recently the key cache was loaded.
fresh_ok=0
for _i in 1 2 3 4 5; do
        _k=$(key_create "fresh$_i" viewer)
        api_as "$_k" GET /v1/nodes
        [ "$HTTP_STATUS" = 200 ] && fresh_ok=$((fresh_ok + 1))
done
is "$fresh_ok" 5 "five keys, each used right after it was made: 200 every time"

fleet_finish
