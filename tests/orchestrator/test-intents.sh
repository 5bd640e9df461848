#!/bin/sh
# SPDX-License-Identifier: MIT
# POST /v1/intents and `autoosctl intent`, the planner being the provider
# stand-in (tests/fabric/provider-standin.py) as an Anthropic provider: 503
# without a fabric; a strict body (400 naming the field); a viewer 403; a
# draft refused by the validator sent back and corrected (the correction
# request carries the validator's message); an egress step classified high
# with an approval step inserted before it; 200 for review, 201 with submit
# (the workflow listed with created_by the key); 422 when no round gives a
# valid draft; 502 naming the provider's failure; the "intent" audit rows
# (hashes, sizes, submitted or not); autoosctl printing and submitting.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
need_cmd python3 sha256sum

# --- the stand-in: the planner's provider -------------------------------------------
python3 "$top_srcdir/tests/fabric/provider-standin.py" --port-file "$TEST_TMP/standin.port" \
        >"$TEST_TMP/standin.log" 2>&1 &
STANDIN_PID=$!
at_exit "kill -TERM $STANDIN_PID; wait $STANDIN_PID"
_standin_up() {
        [ -s "$TEST_TMP/standin.port" ] || ! pid_alive "$STANDIN_PID"
}
wait_for 60 _standin_up
SP=$(cat "$TEST_TMP/standin.port" 2>/dev/null)
[ -n "$SP" ] && pid_alive "$STANDIN_PID" || bail_out "the provider stand-in did not start: $(cat "$TEST_TMP/standin.log")"
STANDIN=http://127.0.0.1:$SP

# standin_script JSON: the planner's next answers (and a fresh request log).
standin_script() {
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST --data-binary "$1" "$STANDIN/_script")" = 200 ] ||
                bail_out "the stand-in refused the script"
}

standin_log() {
        curl -s --max-time 30 "$STANDIN/_log"
}

# planner_says TEXT...: one scripted answer of the planner per TEXT.
planner_says() {
        for _t in "$@"; do
                jq -cn --arg t "$_t" '{text: $t, usage: {input_tokens: 500, output_tokens: 200}}'
        done | jq -cs '{p: .}'
}

cat >"$TEST_TMP/fabric.json" <<EOF
{"providers": {"p": {"kind": "anthropic", "base_url": "$STANDIN/p", "max_retries": 0, "cooldown_ms": 0,
                     "models": {"claude-x": {"input": 3, "output": 15}}}},
 "roles": {"planner": [{"provider": "p", "model": "claude-x"}],
           "executor": [{"provider": "p", "model": "claude-x"}]}}
EOF

# --- without a fabric: 503 ------------------------------------------------------------
fleet_up
OPERATOR=$KEY
VIEWER=$(key_create watcher viewer)
ADMIN=$(key_create boss admin)
api POST /v1/intents '{"sentence":"list the files"}'
is "$HTTP_STATUS" 503 "no fabric setting: 503"
like "$(jf .error.message "$RESP")" "no fabric setting" "saying the coordinator has no model providers"

echo "fabric = $TEST_TMP/fabric.json" >>"$FLEET_CONF"
coord_kill c1
coord_start c1 || bail_out "the coordinator did not start with the fabric"

# --- refused before the planner is asked ------------------------------------------------
standin_script '{}'
api POST /v1/intents '{"sentence":"x","colour":"blue"}'
is "$HTTP_STATUS" 400 "an unknown field: 400"
is "$(jf .error.field "$RESP")" colour "naming it"
api POST /v1/intents '{"sentence":42}'
is "$HTTP_STATUS/$(jf .error.field "$RESP")" 400/sentence "a sentence that is not a string: 400 naming it"
api POST /v1/intents '{"sentence":""}'
is "$HTTP_STATUS/$(jf .error.field "$RESP")" 400/sentence "an empty sentence: 400"
api POST /v1/intents '{"submit":true}'
is "$HTTP_STATUS/$(jf .error.field "$RESP")" 400/sentence "no sentence: 400"
api POST /v1/intents "$(jq -cn --arg s "$(head -c 4097 /dev/zero | tr '\0' a)" '{sentence: $s}')"
is "$HTTP_STATUS/$(jf .error.field "$RESP")" 400/sentence "a sentence over 4096 bytes: 400"
like "$(jf .error.message "$RESP")" "1 to 4096 bytes" "saying the bound"
{ printf '{"sentence":"'; head -c 200000 /dev/zero | tr '\0' a; printf '"}'; } >"$TEST_TMP/long.json"
api POST /v1/intents "@$TEST_TMP/long.json"
is "$HTTP_STATUS/$(jf .error.field "$RESP")" 400/sentence "a 200 kB sentence: 400 naming it too"
api POST /v1/intents '{"sentence":"x","submit":"yes"}'
is "$HTTP_STATUS/$(jf .error.field "$RESP")" 400/submit "submit not a boolean: 400"
api POST /v1/intents '{"sentence":"x","name":"bad\u0001name"}'
is "$HTTP_STATUS/$(jf .error.field "$RESP")" 400/name "a name the validator refuses: 400"
api POST /v1/intents '{"sentence":'
is "$HTTP_STATUS" 400 "not JSON: 400"
api_as "$VIEWER" POST /v1/intents '{"sentence":"list the files"}'
is "$HTTP_STATUS" 403 "a viewer may not draft intents: 403"
api_as "" POST /v1/intents '{"sentence":"list the files"}'
is "$HTTP_STATUS" 401 "no key: 401"
is "$(standin_log | jq length)" 0 "the planner was asked nothing for any of these"

# --- a refused draft corrected; an egress step gets an approval --------------------------
BAD='{"workflow":{"name":"fetch-report","steps":[{"id":"report","needs":["fetch"],"run":{"argv":["/bin/echo","report"]}}]}}'
GOOD='Here it is: {"workflow":{"name":"fetch-report","steps":[{"id":"fetch","run":{"argv":["/usr/bin/curl","-s","https://example.org/"],"trust":"elevated","network":"egress"}},{"id":"report","needs":["fetch"],"run":{"argv":["/bin/sh","-c","wc -c /work/inputs/fetch.stdout"]}}]},"risk":{"fetch":"medium","report":"low"},"summary":"Fetch the page, then count its bytes."}'
audit0=$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'intent'")
standin_script "$(planner_says "$BAD" "$GOOD")"
api POST /v1/intents '{"sentence":"fetch example.org and report its size"}'
is "$HTTP_STATUS" 200 "a draft for review: 200"
D=$RESP
is "$(jf .outcome "$D")/$(jf .rounds "$D")/$(jf .submitted "$D")" ok/2/false "valid in the second round, not submitted"
LOG=$(standin_log)
is "$(jf length "$LOG")" 2 "the planner was asked twice"
like "$(jf '.[1].body.messages[-1].content | if type == "array" then .[0].text else . end' "$LOG")" \
        "validator refused your draft.*fetch" "the second request carries the validator's message naming the unknown need"
is "$(jf '[.draft.steps[].id] | join(",")' "$D")" approve-fetch,fetch,report \
        "an approval step is inserted before the egress step"
is "$(jf '.draft.steps[] | select(.id == "fetch") | .needs | join(",")' "$D")" approve-fetch \
        "which now needs its approval"
is "$(jf '.draft.steps[] | select(.id == "approve-fetch") | .kind' "$D")" approval "of kind approval"
is "$(jf '.risk.steps[] | select(.id == "fetch") | [.level, .model_level, .approval_step] | join(" ")' "$D")" \
        "high medium approve-fetch" "fetch: the rules say high, the planner medium, beside each other"
like "$(jf '.risk.steps[] | select(.id == "fetch") | .why' "$D")" "network egress: high" "why: egress"
is "$(jf '.risk.steps[] | select(.id == "report") | [.level, (.approval_step | tostring)] | join(" ")' "$D")" \
        "low null" "report is low, no approval"
is "$(jf '[.risk.level, .risk.line, .approvals] | map(tostring) | join(" ")' "$D")" "high medium 1" \
        "the draft's risk, the risk line, one approval"
is "$(jf '[.provider, .model, .tokens.input, .tokens.output] | map(tostring) | join(" ")' "$D")" \
        "p claude-x 1000 400" "the planner's provider, model and tokens over both rounds"
is "$(jf '.cost_usd * 1000000 | round' "$D")" 9000 "its cost: 2 x (500 x \$3 + 200 x \$15) per million"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'intent'")" $((audit0 + 1)) "one intent audit row"
row=$(psql_q "SELECT detail FROM audit_log WHERE action = 'intent' ORDER BY id DESC LIMIT 1")
sentence_sha=$(printf '%s' "fetch example.org and report its size" | sha256sum | cut -d' ' -f1)
is "$(jf '[.sentence_sha256, .sentence_bytes, .submitted, .outcome] | map(tostring) | join(" ")' "$row")" \
        "$sentence_sha 37 false ok" "it holds the sentence's SHA-256 and size, not submitted"
is "$(jf .draft_sha256 "$row")" "$(printf '%s' "$D" | jq -cj .draft | sha256sum | cut -d' ' -f1)" \
        "and the SHA-256 of the draft answered"
is "$(psql_q "SELECT workflow_id IS NULL AND actor = 'operator' FROM audit_log WHERE action = 'intent' ORDER BY id DESC LIMIT 1")" \
        t "in the fleet chain, by the key"
unlike "$row" "example.org" "the sentence itself is not in the audit row"

printf '%s' "$D" >"$TEST_TMP/intent-200.json"

# --- submitted: 201, the workflow listed with created_by ---------------------------------
standin_script "$(planner_says "$GOOD")"
api_as "$ADMIN" POST /v1/intents '{"sentence":"fetch example.org and report its size","submit":true,"name":"intent-wf"}'
is "$HTTP_STATUS" 201 "submit: 201"
S=$RESP
WF=$(jf .workflow.id "$S")
like "$WF" '^[0-9a-f-]{36}$' "with the workflow's id"
is "$(jf '[.submitted, .draft.name, .workflow.name] | map(tostring) | join(" ")' "$S")" "true intent-wf intent-wf" \
        "submitted under the name asked for"
printf '%s' "$S" >"$TEST_TMP/intent-201.json"
# Both answers have doc/openapi.json's Intent shape (tests/console/openapi-check.py's schema check).
schema_check() {
        python3 - "$top_srcdir/tests/console/openapi-check.py" "$top_srcdir/doc/openapi.json" "$@" <<'PY'
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("oc", sys.argv[1])
oc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(oc)
doc = json.load(open(sys.argv[2]))
for f in sys.argv[3:]:
    errs = oc.schema_errors(doc, {"$ref": "#/components/schemas/Intent"}, json.load(open(f)))
    print(f"{f.rsplit('/', 1)[-1]}: {'; '.join(errs[:3]) or 'ok'}")
PY
}
is "$(schema_check "$TEST_TMP/intent-200.json" "$TEST_TMP/intent-201.json")" "intent-200.json: ok
intent-201.json: ok" "the 200 and 201 answers match doc/openapi.json's Intent schema"
api GET "/v1/workflows?limit=10"
is "$(jf '.workflows[] | select(.id == "'"$WF"'") | [.name, .created_by] | join(" ")' "$RESP")" \
        "intent-wf boss" "GET /v1/workflows lists it, created_by the submitting key"
api GET "/v1/workflows/$WF"
is "$(jf '.steps[] | select(.id == "approve-fetch") | .state' "$RESP")" awaiting_human \
        "its approval step awaits an operator"
is "$(psql_q "SELECT detail->>'submitted' || ' ' || actor FROM audit_log WHERE action = 'intent' AND workflow_id = '$WF'")" \
        "true boss" "the intent audit row is in the workflow's chain, submitted, by the key"
is "$(psql_q "SELECT detail->>'draft_sha256' FROM audit_log WHERE action = 'intent' AND workflow_id = '$WF'")" \
        "$(printf '%s' "$S" | jq -cj .draft | sha256sum | cut -d' ' -f1)" "its draft hash is the submitted draft's"
api GET "/v1/workflows/$WF/audit?verify=1"
is "$(jf .verify.ok "$RESP")" true "the workflow's audit chain verifies"
api POST "/v1/workflows/$WF/cancel"

# simulate gives run steps no model cost (model and agent steps: tests/orchestrator/test-cost.c)
api POST /v1/workflows/simulate "$(printf '%s' "$S" | jq -c .draft)"
is "$HTTP_STATUS/$(jf '[.model_cost_usd, ([.steps[].model_cost] | unique | .[0])] | map(tostring) | join(" ")' "$RESP")" \
        "200/0 null" "simulate of the draft: model_cost_usd 0, no model_cost for run and approval steps"

# simulate prices a model step and an agent step at the executor's first entry (p/claude-x: $3, $15)
# once the coordinator parses those kinds (orchestrator/workflow.c); until then the unit test-cost does.
MODEL_WF='{"name":"priced","steps":[{"id":"ask","kind":"model","model":{"prompt":"Say hi","max_tokens":1000}},
 {"id":"act","kind":"agent","needs":["ask"],"agent":{"goal":"g","max_tokens":500,"limits":{"turns":3},
  "tools":[{"name":"echo","description":"echo","parameters":{"type":"object","properties":{"text":{"type":"string"}},
   "required":["text"]},"run":{"argv":["/bin/echo","{{args.text}}"]}}]}}]}'
api POST /v1/workflows/simulate "$MODEL_WF"
is "$HTTP_STATUS/$(jf '[.steps[].kind] | join(",")' "$RESP")" 200/model,agent "simulate a model and an agent step: 200"
is "$(jf '[.steps[].model_cost | ((.usd * 1000000 | round), .provider, .output_tokens)] | map(tostring) | join(" ")' "$RESP")" \
        "15006 p 1000 22509 p 1500" "each priced: max_tokens (the agent's 3 turns x 500) and the prompt, at p/claude-x"
is "$(jf '.model_cost_usd * 1000000 | round' "$RESP")" 37515 "model_cost_usd is their sum"
is "$(jf '[.risks[] | select(.kind == "no_history")] | length' "$RESP")" 0 \
        "no no_history risk for model and agent steps (they run no program of their own)"

# An operator may not submit an elevated step (the shipped policy): the submission's own 403.
standin_script "$(planner_says "$GOOD")"
api POST /v1/intents '{"sentence":"fetch example.org","submit":true}'
is "$HTTP_STATUS" 403 "a draft the key's role may not submit: the submission's 403"
like "$(jf .error.message "$RESP")" "elevated" "naming the trust level"

# --- 422: never a valid draft -------------------------------------------------------------
standin_script "$(planner_says "$BAD" "$BAD" "$BAD")"
api POST /v1/intents '{"sentence":"report"}'
is "$HTTP_STATUS" 422 "no valid draft in the rounds: 422"
like "$(jf .error.message "$RESP")" "3 rounds.*fetch" "with the validator's last message"
is "$(standin_log | jq length)" 3 "after three rounds, no more"
is "$(psql_q "SELECT detail->>'outcome' || ' ' || (detail->>'draft_sha256' IS NULL) FROM audit_log WHERE action = 'intent' ORDER BY id DESC LIMIT 1")" \
        "invalid_draft true" "audited as invalid_draft, no draft hash"

# --- 502: the planner's provider fails --------------------------------------------------------
standin_script '{"p":[{"reply":"error","status":401,"type":"authentication_error","message":"invalid x-api-key"}]}'
api POST /v1/intents '{"sentence":"report"}'
is "$HTTP_STATUS" 502 "the planner's chain failed: 502"
like "$(jf .error.message "$RESP")" "p/claude-x.*invalid x-api-key" "naming the provider and its failure"

# --- autoosctl intent ---------------------------------------------------------------------------
standin_script "$(planner_says "$GOOD")"
out=$(ctl intent "fetch example.org and report its size" 2>&1)
is "$?" 0 "autoosctl intent: exit 0"
like "$out" "draft 'fetch-report': 3 steps, risk high" "prints the draft's name, size and risk"
like "$out" "approve-fetch +approval .*approval inserted before 'fetch'" "the approval step and what it guards"
like "$out" "fetch +run +approve-fetch +high +medium +.*network egress: high" "each step's needs, risk, rating and why"
like "$out" "planner: p/claude-x, 1 round, 500 input \\+ 200 output tokens" "the planner's provider, rounds and tokens"
like "$out" "not submitted" "and that it was not submitted"

standin_script "$(planner_says "$GOOD")"
out=$(env AUTOOS_URL="$COORD_URL" AUTOOS_API_KEY="$ADMIN" "$AUTOOSCTL" intent "fetch example.org" --submit 2>&1)
is "$?" 0 "autoosctl intent --submit: exit 0"
id=$(printf '%s\n' "$out" | sed -n 's/^submitted //p')
like "$id" '^[0-9a-f-]{36}$' "prints the workflow's id"
api GET "/v1/workflows/$id"
is "$HTTP_STATUS/$(jf .name "$RESP")" 200/fetch-report "which exists"
api POST "/v1/workflows/$id/cancel"

standin_script "$(planner_says "$GOOD")"
out=$(ctl intent "fetch example.org" --json)
is "$(jf '.outcome + " " + (.approvals | tostring)' "$out")" "ok 1" "--json prints the API's body"

out=$(env AUTOOS_URL="$COORD_URL" AUTOOS_API_KEY="$VIEWER" "$AUTOOSCTL" intent "fetch example.org" 2>&1)
rc=$?
is "$rc" 77 "a viewer's key: exit 77"
like "$out" "may not draft intents" "with the coordinator's message"
standin_script '{"p":[{"reply":"error","status":401,"type":"authentication_error","message":"invalid x-api-key"}]}'
out=$(ctl intent "fetch example.org" 2>&1)
rc=$?
isnt "$rc" 0 "a failing planner: a nonzero exit ($rc)"
like "$out" "invalid x-api-key" "naming the failure"
standin_script "$(planner_says "$BAD" "$BAD" "$BAD")"
out=$(ctl intent "report" 2>&1)
is "$?" 65 "no valid draft: exit 65"
like "$out" "no valid draft in 3 rounds" "saying so"
ctl intent >/dev/null 2>&1
is "$?" 2 "no sentence: usage, exit 2"
like "$(ctl --help)" "intent SENTENCE" "autoosctl --help lists intent"

fleet_finish
