#!/bin/sh
# SPDX-License-Identifier: MIT
# Node identity (issue 10): with every key configured as documented (enrolled
# nodes with node_key_file, the coordinator's fleet key, a Redis ACL user per
# node and a password on the default user), someone who can write to Redis but
# holds no node key gets no result applied and no job run:
# - a forged result for step a while it runs on n1 is refused, counted and
#   recorded, and the workflow completes with the real output;
# - a result sealed by n2 for n1's run, or claiming to be n1's, is refused;
# - a made-up job, a job sealed for another node and a replayed job are not run;
# - a forged heartbeat and a made-up node are ignored; deleting n1's heartbeat
#   key again and again does not make it lost;
# - a planted cached result is not sent on;
# - n2's Redis user cannot read n1's jobs, delete n1's heartbeat or read results;
# - a node given a new key is refused with its old one.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
REDIS_ACL=1
need_fleet
pg_start
redis_start
KEY=$(key_create operator operator)
coord_start c1 || bail_out "the coordinator did not start"
node_start n1 "max_runs = 4" "labels = name=n1" || bail_out "n1 did not start"
node_start n2 "max_runs = 4" "labels = name=n2" || bail_out "n2 did not start"

is "$(stat -c %a "$TEST_TMP/node-n1/node.key")" 600 "the node's key file is 0600"
is "$(stat -c %a "$TEST_TMP/fleet.key")" 600 "the fleet key file is 0600"
is "$(psql_q "SELECT count(*) FROM node_identities WHERE removed_at IS NULL")" 2 "two nodes enrolled"
like "$(psql_q "SELECT key_id FROM node_identities WHERE node = 'n1'")" '^[0-9a-f]{16}$' \
        "PostgreSQL holds the key's id, not the key"
"$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" --enroll-node n1 >"$TEST_TMP/again.out" 2>&1
isnt "$?" 0 "enrolling n1 twice is refused"

# metric NAME{LABELS}: its value on the coordinator's /metrics, 0 when absent.
metric() {
        curl -s "$COORD_URL/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
refused_rows() {
        psql_q "SELECT count(*) FROM audit_log WHERE action = 'result_refused' AND detail->>'reason' = '$1'"
}

# --- the scenario of the issue: a forged result while step a runs on n1 -------------------
id=$(wf_submit "$(workflow ident \
        "$(sh_step a 'sleep 2; echo real' '{"node_selector":{"name":"n1"}}')" \
        "$(sh_step b 'cat /work/inputs/a.stdout' '{"needs":["a"],"node_selector":{"name":"n2"}}')")") ||
        bail_out "submit failed"
step_wait "$id" a running 15 || step_wait "$id" a dispatched 5 || diag "a was not placed"
is "$(step_field "$id" a node)" n1 "a runs on n1"
forged=$(jq -cn --arg w "$id" '{id: ($w + ".a.1"), workflow: $w, step: "a", attempt: 1, node: "n1",
        outcome: "exited", exit_code: 0, signal: null, wall_ms: 1, cpu_ms: 1, memory_peak_bytes: 1, oom_kills: 0,
        stdout: "pwned\n", stderr: "", stdout_truncated: false, stderr_truncated: false, denied_syscalls: [],
        started_at: "2026-01-01T00:00:00Z", finished_at: "2026-01-01T00:00:01Z"}')
rcli XADD autoos:results '*' result "$forged" >/dev/null
# Sealed by n2 (which holds a key), as n2, for n1's run: a valid token for (run, n2) is not enough.
printf '%s' "$forged" | jq -c '.node = "n2"' >"$TEST_TMP/as-n2.json"
as_n2=$(cat "$TEST_TMP/as-n2.json")
seal=$(printf '%s' "$as_n2" | "$top_builddir/tests/orchestrator/seal-result" "$TEST_TMP/fleet.key" \
        "$TEST_TMP/node-n2/node.key" n2 "$id.a.1")
rcli XADD autoos:results '*' result "$as_n2" node n2 token "${seal%% *}" auth "${seal#* }" >/dev/null
# Sealed with n2's key but claiming to be n1.
seal=$(printf '%s' "$forged" | "$top_builddir/tests/orchestrator/seal-result" "$TEST_TMP/fleet.key" \
        "$TEST_TMP/node-n2/node.key" n1 "$id.a.1")
rcli XADD autoos:results '*' result "$forged" node n1 token "${seal%% *}" auth "${seal#* }" >/dev/null

ok "the workflow completes" wf_wait "$id" succeeded 30
is "$(step_field "$id" a stdout)" real "a's output is the real one"
is "$(step_field "$id" b stdout)" real "b read the real output from /work/inputs/a.stdout"
is "$(psql_q "SELECT string_agg(node || ':' || (result->>'stdout'), ',') FROM runs WHERE workflow_id = '$id'
        AND step_id = 'a'")" "n1:real" "one run row for a, from n1, with the real output"
ok "the unsigned result is counted" wait_for 5 eval '[ "$(metric "autoos_results_refused_total{reason=\"unsigned\"}")" -ge 1 ]'
is "$(metric 'autoos_results_refused_total{reason="wrong_node"}')" 1 "n2's result for n1's run is refused (wrong_node)"
is "$(metric 'autoos_results_refused_total{reason="bad_mac"}')" 1 "a result claiming n1 sealed with n2's key: bad_mac"
is "$(refused_rows unsigned)" 1 "a result_refused audit row for the forgery"
is "$(psql_q "SELECT (detail->>'node') || ' ' || (detail->>'run') FROM audit_log WHERE action = 'result_refused'
        AND detail->>'reason' = 'unsigned'")" "n1 $id.a.1" "naming the node it claimed and the run"
is "$(refused_rows wrong_node)/$(refused_rows bad_mac)" 1/1 "and one for each of the other two"
ok "the refusal is logged" grep -q 'refused (unsigned)' "$(coord_log c1)"

# --- a made-up job, a job sealed for n2, a replayed job -------------------------------------------
before=$(rcli XLEN autoos:results)
rcli XADD autoos:jobs:n1 '*' spec '{"id":"evil-1","argv":["/bin/sh","-c","echo pwned"],"trust":"privileged"}' >/dev/null
# A genuine entry of n2's stream, replayed onto n1's; and again onto n2's (a replay).
entry=$(rcli XRANGE autoos:jobs:n2 - + COUNT 1)
spec=$(printf '%s\n' "$entry" | sed -n 3p)
token=$(printf '%s\n' "$entry" | sed -n 5p)
expires=$(printf '%s\n' "$entry" | sed -n 7p)
auth=$(printf '%s\n' "$entry" | sed -n 9p)
like "$(printf '%s\n' "$entry" | sed -n '2p;4p;6p;8p' | tr '\n' ' ')" '^spec token expires auth $' \
        "a spec entry carries spec, token, expires and auth"
rcli XADD autoos:jobs:n1 '*' spec "$spec" token "$token" expires "$expires" auth "$auth" >/dev/null
rcli XADD autoos:jobs:n2 '*' spec "$spec" token "$token" expires "$expires" auth "$auth" >/dev/null
rcli XADD autoos:jobs:n1 '*' cancel "$id.a.1" >/dev/null
ok "n1 refuses the made-up job" wait_for 10 grep -q 'refused (unsigned)' "$TEST_TMP/node-n1.log"
ok "n1 refuses n2's job" wait_for 10 grep -q 'refused (bad_mac)' "$TEST_TMP/node-n1.log"
ok "n2 refuses the replay" wait_for 10 grep -q 'refused (replayed)' "$TEST_TMP/node-n2.log"
ok "n1's stream has nothing pending (refused entries are acknowledged)" wait_for 5 eval \
        '[ "$(rcli XPENDING autoos:jobs:n1 autoosd | head -n 1)" = 0 ]'
is "$(rcli XRANGE autoos:results - + | grep -c 'evil-1')" 0 "no result for the made-up job: it did not run"
is "$(rcli XLEN autoos:results)" "$before" "no result for any of them"

# --- heartbeats -----------------------------------------------------------------------------------
rcli SADD autoos:nodes ghost >/dev/null
rcli HSET autoos:node:ghost capacity 64 running 0 queued 0 labels name=n1 version x started_at x beat 1 state active \
        auth 0000000000000000000000000000000000000000000000000000000000000000 >/dev/null
rcli PEXPIRE autoos:node:ghost 60000 >/dev/null
ok "a made-up node's heartbeat is ignored (counted)" wait_for 5 eval \
        '[ "$(metric "autoos_heartbeats_refused_total{reason=\"unknown_node\"}")" -ge 1 ]'
api GET /v1/nodes
is "$(jf '[.nodes[] | select(.id == "ghost" and .state == "healthy")] | length' "$RESP")" 0 "and it is not a healthy node"
# n2 writes its whole hash again each second: forge it ten times over a second, so the monitor reads a forgery.
for _ in 1 2 3 4 5 6 7 8 9 10; do
        rcli HSET autoos:node:n2 capacity 999 labels name=evil beat 99999999 \
                auth 1111111111111111111111111111111111111111111111111111111111111111 >/dev/null
        sleep 0.1
done
ok "a forged heartbeat for n2 is refused (bad_mac)" wait_for 5 eval \
        '[ "$(metric "autoos_heartbeats_refused_total{reason=\"bad_mac\"}")" -ge 1 ]'
# Deleted three times, one node_timeout (2 s) apart: between deletions n1's own beats
# (one a second) come back and are read, so it is not lost. Deleting it every
# second, just after each beat, leaves the monitor (a read each 250 ms) almost
# nothing to read: n1 was lost that way at load 7. That is a denial of service,
# which someone who may write anything to Redis can always do (FLUSHALL); what is
# promised is that no one is believed without a key, and that a deletion does not
# make a node lost by itself. With ACLs a node cannot delete another's key at all:
# below.
for _ in 1 2 3; do
        rcli DEL autoos:node:n1 >/dev/null
        sleep 2
done
# n1's own: the forgeries of n2's hash above may well have made n2 look lost (garbage written
# over a node's key is a denial of service; what matters is that it was not believed).
is "$(psql_q "SELECT count(*) FROM audit_log WHERE action = 'node_lost' AND detail->>'node' = 'n1'")" 0 \
        "deleting n1's heartbeat key does not make it lost"
api GET /v1/nodes
is "$(jf '.nodes[] | select(.id == "n2") | .labels.name // .labels' "$RESP" | tr -d '"')" n2 \
        "n2's labels are its own, not the forged ones"

# --- a planted cached result ------------------------------------------------------------------------
id2=$(wf_submit "$(workflow plant "$(sh_step gate 'sleep 1')" \
        "$(sh_step p 'echo genuine' '{"needs":["gate"],"node_selector":{"name":"n1"}}')")") || bail_out "submit failed"
fake=$(jq -cn --arg w "$id2" '{id: ($w + ".p.1"), workflow: $w, step: "p", attempt: 1, node: "n1",
        outcome: "exited", exit_code: 0, signal: null, wall_ms: 1, cpu_ms: 1, memory_peak_bytes: 1, oom_kills: 0,
        stdout: "planted\n", stderr: "", stdout_truncated: false, stderr_truncated: false, denied_syscalls: [],
        started_at: "2026-01-01T00:00:00Z", finished_at: "2026-01-01T00:00:01Z"}')
rcli SET "autoos:result:n1:$id2.p.1" "$(printf 'x y\n%s' "$fake")" EX 600 >/dev/null
ok "the workflow with a planted result completes" wf_wait "$id2" succeeded 30
is "$(step_field "$id2" p stdout)" genuine "the step ran: the planted result was not sent on"
ok "n1 logs the planted result" grep -q 'not sealed by this node' "$TEST_TMP/node-n1.log"

# --- Redis ACLs: n2's user is confined to n2's keys ----------------------------------------------
acl=$("$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" --node-acl n2 2>/dev/null)
pw=$(printf '%s\n' "$acl" | sed -n 's/.* >\([0-9a-f]*\) .*/\1/p')
as_n2() {
        REDISCLI_AUTH=$pw redis-cli --user n2 -h 127.0.0.1 -p "$REDIS_PORT" --raw "$@" 2>&1
}
like "$(as_n2 PING)" PONG "n2's Redis user works"
like "$(as_n2 XRANGE autoos:jobs:n1 - +)" NOPERM "n2 cannot read n1's jobs"
like "$(as_n2 DEL autoos:node:n1)" NOPERM "n2 cannot delete n1's heartbeat"
like "$(as_n2 XRANGE autoos:results - +)" NOPERM "n2 cannot read the results stream"
like "$(as_n2 GET "autoos:result:n1:$id.a.1")" NOPERM "n2 cannot read n1's remembered results"
like "$(as_n2 SET "autoos:result:n1:x" y)" NOPERM "nor plant one"
unlike "$(as_n2 GET autoos:result:n2:none)" NOPERM "n2 reads its own remembered results"
like "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" --no-auth-warning -a wrong PING 2>&1)" 'WRONGPASS|NOAUTH|invalid' \
        "the default user needs its password"

# --- a new key for n2: the old one is refused ---------------------------------------------------------
# n2 may have been lost to the forgeries of its hash above: from healthy, count its losses from here.
n2_healthy() {
        api GET /v1/nodes
        [ "$(jf '.nodes[] | select(.id == "n2") | .state' "$RESP")" = healthy ]
}
n2_lost() {
        psql_q "SELECT count(*) FROM audit_log WHERE action = 'node_lost' AND detail->>'node' = 'n2'"
}
wait_for 20 n2_healthy || diag "n2 is not healthy before its new key"
n2_losses=$(n2_lost)
(umask 077 && "$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" --rekey-node n2 >"$TEST_TMP/n2.newkey" \
        2>>"$TEST_TMP/enroll.log")
is "$?" 0 "--rekey-node n2"
ok "n2, still on its old key, is declared lost" wait_for 20 eval '[ "$(n2_lost)" -gt "$n2_losses" ]'
node_kill n2
cp "$TEST_TMP/n2.newkey" "$TEST_TMP/node-n2/node.key"
node_start n2 || bail_out "n2 did not restart with its new key"
ok "with its new key n2 is healthy again" wait_for 10 n2_healthy
n2_losses=$(n2_lost)
"$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" --remove-node n2 2>>"$TEST_TMP/enroll.log"
is "$?" 0 "--remove-node n2"
ok "a removed node is lost" wait_for 20 eval '[ "$(n2_lost)" -gt "$n2_losses" ]'

# Credentials never reach a log: each node connects with its ACL user's password in its URL.
leaked=""
for f in "$TEST_TMP"/redis-acl/*; do
        [ -f "$f" ] || continue
        pw=$(sed -n 's/.* >\([0-9a-f]*\) .*/\1/p' "$f")
        [ -n "$pw" ] && grep -l -F "$pw" "$TEST_TMP"/node-*.log "$TEST_TMP"/coord*.log >/dev/null 2>&1 && leaked="$leaked $(basename "$f")"
done
if [ -d "$TEST_TMP/redis-acl" ]; then
        is "$leaked" "" "no node's Redis password is in any node or coordinator log"
else
        skip 1 "Redis runs without ACL users here (REDIS_ACL=0)"
fi

fleet_finish
