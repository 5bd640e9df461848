#!/bin/sh
# SPDX-License-Identifier: MIT
# Recovery level 4: a step with a declared fallback fails for good (max_attempts
# 1); the fallback (a standby until then) runs, the primary is 'replaced', and
# its dependents get the fallback's stdout as /work/inputs/<primary>.stdout.
# A fallback that is not needed never runs.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb

workflow fallback \
        "$(sh_step a 'sleep 1; echo from-a')" \
        "$(sh_step build 'echo primary-output; exit 7' '{"needs":["a"],"fallback":"build-lite"}')" \
        "$(sh_step build-lite 'echo "lite<$(cat /work/inputs/a.stdout)>"' '{"needs":["a"]}')" \
        "$(sh_step ship 'echo "shipping $(cat /work/inputs/build.stdout)"; ls /work/inputs' '{"needs":["build"]}')" \
        >"$TEST_TMP/fallback.json"
id=$(wf_submit "$TEST_TMP/fallback.json") || bail_out "not accepted"
is "$(step_field "$id" build-lite state)" standby "the fallback waits as 'standby' while it is not needed"
is "$(step_field "$id" build fallback)" build-lite "the primary names its fallback"
ok "the workflow succeeds" wf_wait "$id" succeeded 30
is "$(step_field "$id" build state)" replaced "the failed primary is 'replaced'"
is "$(step_field "$id" build attempt)" 1 "the primary ran once (max_attempts 1)"
is "$(step_field "$id" build exit_code)" 7 "its exit code is kept"
is "$(step_field "$id" build-lite state)" succeeded "the fallback succeeded"
is "$(step_field "$id" build-lite stdout)" "lite<from-a>" "the fallback got its own needs' outputs"
is "$(step_field "$id" ship stdout)" "shipping lite<from-a>
build.stdout" "the dependent read the fallback's stdout as inputs/build.stdout"
a=$(audit_json "$id")
is "$(jf '[.rows[] | select(.action == "fallback")] | length' "$a")" 1 "one 'fallback' audit row"
is "$(jf '[.rows[] | select(.action == "escalated")] | length' "$a")" 0 "no escalation"
is "$(jf '[.rows[] | select(.action == "retry_scheduled")] | length' "$a")" 0 "no retry (max_attempts 1)"
is "$(audit_verified "$id")" true "the chain verifies"

# A fallback not needed: never runs, ends not succeeded (standby or skipped).
workflow unneeded \
        "$(sh_step main 'echo fine' '{"fallback":"spare"}')" \
        "$(sh_step spare 'echo spare-ran')" \
        "$(sh_step next 'cat /work/inputs/main.stdout' '{"needs":["main"]}')" >"$TEST_TMP/unneeded.json"
id2=$(wf_submit "$TEST_TMP/unneeded.json") || bail_out "not accepted"
ok "with a successful primary the workflow succeeds" wf_wait "$id2" succeeded 30
is "$(step_field "$id2" next stdout)" fine "the dependent got the primary's output"
like "$(step_field "$id2" spare state)" '^(standby|skipped)$' "the unneeded fallback did not run ($(step_field "$id2" spare state))"
is "$(psql_q "SELECT count(*) FROM runs WHERE workflow_id = '$id2' AND step_id = 'spare'")" 0 "no run of it"

# A fallback that fails too: escalation.
workflow both-fail \
        "$(sh_step p 'exit 3' '{"fallback":"q"}')" \
        "$(sh_step q 'exit 4')" >"$TEST_TMP/bothfail.json"
id3=$(wf_submit "$TEST_TMP/bothfail.json") || bail_out "not accepted"
ok "primary and fallback failing: the workflow awaits a human" wf_wait "$id3" awaiting_human 30
like "$(wf_steps "$id3")" 'awaiting_human' "a step awaits a human ($(wf_steps "$id3"))"

fleet_finish
