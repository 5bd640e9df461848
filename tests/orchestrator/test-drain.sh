#!/bin/sh
# SPDX-License-Identifier: MIT
# Node drain from the API (issue 15), as Nomad's: POST /v1/nodes/{id}/drain
# (operator or admin) and DELETE /v1/nodes/{id}/drain. A drained node gets no
# new step while another does, a step it runs finishes there, undrained it
# gets steps again; a viewer gets 403, an unknown node 404; each change is an
# audit row on the fleet chain; a second coordinator sees the drain (it lives
# in PostgreSQL) and can undo it; autoosctl nodes drain|undrain does the same.
# GET /v1/whoami names the key and its role; GET /v1/runs/{run} gives an
# attempt's whole output.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
pg_start
redis_start
KEY=$(key_create operator operator)
VIEWER=$(key_create watcher viewer)
ADMIN=$(key_create boss admin)
coord_start c1 || bail_out "the coordinator did not start"
C1=$COORD_URL
node_start na "max_runs = 4" "labels = zone=a" || bail_out "node na did not start"
node_start nb "max_runs = 4" "labels = zone=b" || bail_out "node nb did not start"

# node_field NODE FIELD: one field of NODE in GET /v1/nodes (of API_URL, else COORD_URL).
node_field() {
        api GET /v1/nodes
        printf '%s' "$RESP" | jq -r --arg n "$1" --arg f "$2" '.nodes[] | select(.id == $n) | .[$f]' 2>/dev/null
}
_node_is() {
        [ "$(node_field "$1" "$2")" = "$3" ]
}
# steps_on ID: the nodes the workflow's steps ran on, sorted and unique, space-separated.
steps_on() {
        wf_json "$1" | jq -r '[.steps[].node] | unique | join(" ")' 2>/dev/null
}
# spread NAME N [JSON]: a workflow of N independent steps (each merged with JSON).
spread() {
        _sn=$1
        _sc=$2
        _sj=${3:-}
        _i=0
        while [ $_i -lt "$_sc" ]; do
                sh_step "s$_i" 'echo on-$AUTOOS_STEP' "$_sj"
                _i=$((_i + 1))
        done | jq -cs --arg n "$_sn" '{name: $n, steps: .}'
}

# --- whoami --------------------------------------------------------------------------------
for who in "$KEY:operator:operator" "$VIEWER:watcher:viewer" "$ADMIN:boss:admin"; do
        k=${who%%:*}
        rest=${who#*:}
        api_as "$k" GET /v1/whoami
        is "$HTTP_STATUS $(printf '%s' "$RESP" | jq -c .)" "200 {\"key\":\"${rest%%:*}\",\"role\":\"${rest#*:}\"}" \
                "GET /v1/whoami as ${rest#*:}"
done
api_as "" GET /v1/whoami
is "$HTTP_STATUS" 401 "GET /v1/whoami without a key: 401"
api_as "aok_not-a-key" GET /v1/whoami
is "$HTTP_STATUS" 401 "GET /v1/whoami with an unknown key: 401"

# --- the shape of GET /v1/nodes ----------------------------------------------------------
ok "both nodes are healthy" wait_for 20 _node_is nb state healthy
is "$(node_field na draining) $(node_field na drain_since) $(node_field na drained_by)" "false null null" \
        "GET /v1/nodes: na is not draining (draining false, drain_since and drained_by null)"

# --- who may drain -------------------------------------------------------------------------
api_as "$VIEWER" POST /v1/nodes/na/drain
is "$HTTP_STATUS" 403 "a viewer's drain: 403"
like "$(jf .error.message "$RESP")" "role viewer may not drain nodes" "naming what it may not do"
api_as "$VIEWER" DELETE /v1/nodes/na/drain
is "$HTTP_STATUS" 403 "a viewer's undrain: 403"
is "$(node_field na draining)" false "na is still not draining"
api POST /v1/nodes/no-such-node/drain
is "$HTTP_STATUS $(jf .error.code "$RESP")" "404 not_found" "an unknown node: 404"
like "$(jf .error.message "$RESP")" "no-such-node" "naming it"
api GET /v1/nodes/na/drain
is "$HTTP_STATUS $(resp_header Allow)" "405 POST, DELETE" "GET on the drain: 405, Allow: POST, DELETE"

# --- a step in flight on na when it is drained finishes there -----------------------------
workflow inflight "$(sh_step slow 'sleep 5; echo finished; head -c 100000 /dev/zero | tr "\\0" e >&2' \
        '{"node_selector":{"zone":"a"}}')" >"$TEST_TMP/inflight.json"
WF_IN=$(wf_submit "$TEST_TMP/inflight.json") || bail_out "not accepted"
ok "the slow step is placed on na" step_wait "$WF_IN" slow dispatched 30

api POST /v1/nodes/na/drain
is "$HTTP_STATUS" 200 "an operator drains na: 200"
is "$(printf '%s' "$RESP" | jq -c '[.id, .draining, .drained_by]')" '["na",true,"operator"]' "the answer: na, draining, by operator"
like "$(jf .drain_since "$RESP")" '^20[0-9][0-9]-' "and since when"
SINCE=$(jf .drain_since "$RESP")
is "$(node_field na draining) $(node_field na drained_by)" "true operator" "GET /v1/nodes shows na draining, by operator"
is "$(node_field na drain_since)" "$SINCE" "and since when"
is "$(node_field nb draining)" false "nb is not draining"
api_as "$ADMIN" POST /v1/nodes/na/drain
is "$HTTP_STATUS $(printf '%s' "$RESP" | jq -c '[.draining, .drained_by, .drain_since]')" "200 [true,\"operator\",\"$SINCE\"]" \
        "an admin's second drain: 200, the first drain's key and time kept"

ok "the step in flight on the drained node finishes" wf_wait "$WF_IN" succeeded 30
is "$(step_field "$WF_IN" slow node) $(step_field "$WF_IN" slow attempt)" "na 1" "on na, in its first attempt (not moved)"
is "$(psql_q "SELECT (SELECT max(ts_epoch_us) FROM audit_log WHERE workflow_id = '$WF_IN' AND action = 'result') >
        (SELECT ts_epoch_us FROM audit_log WHERE workflow_id IS NULL AND action = 'node_drained')")" t \
        "its result came after the drain (it was in flight then)"

# --- GET /v1/runs/{id}: an attempt's whole output ---------------------------------------------
api_as "$VIEWER" GET "/v1/runs/$WF_IN.slow.1"
is "$HTTP_STATUS" 200 "GET /v1/runs/WORKFLOW.STEP.ATTEMPT as a viewer: 200"
is "$(printf '%s' "$RESP" | jq -c '[.id, .workflow, .step, .attempt, .node, .late]')" \
        "[\"$WF_IN.slow.1\",\"$WF_IN\",\"slow\",1,\"na\",false]" "naming the run, its workflow, step, attempt and node"
is "$(jf .result.stdout "$RESP")" finished "the result's stdout"
is "$(printf '%s' "$RESP" | jq -r '[(.result.stderr | length), .result.stderr_truncated, .result.outcome] | join(" ")')" \
        "100000 false exited" "its whole stderr (100000 bytes, over the 2 KiB tail an escalation keeps)"
api GET "/v1/runs/$WF_IN.slow.2"
is "$HTTP_STATUS $(jf .error.code "$RESP")" "404 not_found" "an attempt with no result: 404"
api GET "/v1/runs/$WF_IN.slow"
is "$HTTP_STATUS" 404 "a malformed run id: 404"

# --- no new step on the drained node while the other takes them ------------------------------
spread pinned 1 '{"node_selector":{"zone":"a"}}' >"$TEST_TMP/pinned.json"
WF_PIN=$(wf_submit "$TEST_TMP/pinned.json") || bail_out "not accepted"
spread wide 8 >"$TEST_TMP/wide.json"
WF_WIDE=$(wf_submit "$TEST_TMP/wide.json") || bail_out "not accepted"
ok "8 new steps run while na drains" wf_wait "$WF_WIDE" succeeded 60
is "$(steps_on "$WF_WIDE")" nb "every one of them ran on nb"
is "$(step_field "$WF_PIN" s0 state)" ready "a step only na may take waits, ready (not placed on the drained node)"

# --- the audit rows ---------------------------------------------------------------------------
is "$(psql_q "SELECT actor || ' ' || (detail->>'node') FROM audit_log WHERE workflow_id IS NULL AND action = 'node_drained'")" \
        "operator na" "one audit row node_drained on the fleet chain: who and which node (the second drain adds none)"

# --- a second coordinator sees it, and can undo it -------------------------------------------
coord_start c2 || bail_out "coordinator c2 did not start"
C2=$COORD_URL
ok "c2 shows na draining (from PostgreSQL)" wait_for 20 _node_is na draining true
is "$(node_field na drained_by)" operator "by operator"
api_as "$ADMIN" DELETE /v1/nodes/na/drain
is "$HTTP_STATUS $(printf '%s' "$RESP" | jq -c '[.id, .draining, .drain_since, .drained_by]')" '200 ["na",false,null,null]' \
        "an admin undrains na through c2: 200"
COORD_URL=$C1
ok "c1 sees na eligible again" wait_for 20 _node_is na draining false
api DELETE /v1/nodes/na/drain
is "$HTTP_STATUS $(jf .draining "$RESP")" "200 false" "undraining again: 200, no change"
is "$(psql_q "SELECT actor || ' ' || (detail->>'node') FROM audit_log WHERE workflow_id IS NULL AND action = 'node_undrained'")" \
        "boss na" "one audit row node_undrained: who and which node"

# --- undrained, it takes steps again ----------------------------------------------------------
ok "the waiting step goes to na once it is undrained" wf_wait "$WF_PIN" succeeded 30
is "$(step_field "$WF_PIN" s0 node)" na "on na"
spread again 8 >"$TEST_TMP/again.json"
WF_AGAIN=$(wf_submit "$TEST_TMP/again.json") || bail_out "not accepted"
ok "8 more steps run" wf_wait "$WF_AGAIN" succeeded 60
like "$(steps_on "$WF_AGAIN")" "na" "na takes some of them again ($(steps_on "$WF_AGAIN"))"
is "$(audit_verified "$WF_AGAIN")" true "the workflows' chains still verify"

# --- autoosctl nodes drain|undrain ------------------------------------------------------------
out=$(ctl nodes drain nb 2>&1)
is "$?" 0 "autoosctl nodes drain nb: exit 0"
like "$out" "^node nb: draining since 20[0-9-]*T.*, by operator\$" "it says since when and by whom: $out"
is "$(node_field nb draining)" true "GET /v1/nodes shows nb draining"
out=$(ctl nodes undrain nb 2>&1)
is "$? $out" "0 node nb: not draining (takes new steps)" "autoosctl nodes undrain nb"
is "$(node_field nb draining)" false "nb is eligible again"
out=$(ctl nodes drain no-such-node 2>&1)
is "$?" 1 "an unknown node: exit 1"
like "$out" "no node named 'no-such-node'" "naming it: $out"
out=$(KEY=$VIEWER ctl nodes drain nb 2>&1)
isnt "$?" 0 "a viewer's autoosctl nodes drain fails"
like "$out" "role viewer may not drain nodes" "saying why: $out"
is "$(node_field nb draining)" false "and nb is not draining"
fleet_finish
