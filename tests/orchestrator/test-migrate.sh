#!/bin/sh
# SPDX-License-Identifier: MIT
# autoos-coordinator --migrate applies sql/NNN_*.sql in order, each once, and
# records them; the coordinator refuses an unmigrated database; --create-key
# prints a key once and stores only its SHA-256.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
pg_start

migrate() { "$COORD" --config "$FLEET_CONF" --migrate --db "$PGURL" --sql-dir "${1:-$top_srcdir/sql}"; }

# An unmigrated database: the coordinator says what to do and exits 1.
"$COORD" --config "$FLEET_CONF" --db "$PGURL" --redis redis://127.0.0.1:1 --listen 127.0.0.1:0 \
        --sql-dir "$top_srcdir/sql" >"$TEST_TMP/refuse.out" 2>&1
is "$?" 1 "an unmigrated database: the coordinator does not start (exit 1)"
like "$(cat "$TEST_TMP/refuse.out")" "schema is at version 0.*run autoos-coordinator --migrate" \
        "and says to run --migrate"

latest=$(ls "$top_srcdir"/sql/[0-9][0-9][0-9]_*.sql | wc -l)
out=$(migrate 2>&1)
is "$?" 0 "--migrate exits 0"
like "$out" "applied $latest migrations" "it applied every migration ($out)"
is "$(psql_q 'SELECT string_agg(version::text, $$,$$ ORDER BY version) FROM schema_migrations')" \
        "$(seq -s, 1 "$latest")" "schema_migrations records each version in order"
is "$(psql_q "SELECT name FROM schema_migrations WHERE version = 1")" "001_init.sql" "with its file name"
out=$(migrate 2>&1)
like "$out" "applied 0 migrations" "a second --migrate applies nothing"
is "$(psql_q 'SELECT count(*) FROM schema_migrations')" "$latest" "and records nothing twice"

# A broken migration rolls back alone and stops the run.
mkdir "$TEST_TMP/sql"
cp "$top_srcdir"/sql/*.sql "$TEST_TMP/sql/"
printf 'CREATE TABLE half_done (x int);\nSELECT no_such_function();\n' >"$TEST_TMP/sql/900_broken.sql"
printf 'CREATE TABLE never (x int);\n' >"$TEST_TMP/sql/901_after.sql"
out=$(migrate "$TEST_TMP/sql" 2>&1)
isnt "$?" 0 "a failing migration: --migrate fails"
like "$out" "900_broken.sql.*no_such_function" "and names the file and the error"
is "$(psql_q "SELECT to_regclass('half_done') IS NULL AND to_regclass('never') IS NULL")" t \
        "its transaction rolled back and nothing after it ran"
is "$(psql_q 'SELECT max(version) FROM schema_migrations')" "$latest" "schema_migrations is unchanged"

# The schema 002 adds.
is "$(psql_q "SELECT count(*) FROM information_schema.columns WHERE table_name = 'steps'
        AND column_name IN ('output_b64', 'not_before', 'avoid_node', 'fallback_for', 'failures', 'escalate')")" 6 \
        "002 gives steps what the scheduler keeps"
ok "a step may be standby or replaced" psql_q "INSERT INTO workflows (id, name, spec) VALUES
        ('00000000-0000-0000-0000-00000000000a', 'm', '{}');
        INSERT INTO steps (workflow_id, step_id, state) VALUES
        ('00000000-0000-0000-0000-00000000000a', 's1', 'standby'),
        ('00000000-0000-0000-0000-00000000000a', 's2', 'replaced')"
isnt "$(psql_q "INSERT INTO steps (workflow_id, step_id, state) VALUES
        ('00000000-0000-0000-0000-00000000000a', 's3', 'bogus')" 2>&1)" "" "an unknown step state is refused"

# Keys: printed once, stored hashed.
key=$("$COORD" --config "$FLEET_CONF" --create-key alice --role operator --db "$PGURL" 2>"$TEST_TMP/key.err")
is "$?" 0 "--create-key exits 0"
like "$key" '^aok_[0-9a-f]{64}$' "it prints one key"
like "$(cat "$TEST_TMP/key.err")" "shown only this once" "and warns it is shown once"
is "$(psql_q "SELECT role FROM api_keys WHERE name = 'alice'")" operator "the key is stored with its role"
is "$(psql_q "SELECT encode(key_sha256, 'hex') FROM api_keys WHERE name = 'alice'")" \
        "$(printf '%s' "$key" | sha256sum | cut -d' ' -f1)" "as its SHA-256"
is "$(psql_q "SELECT count(*) FROM api_keys WHERE position('$key' IN key_sha256::text || name) > 0")" 0 \
        "and nowhere in clear"
is "$(psql_q "SELECT count(*) FROM audit_log WHERE workflow_id IS NULL AND action = 'key_created'
        AND detail->>'name' = 'alice'")" 1 "its creation is in the fleet's audit chain"
"$COORD" --config "$FLEET_CONF" --create-key alice --role viewer --db "$PGURL" >"$TEST_TMP/dup.out" 2>&1
is "$?" 1 "a second key named alice is refused"
like "$(cat "$TEST_TMP/dup.out")" "exists already" "saying the name exists"
"$COORD" --config "$FLEET_CONF" --create-key bob --role root --db "$PGURL" >"$TEST_TMP/role.out" 2>&1
is "$?" 2 "an unknown role is a usage error"
like "$(cat "$TEST_TMP/role.out")" "viewer, operator or admin" "naming the roles"
"$COORD" --config "$FLEET_CONF" --create-key bob --db "$PGURL" >"$TEST_TMP/norole.out" 2>&1
is "$?" 2 "--create-key without --role is a usage error"
is "$(psql_q "SELECT count(*) FROM api_keys")" 1 "no other key was stored"

done_testing
