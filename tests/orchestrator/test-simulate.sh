#!/bin/sh
# SPDX-License-Identifier: MIT
# POST /v1/workflows/simulate: before any history every step is a
# 'no_history' risk with null estimates; after runs of the same programs it
# gives p50/p95 and a success probability per step, the critical path and its
# duration; failing history is a 'high_failure_rate' risk, an elevated trust
# step an 'elevated_trust' risk, an approval an 'approval' risk; a viewer may
# simulate, and nothing is stored.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb
VIEWER=$(key_create watcher viewer)

# a -> slow -> end, a -> quick -> end: the critical path goes through slow.
workflow sim \
        "$(sh_step a 'echo a')" \
        "$(sh_step slow 'sleep 0.6; echo slow' '{"needs":["a"]}')" \
        "$(sh_step quick 'echo quick' '{"needs":["a"]}')" \
        "$(sh_step end 'echo end' '{"needs":["slow","quick"]}')" >"$TEST_TMP/sim.json"

counts() {
        psql_q "SELECT (SELECT count(*) FROM workflows) || ' ' || (SELECT count(*) FROM steps) || ' ' ||
                (SELECT count(*) FROM runs) || ' ' || (SELECT count(*) FROM audit_log)"
}
c0=$(counts)
api_as "$VIEWER" POST /v1/workflows/simulate "@$TEST_TMP/sim.json"
is "$HTTP_STATUS" 200 "a viewer may simulate: 200"
s=$RESP
is "$(jf .name "$s")" sim "the answer names the workflow"
is "$(jf '[.steps[] | .id] | join(",")' "$s")" a,slow,quick,end "one estimate per step, in document order"
is "$(jf '[.steps[] | .history] | map(tostring) | join(",")' "$s")" 0,0,0,0 "no history yet"
is "$(jf '[.steps[] | .p50_ms, .p95_ms, .success_probability] | map(tostring) | unique | join(",")' "$s")" null \
        "p50, p95 and success probability are null without history"
is "$(jf '[.risks[] | select(.kind == "no_history") | .step] | sort | join(",")' "$s")" a,end,quick,slow \
        "every step is a no_history risk"
is "$(jf '.steps[] | select(.id == "slow") | .program' "$s")" "/bin/sh -c sleep 0.6; echo slow" \
        "the program is the argv joined by spaces"
is "$(counts)" "$c0" "simulate stored nothing"

# History: three runs of the workflow.
for i in 1 2 3; do
        id=$(wf_submit "$TEST_TMP/sim.json") || bail_out "not accepted"
        wf_wait "$id" succeeded 30 || bail_out "history run $i did not succeed"
done
# And a program that fails, twice (each escalates; cancelled afterwards).
for i in 1 2; do
        fid=$(wf_submit "$(workflow failing "$(sh_step f 'echo no; exit 4')")") || bail_out "not accepted"
        wf_wait "$fid" awaiting_human 20 || bail_out "the failing workflow did not escalate"
        api POST "/v1/workflows/$fid/cancel"
done

c1=$(counts)
api POST /v1/workflows/simulate "@$TEST_TMP/sim.json"
is "$HTTP_STATUS" 200 "simulate after history: 200"
s=$RESP
is "$(jf '[.steps[] | .history] | map(tostring) | join(",")' "$s")" 3,3,3,3 "three recorded runs of each program"
is "$(jf '[.steps[] | (.p50_ms | type), (.p95_ms | type)] | unique | join(",")' "$s")" number "p50 and p95 are numbers"
is "$(jf '[.steps[] | .p95_ms >= .p50_ms] | unique | map(tostring) | join(",")' "$s")" true "p95 >= p50 for each step"
cmp_ok "$(jf '.steps[] | select(.id == "slow") | .p50_ms' "$s")" '>=' 550 "slow's p50 reflects its 0.6 s"
cmp_ok "$(jf '.steps[] | select(.id == "quick") | .p50_ms' "$s")" '<' \
        "$(jf '.steps[] | select(.id == "slow") | .p50_ms' "$s")" "quick's p50 is below slow's"
is "$(jf '[.steps[] | .success_probability] | map(tostring) | unique | join(",")' "$s")" 1 \
        "success probability 1 for programs that always succeeded"
is "$(jf '.critical_path.steps | join(",")' "$s")" a,slow,end "the critical path goes through slow"
p50=$(jf .critical_path.p50_ms "$s")
sum=$(jf '[.steps[] | select(.id == "a" or .id == "slow" or .id == "end") | .p50_ms] | add' "$s")
cmp_ok "$p50" '>=' 550 "its p50 ($p50 ms) covers slow's"
cmp_ok "$p50" '<=' "$(awk -v s="$sum" 'BEGIN { print s + 1 }')" "and is at most the sum of its steps' p50 ($sum)"
cmp_ok "$(jf .critical_path.p95_ms "$s")" '>=' "$p50" "critical path p95 >= p50"
cmp_ok "$(jf .success_probability "$s")" '>' 0.99 "the workflow's success probability is ~1"
is "$(jf '[.risks[] | select(.kind == "no_history")] | length' "$s")" 0 "no no_history risk any more"
is "$(counts)" "$c1" "simulate stored nothing"

# Failing history, elevated trust, an approval.
risky=$(workflow risky \
        "$(sh_step f 'echo no; exit 4')" \
        "$(jq -cn '{id: "e", run: {argv: ["/bin/sh", "-c", "echo a"], trust: "elevated"}}')" \
        '{"id":"gate","kind":"approval","needs":["f","e"]}')
api POST /v1/workflows/simulate "$risky"
is "$HTTP_STATUS" 200 "simulate a risky workflow: 200"
s=$RESP
is "$(jf '.steps[] | select(.id == "f") | [.history, .success_probability] | map(tostring) | join(" ")' "$s")" "2 0" \
        "the failing program: history 2, success probability 0"
is "$(jf '[.risks[] | select(.step == "f") | .kind] | join(",")' "$s")" high_failure_rate "f is a high_failure_rate risk"
like "$(jf '[.risks[] | select(.step == "e") | .kind] | join(",")' "$s")" elevated_trust "e is an elevated_trust risk"
like "$(jf '[.risks[] | select(.step == "gate") | .kind] | join(",")' "$s")" approval "gate is an approval risk"
like "$(jf '.risks[0].message' "$s")" . "risks carry a message"
cmp_ok "$(jf '.success_probability' "$s")" '<' 0.5 "the workflow's success probability is low"
is "$(counts)" "$c1" "simulate stored nothing"

# Invalid documents are refused as on submission, still storing nothing.
api POST /v1/workflows/simulate "$(workflow bad "$(sh_step a 'true' '{"needs":["zz"]}')")"
is "$HTTP_STATUS" 400 "an invalid workflow: 400"
like "$(jf .error.message "$RESP")" zz "naming the problem"
api_as "" POST /v1/workflows/simulate "@$TEST_TMP/sim.json"
is "$HTTP_STATUS" 401 "no key: 401"
is "$(counts)" "$c1" "nothing stored"

fleet_finish
