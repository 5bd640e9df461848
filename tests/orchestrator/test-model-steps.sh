#!/bin/sh
# SPDX-License-Identifier: MIT
# Model and agent steps run by the coordinator (issue 14), end to end: real
# PostgreSQL, Redis and an autoosd node, the provider stand-in
# (tests/fabric/provider-standin.py) as three providers (a: OpenAI, b:
# Anthropic, c: OpenAI).
#  - Without a fabric setting a model step is refused at submission, naming it.
#  - A model step, a verified model step (the verifier a different provider)
#    whose answer reaches a dependent run step as its input file, and an agent
#    step whose tool call runs in a real sandbox on the node, its output back
#    to the model (the stand-in's request log); the fabric records, the audit
#    rows and the chain verified; the fabric's metrics in /metrics.
#  - A provider failing: the chain's next one answers (a fallback).
#  - A failed verification: recovery level 3, another provider of the chain.
#  - A workflow budget spent mid-agent: the step ends budget_exceeded, escalated.
#  - A workflow cancelled while its agent waits on a tool run: the run is
#    cancelled on the node and the agent ends without asking the model again.
#  - A coordinator killed during a model call: after its restart the step is
#    ready again and runs as a new attempt; one stopped with SIGTERM abandons
#    the call at once (fab_stop) and records nothing of it.
# The stand-in is scripted per scenario and the scenarios run one at a time,
# so that each provider's queue of replies is consumed in a known order.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
need_cmd python3

# --- without a fabric: refused -------------------------------------------------------------
fleet_up na

MODEL_ONLY='{"name":"m","steps":[{"id":"a","run":{"argv":["/bin/true"]}},{"id":"b","run":{"argv":["/bin/true"]}},{"id":"sum","kind":"model","model":{"prompt":"hi","max_tokens":16}}]}'
api POST /v1/workflows "$MODEL_ONLY"
is "$HTTP_STATUS" 400 "without a fabric setting, a model step is refused"
is "$(jf .error.field "$RESP")" "steps[2]" "naming the step's place"
like "$(jf .error.message "$RESP")" "steps\[2\]: model steps need model providers: this coordinator has no fabric setting \(step 'sum'\)" \
        "and saying why"

# --- the stand-in and a coordinator with a fabric -----------------------------------------
python3 "$top_srcdir/tests/fabric/provider-standin.py" --port-file "$TEST_TMP/standin.port" \
        >"$TEST_TMP/standin.log" 2>&1 &
fleet_bg $!
_port_ready() { [ -s "$TEST_TMP/standin.port" ]; }
wait_for 60 _port_ready || bail_out "the provider stand-in did not start"
SP=$(cat "$TEST_TMP/standin.port")
SURL=http://127.0.0.1:$SP
cat >"$TEST_TMP/fabric.json" <<EOF
{"providers":{
  "a":{"kind":"openai","base_url":"$SURL/a","max_retries":0,"cooldown_ms":0,"models":{"m1":{"input":1,"output":4}}},
  "b":{"kind":"anthropic","base_url":"$SURL/b","max_retries":0,"cooldown_ms":0,"models":{"claude-x":{"input":3,"output":15}}},
  "c":{"kind":"openai","base_url":"$SURL/c","max_retries":0,"cooldown_ms":0,"models":{"m3":{"input":1,"output":1}}}},
 "roles":{
  "executor":[{"provider":"a","model":"m1"},{"provider":"b","model":"claude-x"},{"provider":"c","model":"m3"}],
  "verifier":[{"provider":"b","model":"claude-x"},{"provider":"a","model":"m1"}]},
 "retry":{"backoff_base_ms":10}}
EOF
printf '%s\n' "fabric = $TEST_TMP/fabric.json" "model_workers = 2" >>"$FLEET_CONF"
coord_kill c1
wait_for 15 _fl_dead "$(coord_pid c1)"
coord_start c1 || bail_out "the coordinator with a fabric did not start"

# script JSON: the stand-in's replies per provider (and an empty request log).
script() {
        _sr=$(curl -s -X POST --data-binary "$1" "$SURL/_script")
        [ "$(jf .ok "$_sr")" = true ] || diag "stand-in script: $_sr"
}
standin_log() {
        curl -s "$SURL/_log"
}
fabric_of() { # ID STEP FILTER
        wf_json "$1" | jq -r --arg s "$2" ".steps[] | select(.id == \$s) | .fabric | $3" 2>/dev/null
}

# --- a model step, a verified one feeding a run step, an agent with a sandboxed tool ---------
VERDICT_PASS='{"verdict":"pass","confidence":0.9,"reason":"it is right"}'
script "$(jq -cn --arg v "$VERDICT_PASS" '{
  a: [{text: "plan: count the apples"},
      {text: "42"},
      {tool_calls: [{id: "call_1", name: "count", arguments: "{\"text\": \"hello\"}"}]},
      {text: "the count is 5"}],
  b: [{text: $v}]}')"
TOOL='{"name":"count","description":"count the bytes of a text","parameters":{"type":"object","properties":{"text":{"type":"string","maxLength":100}},"required":["text"],"additionalProperties":false},"run":{"argv":["/bin/sh","-c","printf %s \"$1\" | wc -c","sh","{{args.text}}"]}}'
jq -cn --argjson tool "$TOOL" '{name: "model-agent", budget_usd: 5, steps: [
  {id: "fetch", run: {argv: ["/bin/sh", "-c", "echo 3 apples"]}},
  {id: "plan", kind: "model", needs: ["fetch"], model: {prompt: "Plan for: {{needs.fetch.stdout}}", max_tokens: 64}},
  {id: "checked", kind: "model", needs: ["plan"], model: {prompt: "Do: {{needs.plan.stdout}}", max_tokens: 64,
     verify: {criteria: "a number", min_confidence: 0.5}}},
  {id: "use", needs: ["checked"], run: {argv: ["/bin/sh", "-c", "cat /work/inputs/checked.stdout"]}},
  {id: "agent", kind: "agent", needs: ["use"], agent: {goal: "count the bytes of hello", tools: [$tool],
     limits: {turns: 4, wall_ms: 60000}}}]}' >"$TEST_TMP/main.json"
id=$(wf_submit "$TEST_TMP/main.json") || bail_out "the model workflow was not accepted"
ok "the workflow with model, verified model and agent steps succeeds" wf_wait "$id" succeeded 90
# The monitor never takes a coordinator's "fabric:" node for a lost autoosd.
is "$(psql_q "SELECT count(*) FROM nodes WHERE id LIKE 'fabric:%'")" 0 "no node row for the fabric workers"
is "$(step_field "$id" plan stdout)" "plan: count the apples" "the model step's answer is its stdout"
is "$(step_field "$id" checked stdout)" "42" "the verified step's answer"
is "$(step_field "$id" use stdout)" "42" "reached the dependent run step as /work/inputs/checked.stdout"
is "$(fabric_of "$id" checked '.provider + "/" + .verify.provider + "/" + .verify.verdict')" "a/b/pass" \
        "answered by a, verified by b (another provider): pass"
is "$(fabric_of "$id" checked .verify.confidence)" 0.9 "with the verifier's confidence"
is "$(fabric_of "$id" plan '.cost_usd > 0')" true "the model step's cost is recorded"
is "$(fabric_of "$id" plan .tokens.input)" 10 "and its tokens"
is "$(step_field "$id" agent stdout)" "the count is 5" "the agent's final answer is its stdout"
is "$(step_field "$id" agent.a1.t1-1 kind)" tool "its tool call is a step of kind tool"
is "$(step_field "$id" agent.a1.t1-1 stdout)" 5 "which ran in a sandbox: wc -c of 'hello'"
like "$(step_field "$id" agent.a1.t1-1 node)" "^na$" "on the node"
is "$(psql_q "SELECT outcome || ':' || exit_code FROM runs WHERE workflow_id = '$id' AND step_id = 'agent.a1.t1-1'")" \
        "exited:0" "the tool call's run row"
log=$(standin_log)
is "$(jf '[.[] | select(.prefix == "a")] | last | .body.messages | map(select(.role == "tool")) | .[0].content' "$log")" \
        5 "the tool's output went back to the model (the stand-in's log)"
is "$(jf '[.[] | select(.prefix == "a")] | .[0].body.messages | map(.content) | join(" ")' "$log" | grep -c '3 apples')" 1 \
        "the model step's prompt held its need's output"
is "$(fabric_of "$id" agent '.outcome + " " + (.tool_calls | tostring)')" "ok 1" "the agent's record: ok, one tool call"
a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "model_result")] | length' "$a")" 2 "a model_result audit row per model step"
is "$(jf '[.rows[] | select(.action == "agent_result")] | .[0].detail.outcome' "$a")" ok "an agent_result row"
is "$(jf '[.rows[] | select(.action == "tool_call")] | .[0].detail | .tool + " " + .status + " " + .run' "$a")" \
        "count ran $id.agent.a1.t1-1.1" "a tool_call row: tool, status and run"
is "$(jf '[.rows[] | select(.action == "tool_call")] | .[0].detail.arguments_sha256 | length' "$a")" 64 \
        "with the arguments' sha256"
is "$(audit_verified "$id")" true "the audit chain verifies"
api_as "" GET /metrics
like "$RESP" 'autoos_fabric_requests_total\{target="a/m1"\} 4' "/metrics has the fabric's requests per provider/model"
like "$RESP" 'autoos_coordinator_results_total' "beside the coordinator's own"

# --- a provider failing: the next of the chain ---------------------------------------------
script '{"a":[{"reply":"error","status":500,"message":"down"}],"b":[{"text":"from b"}]}'
id2=$(wf_submit '{"name":"fb","steps":[{"id":"m","kind":"model","model":{"prompt":"hi","max_tokens":16}}]}') ||
        bail_out "not accepted"
ok "a model step whose first provider fails succeeds" wf_wait "$id2" succeeded 60
is "$(step_field "$id2" m stdout)" "from b" "answered by the next provider"
is "$(fabric_of "$id2" m '.provider + " " + (.fallbacks | tostring)')" "b 1" "its record names b and one fallback"

# --- a failed verification: level 3, another provider --------------------------------------
VERDICT_FAIL='{"verdict":"fail","confidence":0.9,"reason":"wrong"}'
script "$(jq -cn --arg p "$VERDICT_PASS" --arg f "$VERDICT_FAIL" '{a: [{text: "wrong"}, {text: $p}],
  b: [{text: $f}, {text: "right"}]}')"
id3=$(wf_submit '{"name":"l3","steps":[{"id":"m","kind":"model","model":{"prompt":"2+2?","max_tokens":16,"verify":{"criteria":"correct"}}}]}') ||
        bail_out "not accepted"
ok "a model step failing verification succeeds on another provider" wf_wait "$id3" succeeded 60
is "$(step_field "$id3" m stdout)" right "the second provider's answer"
is "$(step_field "$id3" m attempt)" 2 "on attempt 2"
is "$(audit_count "$id3" provider_switched)" 1 "a provider_switched audit row (recovery level 3)"
is "$(fabric_of "$id3" m '.provider + "/" + .verify.provider')" "b/a" "answered by b, verified by a"
is "$(psql_q "SELECT string_agg(attempt || ':' || exit_code || ':' || (fabric->>'outcome'), ' ' ORDER BY attempt)
              FROM runs WHERE workflow_id = '$id3'")" "1:1:verify_failed 2:0:ok" "a run row per attempt"

# --- a budget spent mid-agent ----------------------------------------------------------------
script "$(jq -cn '{a: [{tool_calls: [{id: "c1", name: "count", arguments: "{\"text\": \"abc\"}"}],
  usage: {prompt_tokens: 100000, completion_tokens: 10}}, {text: "never asked"}]}')"
jq -cn --argjson tool "$TOOL" '{name: "budget", budget_usd: 0.1, steps: [
  {id: "agent", kind: "agent", agent: {goal: "count abc", tools: [$tool], limits: {turns: 4, wall_ms: 60000}}}]}' \
        >"$TEST_TMP/budget.json"
id4=$(wf_submit "$TEST_TMP/budget.json") || bail_out "not accepted"
ok "an agent whose workflow budget is spent mid-way ends awaiting a human" step_wait "$id4" agent awaiting_human 60
like "$(step_field "$id4" agent error)" "^budget_exceeded: .*budget" "its error says the budget was exceeded"
is "$(fabric_of "$id4" agent .outcome)" budget_exceeded "its record: budget_exceeded"
# The turn that spent the budget asked for a tool: no model would see its output, so it does not run.
is "$(psql_q "SELECT count(*) FROM steps WHERE workflow_id = '$id4' AND kind = 'tool'")" 0 \
        "the spending turn's tool call did not run"
is "$(jf '[.[] | select(.prefix == "a")] | length' "$(standin_log)")" 1 "and no second model call was made"

# --- a workflow cancelled while its agent waits on a tool run ----------------------------------
script "$(jq -cn '{a: [{tool_calls: [{id: "c1", name: "wait", arguments: "{}"}]}, {text: "never asked"}]}')"
jq -cn '{name: "cancel", steps: [{id: "agent", kind: "agent", agent: {goal: "wait", tools: [{name: "wait",
  parameters: {type: "object"}, run: {argv: ["/bin/sleep", "60"]}}], limits: {turns: 4, wall_ms: 120000}}}]}' \
        >"$TEST_TMP/cancel.json"
id6=$(wf_submit "$TEST_TMP/cancel.json") || bail_out "not accepted"
ok "the agent's tool run is under way on the node" step_wait "$id6" agent.a1.t1-1 dispatched 30
t0=$(now_ms)
api POST "/v1/workflows/$id6/cancel"
is "$HTTP_STATUS" 200 "cancel: 200"
_agent_ended() { [ "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id6' AND step_id = 'agent'")" = 1 ]; }
ok "the agent stops waiting and ends" wait_for 30 _agent_ended
diag "the agent ended $(($(now_ms) - t0)) ms after the cancel"
is "$(wf_state "$id6")" cancelled "the workflow stays cancelled"
is "$(step_field "$id6" agent.a1.t1-1 state)" cancelled "the tool step is cancelled"
is "$(jf '[.[] | select(.prefix == "a")] | length' "$(standin_log)")" 1 "and the model is not asked again"
is "$(psql_q "SELECT fabric->>'outcome' FROM runs WHERE workflow_id = '$id6' AND step_id = 'agent'")" \
        budget_exceeded "(a cancelled workflow may spend nothing more)"

# --- a coordinator killed mid-call: the step is ready again after its restart -----------------
script '{"a":[{"text":"too late","delay_ms":4000},{"text":"after the restart"}]}'
id5=$(wf_submit '{"name":"restart","steps":[{"id":"m","kind":"model","model":{"prompt":"hi","max_tokens":16}}]}') ||
        bail_out "not accepted"
_called() { [ "$(jf 'length' "$(standin_log)")" -ge 1 ]; }
ok "the model call is under way" wait_for 30 _called
coord_kill c1 KILL
wait_for 15 _fl_dead "$(coord_pid c1)"
coord_start c1 || bail_out "the coordinator did not start again"
ok "after a restart, the step lost mid-call runs again and succeeds" wf_wait "$id5" succeeded 60
is "$(step_field "$id5" m stdout)" "after the restart" "with the new call's answer"
is "$(step_field "$id5" m attempt)" 2 "as attempt 2"
is "$(audit_count "$id5" fabric_call_lost)" 1 "a fabric_call_lost audit row"

# --- a coordinator stopped (SIGTERM) mid-call: it stops at once, the step runs again after ------
script '{"a":[{"text":"far too late","delay_ms":30000},{"text":"after the stop"}]}'
id7=$(wf_submit '{"name":"stop","steps":[{"id":"m","kind":"model","model":{"prompt":"hi","max_tokens":16}}]}') ||
        bail_out "not accepted"
ok "the model call is under way" wait_for 30 _called
t0=$(now_ms)
coord_kill c1 TERM
ok "the coordinator stops without waiting for the provider" wait_for 20 _fl_dead "$(coord_pid c1)"
diag "it stopped $(($(now_ms) - t0)) ms after SIGTERM (the provider would answer after 30 s)"
coord_start c1 || bail_out "the coordinator did not start again"
ok "after the restart the step runs again and succeeds" wf_wait "$id7" succeeded 60
is "$(step_field "$id7" m stdout)" "after the stop" "with the new call's answer"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id7'")" 1 "the abandoned call left no run row"

fleet_finish
