#!/bin/sh
# SPDX-License-Identifier: MIT
# The signed audit trail (issue 10): PostgreSQL is not trusted to keep history
# honest. The coordinator runs as a role that only appends to audit_log, signs
# checkpoints of chain heads with an Ed25519 key held outside the database
# (in the same transaction as a workflow's last row, and every
# audit_checkpoint_interval), writes each checkpoint to its log too, and
# `autoosctl audit --verify` checks rows and signatures itself against the
# public key. A superuser who rewrites a row and rehashes the rest of the
# chain fools the server's own verify but not autoosctl; a cut-off tail is
# caught by the database's checkpoints, and by the log's when those were
# deleted too; an empty trail never verifies.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na

# svc SQL: as the service role autoos (what the coordinator connects as).
svc() {
        psql -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U autoos -d postgres -c "$1" 2>&1
}

# verify ID [ARG...]: autoosctl audit ID --verify; sets VOUT and VRC.
verify() {
        _vid=$1
        shift
        VOUT=$(ctl audit "$_vid" --verify "$@" 2>&1)
        VRC=$?
}

# --- the key ----------------------------------------------------------------------------------
is "$(stat -c %a "$AUDIT_KEY")" 600 "--create-audit-key writes the private key with mode 0600"
like "$(head -n 1 "$AUDIT_PUB")" 'BEGIN PUBLIC KEY' "and the public key beside it"
"$COORD" --create-audit-key "$AUDIT_KEY" >"$TEST_TMP/again.out" 2>&1
isnt "$?" 0 "it never overwrites a key"
like "$(cat "$TEST_TMP/again.out")" 'File exists' "saying the file exists"
key_id=$(sed -n 's/.*audit key \([0-9a-f]\{16\}\) written.*/\1/p' "$TEST_TMP/audit-key.log")
like "$key_id" '^[0-9a-f]{16}$' "it names the key by its id ($key_id)"
cp "$AUDIT_KEY" "$TEST_TMP/loose.key"
chmod 644 "$TEST_TMP/loose.key"
"$COORD" --config "$FLEET_CONF" --db "$PGSVC_URL" --audit-key "$TEST_TMP/loose.key" --redis "$REDIS_URL" \
        --listen 127.0.0.1:0 --sql-dir "$top_srcdir/sql" >"$TEST_TMP/loose.out" 2>&1 </dev/null
isnt "$?" 0 "a coordinator refuses an audit key others can read"
like "$(cat "$TEST_TMP/loose.out")" 'mode 0644' "naming the mode"

# --- the service role cannot switch the chain off ----------------------------------------------------
like "$(svc "ALTER TABLE audit_log DISABLE TRIGGER USER")" 'must be owner' \
        "the service role cannot DISABLE TRIGGER on audit_log"
like "$(svc "DROP TRIGGER audit_log_chain ON audit_log")" 'must be owner' "nor DROP TRIGGER"
like "$(svc "SET session_replication_role = replica")" 'permission denied' "nor turn triggers off for its session"
like "$(svc "CREATE OR REPLACE FUNCTION autoos_audit_verify(uuid) RETURNS int LANGUAGE sql AS 'SELECT NULL::int'")" \
        'must be owner|permission denied' "nor redefine autoos_audit_verify()"
like "$(svc "UPDATE audit_log SET detail = '{}' WHERE seq = 1")" 'permission denied' "nor UPDATE audit_log"
like "$(svc "DELETE FROM audit_log WHERE seq = 1")" 'permission denied' "nor DELETE from it"
like "$(svc "TRUNCATE audit_log")" 'permission denied' "nor TRUNCATE it"
like "$(svc "DELETE FROM audit_checkpoints")" 'permission denied' "nor DELETE checkpoints"
like "$(svc "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER")" 'must be owner' \
        "nor DISABLE TRIGGER on audit_checkpoints"
is "$(psql_q "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log'")" postgres \
        "audit_log belongs to the role --migrate ran as"
unlike "$(cat "$(coord_log c1)")" 'can disable the audit triggers' "the coordinator does not warn about its role"

# --- a workflow's trail, signed -------------------------------------------------------------------------
doc=$(workflow signed "$(sh_step a 'echo a')" "$(sh_step b 'echo b' '{"needs":["a"]}')" \
        "$(sh_step c 'echo c' '{"needs":["b"]}')")
id1=$(wf_submit "$doc") || bail_out "not accepted"
wf_wait "$id1" succeeded 30 || bail_out "workflow $id1 did not succeed"
a=$(audit_json "$id1")
n1=$(jf '.rows | length' "$a")
cmp_ok "$n1" '>=' 8 "the workflow has an audit trail ($n1 rows)"
is "$(jf '[.checkpoints[].seq] | max' "$a")" "$n1" \
        "the GET reply holds a checkpoint of the last row, committed with the workflow's end"
is "$(jf '[.checkpoints[].key_id] | unique | join(",")' "$a")" "$key_id" "signed by the coordinator's key"
is "$(jf '.checkpoints[-1] | (.signature | length), (.hash | length), .coordinator' "$a" | tr '\n' ' ')" \
        "128 64 c1 " "each with a 64-byte signature, a head hash and the coordinator's name"
has_log_line() {
        grep -F '"audit_checkpoint"' "$(coord_log c1)" | grep -F "\"$1\"" | grep -qF "\"seq\":$2,"
}
ok "the coordinator's log has the same checkpoint as a JSON line" wait_for 10 has_log_line "$id1" "$n1"
sig_db=$(jf '.checkpoints[-1].signature' "$a")
sig_log=$(grep -F '"audit_checkpoint"' "$(coord_log c1)" | grep -F "\"$id1\"" | grep -F "\"seq\":$n1," |
        tail -n 1 | sed 's/^[^{]*//' | jq -r '.audit_checkpoint.signature')
is "$sig_log" "$sig_db" "with the same signature"

verify "$id1"
is "$VRC" 0 "autoosctl audit --verify exits 0"
like "$VOUT" "chain verified: $n1 rows.*key $key_id" "chain verified, every row covered by the key's checkpoints"
verify "$id1" --checkpoint-log "$(coord_log c1)"
is "$VRC" 0 "and with the checkpoints of the coordinator's log too"
like "$VOUT" 'from the log' "counting those from the log"

# The signature is checked against the key given, not the one the database names.
"$COORD" --create-audit-key "$TEST_TMP/other.key" >/dev/null 2>&1
VOUT=$(ctl audit "$id1" --verify --audit-pubkey "$TEST_TMP/other.key.pub" 2>&1)
is "$?" 1 "against another public key the trail does not verify"
like "$VOUT" 'no checkpoint signed by key' "saying no checkpoint of that key exists"
VOUT=$(env -u AUTOOS_AUDIT_PUBKEY AUTOOS_URL="$COORD_URL" AUTOOS_API_KEY="$KEY" "$AUTOOSCTL" audit "$id1" --verify 2>&1)
is "$?" 2 "--verify without a public key is a usage error"
like "$VOUT" 'audit-pubkey' "naming --audit-pubkey"

# A forged checkpoint (the database's own idea of a signature) is caught.
psql_q "BEGIN; SET LOCAL session_replication_role = replica;
        UPDATE audit_checkpoints SET signature = sha512(signature) WHERE workflow_id = '$id1'
           AND seq = (SELECT max(seq) FROM audit_checkpoints WHERE workflow_id = '$id1'); COMMIT;" >/dev/null
verify "$id1"
is "$VRC" 1 "a checkpoint whose signature does not hold: exit 1"
like "$VOUT" "does not carry a valid signature" "named as such"

# --- the attacks ---------------------------------------------------------------------------------------
# A superuser rewrites row 2 and recomputes every later hash: the server's own check passes.
id2=$(wf_submit "$doc") || bail_out "not accepted"
wf_wait "$id2" succeeded 30 || bail_out "workflow $id2 did not succeed"
psql_q "BEGIN; SET LOCAL session_replication_role = replica;
        UPDATE audit_log SET detail = '{\"forged\": true}' WHERE workflow_id = '$id2' AND seq = 2;
        DO \$\$ DECLARE r record; p bytea; BEGIN
          FOR r IN SELECT id, seq FROM audit_log WHERE workflow_id = '$id2' AND seq >= 2 ORDER BY seq LOOP
            SELECT hash INTO p FROM audit_log WHERE workflow_id = '$id2' AND seq = r.seq - 1;
            UPDATE audit_log SET prev_hash = p, hash = sha256(p || autoos_audit_canonical(workflow_id, seq,
                   ts_epoch_us, actor, action, detail)) WHERE id = r.id;
          END LOOP; END \$\$;
        COMMIT;" >/dev/null 2>"$TEST_TMP/rehash.err" || bail_out "could not rehash: $(cat "$TEST_TMP/rehash.err")"
is "$(audit_verified "$id2")" true "a rewritten and rehashed trail fools the server's own verify"
verify "$id2"
is "$VRC" 1 "autoosctl audit --verify: exit 1"
like "$VOUT" 'chain BROKEN at seq [12]$' "naming the first row that can be wrong"
like "$VOUT" 'differ from what the checkpoint signed' "because the rows differ from a signed checkpoint"

# The last rows cut off (their checkpoints stay): the database's checkpoint names the cut.
id3=$(wf_submit "$doc") || bail_out "not accepted"
wf_wait "$id3" succeeded 30 || bail_out "workflow $id3 did not succeed"
n3=$(psql_q "SELECT max(seq) FROM audit_log WHERE workflow_id = '$id3'")
psql_q "ALTER TABLE audit_log DISABLE TRIGGER USER;
        DELETE FROM audit_log WHERE workflow_id = '$id3' AND seq > $n3 - 2;
        ALTER TABLE audit_log ENABLE TRIGGER USER;" >/dev/null 2>&1 || bail_out "could not cut"
is "$(audit_verified "$id3")" true "a cut-off tail fools the server's own verify"
verify "$id3"
is "$VRC" 1 "autoosctl audit --verify: exit 1"
like "$VOUT" "chain BROKEN at seq $((n3 - 1))\$" "naming the first missing row"
like "$VOUT" 'tail was cut off' "as a cut-off tail"

# The same, with the checkpoints deleted too: only the log's copy can tell.
id4=$(wf_submit "$doc") || bail_out "not accepted"
wf_wait "$id4" succeeded 30 || bail_out "workflow $id4 did not succeed"
ok "its last checkpoint is in the log" wait_for 10 has_log_line "$id4" \
        "$(psql_q "SELECT max(seq) FROM audit_log WHERE workflow_id = '$id4'")"
n4=$(psql_q "SELECT max(seq) FROM audit_log WHERE workflow_id = '$id4'")
psql_q "ALTER TABLE audit_log DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;
        DELETE FROM audit_log WHERE workflow_id = '$id4' AND seq > $n4 - 2;
        DELETE FROM audit_checkpoints WHERE workflow_id = '$id4' AND seq > $n4 - 2;
        ALTER TABLE audit_log ENABLE TRIGGER USER; ALTER TABLE audit_checkpoints ENABLE TRIGGER USER;" \
        >/dev/null 2>&1 || bail_out "could not cut"
verify "$id4" --checkpoint-log "$(coord_log c1)"
is "$VRC" 1 "rows and checkpoints cut: autoosctl with the log's checkpoints exits 1"
like "$VOUT" "chain BROKEN at seq $((n4 - 1))\$" "naming the first missing row"
like "$VOUT" "the log's checkpoint" "found through the log's checkpoint"

# A trail with no rows at all never verifies.
psql_q "ALTER TABLE audit_log DISABLE TRIGGER USER; ALTER TABLE audit_checkpoints DISABLE TRIGGER USER;
        DELETE FROM audit_log WHERE workflow_id = '$id4'; DELETE FROM audit_checkpoints WHERE workflow_id = '$id4';
        ALTER TABLE audit_log ENABLE TRIGGER USER; ALTER TABLE audit_checkpoints ENABLE TRIGGER USER;" \
        >/dev/null 2>&1 || bail_out "could not empty"
verify "$id4"
is "$VRC" 1 "an empty trail does not verify"
like "$VOUT" 'no audit rows' "saying it has no rows"
is "$(audit_json "$id4" verify | jq -r '[.verify.ok, .verify.first_bad_seq] | map(tostring) | join(" ")')" "false 1" \
        "nor by the server's own verify"

# --- checkpoints while a workflow runs, and of the fleet's chain ---------------------------------------
id5=$(wf_submit "$(workflow waits "$(sh_step a 'echo a')" '{"id":"gate","kind":"approval","needs":["a"]}')") ||
        bail_out "not accepted"
step_wait "$id5" gate awaiting_human 30 || bail_out "the approval step does not wait"
covered() {
        verify "$id5"
        [ "$VRC" = 0 ]
}
ok "a running workflow's rows are signed within the checkpoint interval" wait_for 15 covered
key_create late viewer >/dev/null
fleet_covered() {
        [ "$(psql_q "SELECT max(seq) FROM audit_checkpoints WHERE workflow_id IS NULL")" = \
                "$(psql_q "SELECT max(seq) FROM audit_log WHERE workflow_id IS NULL")" ]
}
ok "the fleet chain (key_created by another process) is signed too" wait_for 15 fleet_covered

# Rows that no coordinator signed (a trail from before the key, of a workflow last changed two days
# ago, which a starting coordinator does not look at): --audit-checkpoint-all covers them.
coord_kill c1
id6=00000000-0000-0000-0000-0000000000a6
psql_q "INSERT INTO workflows (id, name, spec, state, created_at, updated_at) VALUES
          ('$id6', 'old', '{}', 'succeeded', now() - interval '2 days', now() - interval '2 days');
        INSERT INTO audit_log (workflow_id, actor, action, detail) VALUES
          ('$id6', 'x', 'submitted', '{\"n\": 1.50, \"s\": \"é\\u0007\", \"ab\": [true, null], \"a\": {\"z\": 1e3}}'),
          ('$id6', 'x', 'workflow_finished', '{}');" >/dev/null || bail_out "could not insert old rows"
coord_start c1 || bail_out "c1 did not start again"
verify "$id6"
is "$VRC" 1 "rows nobody signed do not verify"
like "$VOUT" 'no checkpoint signed by key' "for want of a checkpoint"
out=$("$COORD" --config "$FLEET_CONF" --db "$PGSVC_URL" --audit-key "$AUDIT_KEY" --audit-checkpoint-all 2>&1)
is "$?" 0 "--audit-checkpoint-all exits 0 ($out)"
verify "$id6"
is "$VRC" 0 "then the old trail verifies, its rows hashed here exactly as PostgreSQL's jsonb prints them"
[ "$VRC" = 0 ] || diag "$VOUT"

# --- migrations: one numbered below a migration already applied still runs ------------------------------
psql_q "CREATE DATABASE m2" >/dev/null
mkdir "$TEST_TMP/sql-gap"
cp "$top_srcdir"/sql/*.sql "$TEST_TMP/sql-gap/"
rm "$TEST_TMP/sql-gap/002_coordinator.sql"
M2=postgresql://postgres@127.0.0.1:$PGPORT/m2
"$COORD" --config "$FLEET_CONF" --migrate --db-owner "$M2" --sql-dir "$TEST_TMP/sql-gap" >"$TEST_TMP/m2.out" 2>&1
is "$?" 0 "a schema migrated without 002 ($(cat "$TEST_TMP/m2.out"))"
"$COORD" --config "$FLEET_CONF" --db "$M2" --redis "$REDIS_URL" --listen 127.0.0.1:0 --sql-dir "$top_srcdir/sql" \
        >"$TEST_TMP/m2-start.out" 2>&1 </dev/null
is "$?" 1 "a coordinator refuses it while 002 is missing"
"$COORD" --config "$FLEET_CONF" --migrate --db-owner "$M2" --sql-dir "$top_srcdir/sql" >"$TEST_TMP/m2.out" 2>&1
like "$(cat "$TEST_TMP/m2.out")" 'applied 1 migration ' "--migrate then applies 002 alone, after the later ones"
is "$(psql -X -q -t -A -h 127.0.0.1 -p "$PGPORT" -U postgres -d m2 -c \
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'steps' AND column_name = 'output_b64'")" 1 \
        "and its columns are there"

fleet_finish
