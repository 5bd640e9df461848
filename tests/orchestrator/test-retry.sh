#!/bin/sh
# SPDX-License-Identifier: MIT
# Recovery level 1: a step that fails on its first three attempts succeeds on
# the fourth (max_attempts 4); the retries are in the audit trail with a
# growing backoff, each honoured before the next dispatch, and with two nodes
# each retry avoided the node that just failed. A step that never succeeds
# stops after max_attempts.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb

# AUTOOS_ATTEMPT, AUTOOS_STEP and AUTOOS_WORKFLOW are in each run's environment.
workflow retry \
        "$(sh_step flaky 'echo "try $AUTOOS_ATTEMPT of $AUTOOS_STEP in $AUTOOS_WORKFLOW"; [ "$AUTOOS_ATTEMPT" -ge 4 ] || exit 1' \
                '{"retry":{"max_attempts":4,"backoff_ms":300,"max_backoff_ms":5000}}')" \
        "$(sh_step after 'cat /work/inputs/flaky.stdout' '{"needs":["flaky"]}')" >"$TEST_TMP/retry.json"
id=$(wf_submit "$TEST_TMP/retry.json") || bail_out "not accepted"
ok "the workflow succeeds after the retries" wf_wait "$id" succeeded 30
is "$(step_field "$id" flaky state)" succeeded "the flaky step succeeded"
is "$(step_field "$id" flaky attempt)" 4 "on attempt 4"
is "$(step_field "$id" flaky stdout)" "try 4 of flaky in $id" \
        "the run saw AUTOOS_ATTEMPT, AUTOOS_STEP and AUTOOS_WORKFLOW"
is "$(step_field "$id" after stdout)" "try 4 of flaky in $id" "its dependent got the successful attempt's output"

# One run row per attempt, outcome and exit code of each.
is "$(psql_q "SELECT string_agg(attempt || ':' || outcome || ':' || exit_code, ' ' ORDER BY attempt)
              FROM runs WHERE workflow_id = '$id' AND step_id = 'flaky'")" \
        "1:exited:1 2:exited:1 3:exited:1 4:exited:0" "runs: one row per attempt"
nodes=$(psql_q "SELECT string_agg(node, ' ' ORDER BY attempt) FROM runs WHERE workflow_id = '$id' AND step_id = 'flaky'")
set -- $nodes
isnt "$2" "$1" "attempt 2 avoided attempt 1's node ($nodes)"
isnt "$3" "$2" "attempt 3 avoided attempt 2's node"
isnt "$4" "$3" "attempt 4 avoided attempt 3's node"

a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "retry_scheduled")] | length' "$a")" 3 "three retry_scheduled rows"
b=$(jf '[.rows[] | select(.action == "retry_scheduled") | .detail.backoff_ms | tostring] | join(" ")' "$a")
set -- $b
diag "backoffs: $b"
cmp_ok "${1:-x}" '>' 0 "the first backoff is positive"
cmp_ok "${3:-x}" '>' "${1:-x}" "the backoff grows ($b)"
cmp_ok "${3:-x}" '<=' 5000 "and stays within max_backoff_ms"
# Each retry's dispatch came at least its backoff after it was scheduled. The
# backoff counts from the start of the transaction that wrote the row, the row's
# time from its insert at the end of it: 30 ms of slack, scaled to this host's
# speed (AUTOOS_TIME_SCALE: on a loaded host that transaction took 110 ms).
slack=$(time_bound 30)
gaps=$(jf '[.rows[] | select(.action == "retry_scheduled" or (.action == "dispatched" and
        ((.detail.attempt // 0) > 1)))] | [range(0; length; 2) as $i | [.[$i], .[$i + 1]]]
        | map(if .[0].action == "retry_scheduled" and .[1].action == "dispatched"
              then ((.[1].ts_epoch_us - .[0].ts_epoch_us) / 1000 | floor) - .[0].detail.backoff_ms
              else "misordered" end) | map(tostring) | join(" ")' "$a")
diag "dispatch time minus backoff (ms): $gaps"
is "$(printf '%s\n' $gaps | awk -v s="$slack" '$1 !~ /^-?[0-9]+$/ || $1 < -s { bad++ } END { print NR, bad + 0 }')" "3 0" \
        "each retry was dispatched no earlier than its backoff (slack $slack ms)"
is "$(audit_verified "$id")" true "the chain verifies"

# A step that never succeeds stops after max_attempts, without a fallback: awaiting_human.
workflow doomed "$(sh_step never 'exit 9' '{"retry":{"max_attempts":2,"backoff_ms":100}}')" >"$TEST_TMP/doomed.json"
id2=$(wf_submit "$TEST_TMP/doomed.json") || bail_out "not accepted"
ok "a step failing every attempt ends awaiting_human" step_wait "$id2" never awaiting_human 20
is "$(step_field "$id2" never attempt)" 2 "after exactly max_attempts (2)"
sleep 0.5
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id2'")" 2 "and no third run"
is "$(audit_count "$id2" retry_scheduled)" 1 "one retry_scheduled row"

fleet_finish
