#!/bin/sh
# SPDX-License-Identifier: MIT
# A diamond a -> (b, c) -> d on two real nodes: upstream stdout reaches each
# dependent as /work/inputs/<step>.stdout, every step succeeds, the workflow
# succeeds, the audit chain verifies (API and autoosctl), and
# `autoosctl submit FILE --wait` ends with status 0.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na nb

workflow diamond \
        "$(sh_step a 'echo A-$((40 + 2))')" \
        "$(sh_step b 'echo "B<$(cat /work/inputs/a.stdout)>"' '{"needs":["a"]}')" \
        "$(sh_step c 'echo "C<$(cat /work/inputs/a.stdout)>"' '{"needs":["a"]}')" \
        "$(sh_step d 'cat /work/inputs/b.stdout /work/inputs/c.stdout; ls /work/inputs | tr "\n" " "' \
                '{"needs":["b","c"]}')" >"$TEST_TMP/diamond.json"

id=$(wf_submit "$TEST_TMP/diamond.json") || bail_out "the diamond was not accepted"
like "$id" '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' "submit answers a uuid"
ok "the diamond succeeds" wf_wait "$id" succeeded 30

w=$(wf_json "$id")
is "$(jf '[.steps[] | "\(.id)=\(.state)"] | sort | join(" ")' "$w")" "a=succeeded b=succeeded c=succeeded d=succeeded" \
        "every step succeeded"
is "$(jf '[.steps[] | .exit_code] | map(tostring) | join(",")' "$w")" "0,0,0,0" "every step exited 0"
is "$(jf '[.steps[] | .outcome] | unique | join(",")' "$w")" exited "every outcome is 'exited'"
is "$(jf '[.steps[] | .node] | map(select(. == "na" or . == "nb")) | length' "$w")" 4 "every step ran on a node of the fleet"
is "$(jf '.steps[] | select(.id == "a") | .stdout' "$w")" "A-42" "a's stdout is recorded"
is "$(jf '.steps[] | select(.id == "b") | .stdout' "$w")" "B<A-42>" "b read a's stdout from /work/inputs/a.stdout"
is "$(jf '.steps[] | select(.id == "d") | .stdout' "$w")" "B<A-42>
C<A-42>
b.stdout c.stdout " "d read b's and c's stdout, and only its own needs are in /work/inputs"
is "$(jf '.steps[] | select(.id == "d") | .needs | join(",")' "$w")" "b,c" "d's needs are reported"

# Order: b and c were dispatched only after a's result, d after both.
a=$(audit_json "$id")
order=$(jf '[.rows[] | select(.action == "dispatched" or .action == "result")
        | "\(.action):\(.detail.step // .detail.step_id)"] | join(" ")' "$a")
pos() { printf '%s\n' "$order" | tr ' ' '\n' | grep -nx -- "$1" | head -n 1 | cut -d: -f1; }
cmp_ok "$(pos dispatched:b)" '>' "$(pos result:a)" "b was dispatched after a's result ($order)"
cmp_ok "$(pos dispatched:c)" '>' "$(pos result:a)" "c was dispatched after a's result"
cmp_ok "$(pos dispatched:d)" '>' "$(pos result:b)" "d was dispatched after b's result"
cmp_ok "$(pos dispatched:d)" '>' "$(pos result:c)" "d was dispatched after c's result"
is "$(jf '.rows[0].action' "$a")" submitted "the trail starts with 'submitted'"
is "$(jf '[.rows[] | select(.action == "result")] | length' "$a")" 4 "one 'result' row per step"
is "$(jf '.rows[-1].action' "$a")" workflow_finished "and ends with 'workflow_finished'"
is "$(jf '[.rows[] | .seq] | map(tostring) | join(",")' "$a")" \
        "$(jf '[range(1; (.rows | length) + 1)] | map(tostring) | join(",")' "$a")" "seq counts 1, 2, 3, ..."

v=$(audit_json "$id" verify)
is "$(jf '.verify.ok' "$v")" true "GET .../audit?verify=1: the chain verifies"
is "$(jf '.verify.first_bad_seq' "$v")" null "no bad row"
is "$(jf '.verify.rows' "$v")" "$(jf '.rows | length' "$a")" "every row was checked"

out=$(ctl audit "$id" --verify 2>&1)
rc=$?
is "$rc" 0 "autoosctl audit ID --verify exits 0"
[ "$rc" = 0 ] || diag "$out"
ctl status "$id" --json >"$TEST_TMP/status.json" 2>&1
is "$(jq -r .state "$TEST_TMP/status.json")" succeeded "autoosctl status --json says succeeded"

# The same document through autoosctl, waited for.
ctl submit "$TEST_TMP/diamond.json" --wait >"$TEST_TMP/submit.out" 2>&1
rc=$?
is "$rc" 0 "autoosctl submit FILE --wait exits 0 when the workflow succeeds"
[ "$rc" = 0 ] || diag "$(tail -n 10 "$TEST_TMP/submit.out")"
like "$(cat "$TEST_TMP/submit.out")" succeeded "and says it succeeded"
ctl list --json >"$TEST_TMP/list.json" 2>&1
is "$(jq -r '[.workflows[] | select(.name == "diamond" and .state == "succeeded")] | length' "$TEST_TMP/list.json")" 2 \
        "autoosctl list --json shows both diamonds succeeded"

fleet_finish
