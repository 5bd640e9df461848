#!/bin/sh
# SPDX-License-Identifier: MIT
# The audit trail is tamper-evident: a row altered (or removed) by a superuser
# who bypassed the triggers makes verification name the first bad seq, through
# the API and through `autoosctl audit ID --verify` (exit 1, "seq N"); the
# other workflows still verify; UPDATE, DELETE and TRUNCATE by the normal path
# are refused, and the application role may only INSERT and SELECT.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na

doc=$(workflow tamper "$(sh_step a 'echo a')" "$(sh_step b 'echo b' '{"needs":["a"]}')")
id1=$(wf_submit "$doc") || bail_out "not accepted"
id2=$(wf_submit "$doc") || bail_out "not accepted"
id3=$(wf_submit "$doc") || bail_out "not accepted"
for id in $id1 $id2 $id3; do
        wf_wait "$id" succeeded 20 || bail_out "workflow $id did not succeed"
done
n1=$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id = '$id1'")
cmp_ok "$n1" '>=' 6 "the workflow has an audit trail ($n1 rows)"
is "$(audit_verified "$id1")" true "before: the chain verifies"
ctl audit "$id1" --verify >"$TEST_TMP/v0.out" 2>&1
is "$?" 0 "before: autoosctl audit --verify exits 0"

# The normal path: refused.
r=$(psql_q "UPDATE audit_log SET detail = '{}' WHERE workflow_id = '$id1' AND seq = 3" 2>&1)
like "$r" 'append-only' "UPDATE of an audit row is refused, even for the superuser"
r=$(psql_q "DELETE FROM audit_log WHERE workflow_id = '$id1' AND seq = 3" 2>&1)
like "$r" 'append-only' "DELETE is refused"
r=$(psql_q "TRUNCATE audit_log" 2>&1)
like "$r" 'append-only' "TRUNCATE is refused"
r=$(psql_q "SET ROLE autoos_app; UPDATE audit_log SET detail = '{}' WHERE workflow_id = '$id1' AND seq = 3" 2>&1)
like "$r" 'permission denied|append-only' "the application role cannot UPDATE either"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id = '$id1'")" "$n1" "the trail is unchanged"
is "$(audit_verified "$id1")" true "and still verifies"

# A superuser bypasses the triggers for one transaction and alters row 3's detail.
psql_q "BEGIN; SET LOCAL session_replication_role = replica;
        UPDATE audit_log SET detail = detail || '{\"tampered\": true}' WHERE workflow_id = '$id1' AND seq = 3;
        COMMIT;" >/dev/null 2>"$TEST_TMP/tamper.err" || bail_out "could not tamper: $(cat "$TEST_TMP/tamper.err")"
api GET "/v1/workflows/$id1/audit?verify=1"
v=$RESP
is "$HTTP_STATUS" 200 "GET .../audit?verify=1 still answers 200"
is "$(jf '.verify.ok' "$v")" false "the API says the chain does not verify"
is "$(jf '.verify.first_bad_seq' "$v")" 3 "and names seq 3, the altered row"
ctl audit "$id1" --verify >"$TEST_TMP/v1.out" 2>&1
is "$?" 1 "autoosctl audit ID --verify exits 1"
like "$(cat "$TEST_TMP/v1.out")" 'seq 3([^0-9]|$)' "and names seq 3"
is "$(audit_verified "$id2")" true "another workflow still verifies"
ctl audit "$id2" --verify >"$TEST_TMP/v2.out" 2>&1
is "$?" 0 "autoosctl says so too"

# A row removed from the middle of another chain (triggers disabled meanwhile).
psql_q "ALTER TABLE audit_log DISABLE TRIGGER USER;
        DELETE FROM audit_log WHERE workflow_id = '$id2' AND seq = 2;
        ALTER TABLE audit_log ENABLE TRIGGER USER;" >/dev/null 2>"$TEST_TMP/tamper.err" ||
        bail_out "could not delete: $(cat "$TEST_TMP/tamper.err")"
v=$(audit_json "$id2" verify)
is "$(jf '[.verify.ok, .verify.first_bad_seq] | map(tostring) | join(" ")' "$v")" "false 2" \
        "a removed row: verify names the missing seq 2"
ctl audit "$id2" --verify >"$TEST_TMP/v3.out" 2>&1
is "$?" 1 "autoosctl audit --verify exits 1"
like "$(cat "$TEST_TMP/v3.out")" 'seq 2([^0-9]|$)' "and names seq 2"

# A hash rewritten to match the altered row does not help: the next row's prev_hash breaks.
psql_q "BEGIN; SET LOCAL session_replication_role = replica;
        UPDATE audit_log SET detail = '{\"forged\": 1}',
               hash = sha256(prev_hash || autoos_audit_canonical(workflow_id, seq, ts_epoch_us, actor, action,
                                                                 '{\"forged\": 1}'))
         WHERE workflow_id = '$id3' AND seq = 2;
        COMMIT;" >/dev/null 2>"$TEST_TMP/tamper.err" || bail_out "could not forge: $(cat "$TEST_TMP/tamper.err")"
v=$(audit_json "$id3" verify)
is "$(jf '[.verify.ok, .verify.first_bad_seq] | map(tostring) | join(" ")' "$v")" "false 3" \
        "a row re-hashed after the change: verify names the next row, seq 3"

# The fleet keeps working and new trails verify.
id4=$(wf_submit "$doc") || bail_out "not accepted"
ok "a new workflow runs" wf_wait "$id4" succeeded 20
is "$(audit_verified "$id4")" true "its chain verifies"

fleet_finish
