#!/bin/sh
# SPDX-License-Identifier: MIT
# The daemon and coordinator groups of `autoosctl adversarial`
# (adversarial/fleet.c) against a live fleet (PostgreSQL, Redis, a
# coordinator, a node): every attack one test here, each contained, the node
# and the coordinator still the same processes afterwards, the jobs written
# cleaned up. Then the harness must be able to fail: a coordinator with a
# 1 GiB body limit makes the 413 attacks "not contained" and the command exit
# non-zero; so does a node whose policy has no real ceilings for the ceiling
# attack; a node that is not there is an error, not a pass.
#
# Node identity (issue 10): the attacks that test autoosd's parsing of specs
# write unsealed specs, as if they were the coordinator, so they run against
# node nd, which runs with bus_auth = off (it is not enrolled, and the
# coordinator believes none of its heartbeats, so it gets no work). The
# injected and forged jobs run against na, an enrolled node with bus_auth on,
# where they must be refused; against nd they must be reported not contained.
#
# The fleet group (node identity) attacks na's results, heartbeats and keys
# while its steps run, with nb as the other enrolled node (its key signs
# results for na's runs, its Redis ACL user reads na's keys): each must be
# refused, counted on /metrics, recorded (result_refused rows), and the
# workflows complete with their real output. Redis runs as doc/trust.md says
# (tests/lib-fleet.sh): a password on the default user, an ACL user per node.
# Then nb's ACL user opened to every key must make the ACL attack fail, and a
# coordinator and node without node identity (bus_auth = off) must make the
# forged result and heartbeat fail.
#
# Every attack gets --attack-timeout 20 s times AUTOOS_TIME_SCALE (tests/lib.sh),
# so the catalogue passes on a host 5x slower or with both CPUs busy.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up
node_start na "max_runs = 4" "labels = name=na" || bail_out "node na did not start"
node_start nb "max_runs = 4" "labels = name=nb" || bail_out "node nb did not start"
FLEET_BUS_AUTH=off node_start nd "max_runs = 4" || bail_out "node nd did not start"
VIEWER=$(key_create watcher viewer)
na_pid=$(node_pid na)
nb_pid=$(node_pid nb)
nd_pid=$(node_pid nd)
nd_started=$(rcli HGET autoos:node:nd started_at)
PARSER_ATTACKS=daemon-malformed-json,daemon-unknown-field,daemon-wrong-types,daemon-over-ceiling
PARSER_ATTACKS=$PARSER_ATTACKS,daemon-oversized-entry,daemon-unknown-entry-field,daemon-binary-garbage
PARSER_ATTACKS=$PARSER_ATTACKS,daemon-argv-invalid-utf8,daemon-output-nul-utf8,daemon-result-flood,daemon-job-flood
PARSER_ATTACKS=$PARSER_ATTACKS,daemon-duplicate-id,daemon-cancel-unknown,daemon-id-path-chars
IDENTITY_ATTACKS=daemon-injected-job,daemon-forged-job
FLEET_ATTACKS=fleet-forged-result,fleet-replayed-result,fleet-wrong-node-result,fleet-forged-heartbeat
FLEET_ATTACKS=$FLEET_ATTACKS,fleet-deleted-heartbeat,fleet-read-other-jobs,fleet-planted-result
c1_pid=$(coord_pid c1)
ATTACK_TIMEOUT=$((20 * AUTOOS_TIME_SCALE))

# adversarial OUT [OPTION]...: autoosctl adversarial --format json; the report in
# $TEST_TMP/OUT, stderr in $TEST_TMP/OUT.err, the exit status in ADV_RC.
adversarial() {
        _out=$1
        shift
        "$AUTOOSCTL" adversarial --format json --attack-timeout "$ATTACK_TIMEOUT" "$@" </dev/null \
                >"$TEST_TMP/$_out" 2>"$TEST_TMP/$_out.err"
        ADV_RC=$?
}

# rows OUT: the report's rows, one a line: group, name, verdict, expectation, observed, note (tab-separated).
rows() {
        jq -r '.attacks[] | [.group, .name, .verdict, .expectation, .observed, .note] | @tsv' "$TEST_TMP/$1" 2>/dev/null
}

# each_contained OUT: one test per row: contained passes, skipped is a SKIP, anything else fails.
each_contained() {
        _tab=$(printf '\t')
        rows "$1" >"$TEST_TMP/$1.rows"
        while IFS="$_tab" read -r _g _n _v _e _o _note; do
                case $_v in
                contained) tap_result 0 "$_g/$_n: $_e" ;;
                skipped) skip 1 "$_g/$_n: $_o" ;;
                *)
                        tap_result 1 "$_g/$_n: $_e"
                        diag "verdict $_v: $_o" ${_note:+"note: $_note"}
                        ;;
                esac
        done <"$TEST_TMP/$1.rows"
}

# verdict OUT NAME: one row's verdict.
verdict() {
        jq -r --arg n "$2" '.attacks[] | select(.name == $n) | .verdict' "$TEST_TMP/$1" 2>/dev/null
}

observed() {
        jq -r --arg n "$2" '.attacks[] | select(.name == $n) | .observed' "$TEST_TMP/$1" 2>/dev/null
}

count_group() {
        jq -r --arg g "$2" '[.attacks[] | select(.group == $g)] | length' "$TEST_TMP/$1" 2>/dev/null
}

# --- the daemon group: its parser against node nd through its Redis ----------------------
start=$(date +%s)
adversarial daemon.json --only "$PARSER_ATTACKS" --redis "$REDIS_URL" --node nd
took=$(($(date +%s) - start))
each_contained daemon.json
n=$(count_group daemon.json daemon)
cmp_ok "$n" '>=' 14 "the daemon group has at least 14 parser attacks ($n)"
is "$ADV_RC" 0 "autoosctl adversarial (the daemon's parser) exits 0"
[ "$ADV_RC" -eq 0 ] || diag "stderr: $(head -c 2000 "$TEST_TMP/daemon.json.err")"
cmp_ok "$took" '<=' $((120 * AUTOOS_TIME_SCALE)) "the daemon group took ${took}s (at most $((120 * AUTOOS_TIME_SCALE)))"
is "$(node_pid nd)" "$nd_pid" "node nd is the same process"
ok "node nd is still running" pid_alive "$nd_pid"
is "$(rcli HGET autoos:node:nd started_at)" "$nd_started" "and has not restarted (same started_at)"
is "$(rcli XLEN autoos:jobs:nd)" 0 "the jobs it was sent are deleted once answered (the 20 MiB entry too)"
is "$(rcli XPENDING autoos:jobs:nd autoosd | head -n 1)" 0 "none of them is left pending"

# --- the daemon group: jobs nobody sealed, against the enrolled node na -------------------------
adversarial identity.json --only "$IDENTITY_ATTACKS" --redis "$REDIS_URL" --node na
each_contained identity.json
is "$ADV_RC" 0 "autoosctl adversarial --only $IDENTITY_ATTACKS against na exits 0"
is "$(node_pid na)" "$na_pid" "node na is the same process"
is "$(rcli XPENDING autoos:jobs:na autoosd | head -n 1)" 0 "na acknowledged what it refused"
# The harness can fail: a node with bus_auth = off runs them.
adversarial identity-off.json --only "$IDENTITY_ATTACKS" --redis "$REDIS_URL" --node nd
isnt "$ADV_RC" 0 "against a node with bus_auth = off the command exits non-zero"
is "$(verdict identity-off.json daemon-injected-job)" not_contained "the injected job is reported not contained"
is "$(verdict identity-off.json daemon-forged-job)" not_contained "and so is the forged one"

# --- the fleet group: node identity, against na, nb the other node ----------------------------
start=$(date +%s)
adversarial fleet.json --only fleet --redis "$REDIS_URL" --node na --url "$COORD_URL" --key "$KEY" \
        --attacker-node nb --attacker-key "$TEST_TMP/node-nb/node.key" --db "$PGURL"
took=$(($(date +%s) - start))
each_contained fleet.json
n=$(count_group fleet.json fleet)
cmp_ok "$n" '>=' 7 "the fleet group has at least 7 attacks ($n)"
is "$ADV_RC" 0 "autoosctl adversarial --only fleet exits 0"
[ "$ADV_RC" -eq 0 ] || diag "stderr: $(head -c 2000 "$TEST_TMP/fleet.json.err")"
for _a in $(echo "$FLEET_ATTACKS" | tr , ' '); do
        is "$(verdict fleet.json "$_a")" contained "$_a ran (not skipped) and was contained"
done
cmp_ok "$took" '<=' $((150 * AUTOOS_TIME_SCALE)) "the fleet group took ${took}s (at most $((150 * AUTOOS_TIME_SCALE)))"
is "$(node_pid na)/$(node_pid nb)" "$na_pid/$nb_pid" "nodes na and nb are the same processes"
lost=$(psql_q "SELECT string_agg(to_timestamp(ts_epoch_us / 1e6)::text || ' ' || detail::text, '; ')
        FROM audit_log WHERE action = 'node_lost'")
is "$lost" "" "no node was declared lost"
cmp_ok "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'result_refused'")" '>=' 4 \
        "the refused results are in the audit trail"
# The harness can fail: nb's Redis user opened to every key and command.
rcli ACL SETUSER nb '~*' '+@all' >/dev/null
adversarial fleet-open.json --only fleet-read-other-jobs --redis "$REDIS_URL" --node na --url "$COORD_URL" \
        --key "$KEY" --attacker-node nb --attacker-key "$TEST_TMP/node-nb/node.key"
isnt "$ADV_RC" 0 "with nb's ACL user opened up the command exits non-zero"
is "$(verdict fleet-open.json fleet-read-other-jobs)" not_contained "the ACL attack is reported not contained"
like "$(observed fleet-open.json fleet-read-other-jobs)" 'XRANGE its jobs' "observed: nb read na's jobs"
redis_on_start
# Without --attacker-node the attacks that need another node's key are skipped, not passed.
adversarial fleet-alone.json --only fleet-wrong-node-result --redis "$REDIS_URL" --node na --url "$COORD_URL" \
        --key "$KEY"
is "$(verdict fleet-alone.json fleet-wrong-node-result)" skipped "without --attacker-node: skipped"

# --- the coordinator group, against c1 --------------------------------------------------------
start=$(date +%s)
# The audit attacks rewrite a trail as the schema's owner (PGURL) and judge with the coordinator's public key.
adversarial coord.json --only coordinator --url "$COORD_URL" --key "$KEY" --viewer-key "$VIEWER" \
        --db "$PGURL" --audit-pubkey "$AUDIT_PUB" --checkpoint-log "$(coord_log c1)"
took=$(($(date +%s) - start))
each_contained coord.json
n=$(count_group coord.json coordinator)
cmp_ok "$n" '>=' 15 "the coordinator group has at least 15 attacks ($n)"
is "$ADV_RC" 0 "autoosctl adversarial --only coordinator exits 0"
[ "$ADV_RC" -eq 0 ] || diag "stderr: $(head -c 2000 "$TEST_TMP/coord.json.err")"
cmp_ok "$took" '<=' $((120 * AUTOOS_TIME_SCALE)) "the coordinator group took ${took}s (at most $((120 * AUTOOS_TIME_SCALE)))"
# At the default rate (100/s, burst 200) the flood must be refused, not skipped.
is "$(verdict coord.json coordinator-rate-flood)" contained "at the default rate limit the flood is answered 429"
is "$(verdict coord.json coordinator-viewer-role)" contained "with a viewer key the role attack runs"
is "$(verdict coord.json coordinator-audit-rewrite)" contained "with --db and --audit-pubkey the rewrite attack runs"
is "$(verdict coord.json coordinator-audit-cut-tail)" contained "and so does the cut-tail attack"
is "$(coord_pid c1)" "$c1_pid" "coordinator c1 is the same process"

# --- the harness can fail -------------------------------------------------------------------------
# A coordinator that takes bodies of up to 1 GiB: both 413 attacks must say so.
coord_start c2 --max-body-bytes 1G || bail_out "coordinator c2 did not start"
C2_URL=$COORD_URL
adversarial weak-coord.json --only coordinator-body-announced,coordinator-body-chunked --url "$C2_URL" --key "$KEY"
isnt "$ADV_RC" 0 "against a 1 GiB body limit the command exits non-zero"
is "$(verdict weak-coord.json coordinator-body-announced)" not_contained \
        "the 64 MiB announced body is reported not contained"
like "$(observed weak-coord.json coordinator-body-announced)" '400 invalid_workflow, not 413' \
        "observed: it was read and answered 400, not 413"
is "$(verdict weak-coord.json coordinator-body-chunked)" not_contained "the 4 MiB chunked body too"
coord_kill c2
COORD_URL=$(coord_url c1)

# A node whose policy has no real ceilings: the ceiling attack must say so.
cat >"$TEST_TMP/node-nd/policy.json" <<'EOF'
{"levels":{"standard":{"ceilings":{"memory_bytes":4611686018427387904,"wall_ms":4611686018427387904,
 "output_bytes":4611686018427387904,"cpu_percent":1000000}}}}
EOF
reloaded() {
        [ "$(grep -c 'configuration and policy reloaded' "$TEST_TMP/node-nd.log")" -gt "$1" ]
}
before=$(grep -c 'configuration and policy reloaded' "$TEST_TMP/node-nd.log")
kill -HUP "$nd_pid"
if wait_for 10 reloaded "$before"; then
        adversarial weak-node.json --only daemon-over-ceiling --redis "$REDIS_URL" --node nd
        isnt "$ADV_RC" 0 "against a policy without ceilings the command exits non-zero"
        is "$(verdict weak-node.json daemon-over-ceiling)" not_contained "the ceiling attack is reported not contained"
        like "$(observed weak-node.json daemon-over-ceiling)" 'not rejected' "observed: the specs were not rejected"
else
        tap_result 1 "node nd reloaded the weakened policy"
        diag "$(tail -n 5 "$TEST_TMP/node-nd.log")"
fi
rm -f "$TEST_TMP/node-nd/policy.json"
before=$(grep -c 'configuration and policy reloaded' "$TEST_TMP/node-nd.log")
kill -HUP "$nd_pid"
ok "node nd is back on the built-in policy" wait_for 10 reloaded "$before"

# A node that is not there: errors, never a pass.
adversarial ghost.json --only daemon-malformed-json,daemon-cancel-unknown --redis "$REDIS_URL" --node ghost-$$
isnt "$ADV_RC" 0 "against a node without a heartbeat the command exits non-zero"
is "$(jq -r '[.attacks[].verdict] | unique | join(",")' "$TEST_TMP/ghost.json" 2>/dev/null)" error \
        "and every row is an error"
like "$(observed ghost.json daemon-malformed-json)" 'no heartbeat' "saying the node has no heartbeat"
is "$(rcli XLEN "autoos:jobs:ghost-$$")" 0 "nothing was written for it"

# The fleet group can fail: a fleet without node identity (a coordinator and
# node nd with bus_auth = off) takes the forged result and the forged heartbeat.
coord_kill c1
printf '%s\n' "fleet_key_file = $TEST_TMP/fleet.key" "bus_auth = off" >"$FLEET_CONF"
coord_start c3 || bail_out "coordinator c3 (bus_auth = off) did not start"
node_kill nd
FLEET_BUS_AUTH=off node_start nd "max_runs = 4" "labels = name=nd" || bail_out "node nd did not restart"
adversarial fleet-off.json --only fleet-forged-result,fleet-forged-heartbeat --redis "$REDIS_URL" --node nd \
        --url "$COORD_URL" --key "$KEY"
isnt "$ADV_RC" 0 "without node identity the fleet attacks exit non-zero"
is "$(verdict fleet-off.json fleet-forged-result)" not_contained "the forged result is reported not contained"
like "$(observed fleet-off.json fleet-forged-result)" "not the real 'real'" "observed: the forged output was taken"
is "$(verdict fleet-off.json fleet-forged-heartbeat)" not_contained "the forged heartbeat is reported not contained"

fleet_finish
