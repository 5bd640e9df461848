#!/bin/sh
# SPDX-License-Identifier: MIT
# Secrets (issue 10 item 2, doc/trust.md "Secrets"), against a real PostgreSQL,
# Redis, coordinator and node:
# - only an admin creates, rotates, lists and deletes secrets; no answer holds a value;
# - a step names a secret, gets its value in its environment, and its output has
#   the value masked as *** (plain and base64), also in the node's result cache;
# - the value is nowhere in plain text: not in PostgreSQL (pg_dump), the audit
#   rows, the events, the coordinator's or the node's log, or any Redis key
#   (every key read, and the dump file after SAVE);
# - a rotated secret reaches the next run; a deleted one makes a submission
#   naming it refused, naming the step and the secret;
# - a spec whose secrets blob was altered, or moved to another run, is refused.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
printf '%s\n' "secret_key_file = $TEST_TMP/secret.key" >>"$FLEET_CONF"
pg_start
redis_start
ADMIN=$(key_create admin admin)
KEY=$(key_create operator operator)
coord_start c1 || bail_out "the coordinator did not start"
node_start n1 "max_runs = 4" || bail_out "n1 did not start"

# Values that cannot be in any file by chance.
V1=v1-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-one
# The second has what JSON escapes: a quote, a backslash, a tab, a non-ASCII letter.
V2=v2-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"-t\"w\\o	é"
V3=v3-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')-cli
absent() { # WHAT FILE: none of the values (nor V1 in base64, nor V2 as a JSON string) is in FILE
        _hits=$(grep -c -a -F -e "$V1" -e "$V2" -e "$V3" -e "$(printf %s "$V1" | base64)" \
                -e "$(printf %s "$V2" | jq -Rr @json | sed 's/^"//; s/"$//')" "$2")
        is "$_hits" 0 "no value in $1"
}
sha() {
        printf '%s' "$1" | sha256sum | cut -c1-64
}

# --- the admin API ------------------------------------------------------------------------------------
api_as "$KEY" PUT /v1/secrets/gh-token "{\"value\":\"$V1\"}"
is "$HTTP_STATUS" 403 "an operator may not create a secret (403)"
like "$RESP" 'manage secrets' "and is told why"
api_as "$ADMIN" PUT /v1/secrets/gh-token "{\"value\":\"$V1\"}"
is "$HTTP_STATUS" 201 "an admin creates secret gh-token (201)"
is "$(jf .version "$RESP")" 1 "at version 1"
unlike "$RESP" "$V1" "the answer does not hold the value"
is "$(stat -c %a "$TEST_TMP/secret.key")" 600 "the secret key file was made on first use, mode 0600"
printf '%s\n' "$V3" | "$COORD" --config "$FLEET_CONF" --db "$PGSVC_URL" --set-secret DEPLOY_KEY \
        >"$TEST_TMP/set.out" 2>&1
is "$?" 0 "autoos-coordinator --set-secret DEPLOY_KEY (value on stdin)"
like "$(cat "$TEST_TMP/set.out")" 'version 1' "it says the version"
api_as "$ADMIN" PUT /v1/secrets/big "{\"value\":\"$(head -c 70000 /dev/zero | tr '\0' x)\"}"
is "$HTTP_STATUS" 413 "a value over 64 KiB is refused (413)"
like "$RESP" 'over the limit of 65536 bytes' "with the limit in the message"
api_as "$ADMIN" PUT /v1/secrets/gh-token '{"val":"x"}'
is "$HTTP_STATUS" 400 "a body without value is refused (400)"
api_as "$ADMIN" PUT /v1/secrets/-bad '{"value":"x"}'
is "$HTTP_STATUS" 404 "a bad secret name is refused"
api_as "$ADMIN" POST /v1/secrets/gh-token '{"value":"x"}'
is "$HTTP_STATUS" 405 "POST is not a method on a secret"

api_as "$KEY" GET /v1/secrets
is "$HTTP_STATUS" 403 "an operator may not list secrets"
api_as "$ADMIN" GET /v1/secrets
is "$HTTP_STATUS" 200 "an admin lists secrets"
is "$(jf '[.secrets[].name] | join(",")' "$RESP")" "DEPLOY_KEY,gh-token" "names, in order"
is "$(jf '.secrets[] | select(.name == "gh-token") | "\(.version) \(.created_by)"' "$RESP")" "1 admin" \
        "with version and creator"
unlike "$RESP" "$V1|$V3" "and no value"

# --- a step that uses its secrets -----------------------------------------------------------------------------
# It proves it got the values (their sha256) without printing them, then prints them.
script='[ "$(printf %s "$GITHUB_TOKEN" | sha256sum | cut -c1-64)" = "$WANT" ] && echo match
echo "token=$GITHUB_TOKEN"; echo "err $GITHUB_TOKEN" >&2; printf %s "$GITHUB_TOKEN" | base64
[ "$(printf %s "$deploy_key" | sha256sum | cut -c1-64)" = "$WANT3" ] && echo match3; echo "$deploy_key"'
step() {
        sh_step "$1" "$script" "{\"run\":{\"env\":{\"WANT\":\"$2\",\"WANT3\":\"$(sha "$V3")\"},
                \"secrets\":{\"GITHUB_TOKEN\":\"gh-token\",\"deploy_key\":\"DEPLOY_KEY\"}}}"
}
id=$(wf_submit "$(workflow secrets "$(step a "$(sha "$V1")")")") || bail_out "submit failed"
ok "the workflow completes" wf_wait "$id" succeeded 30
out=$(step_field "$id" a stdout)
is "$(printf '%s\n' "$out" | sed -n 1p)" match "the step had the value in its environment"
is "$(printf '%s\n' "$out" | sed -n 2p)" "token=***" "its output has the value masked"
like "$(printf '%s\n' "$out" | sed -n 3p)" '^\*\*\*' "and its base64 form"
is "$(printf '%s\n' "$out" | sed -n '4,5p' | tr '\n' ' ')" "match3 *** " "a second secret, in deploy_key, too"
is "$(psql_q "SELECT result->>'stderr' FROM runs WHERE workflow_id = '$id' AND step_id = 'a'")" "err ***" \
        "stderr too (the run's stored result)"
cached=$(rcli GET "autoos:result:n1:$id.a.1")
like "$cached" 'token=\*\*\*' "the node's 24 h result cache holds the masked output"
entry=$(rcli XRANGE autoos:jobs:n1 - +)
like "$entry" '"secrets_sealed":"' "the job spec carries the sealed values"
like "$entry" '"secrets":\{[^}]*"GITHUB_TOKEN":"gh-token"' "and the names"
is "$(psql_q "SELECT spec->'secrets' FROM steps WHERE workflow_id = '$id' AND step_id = 'a'")" \
        '{"deploy_key": "DEPLOY_KEY", "GITHUB_TOKEN": "gh-token"}' "the stored step spec holds the names only"

# A list of names: VAR = NAME.
id2=$(wf_submit "$(workflow list "$(sh_step l 'echo "x${DEPLOY_KEY}x"' '{"run":{"secrets":["DEPLOY_KEY"]}}')")") ||
        diag "submit failed"
ok "a list of names is accepted" wf_wait "$id2" succeeded 30
is "$(step_field "$id2" l stdout)" "x***x" "and gives each in the variable of its name"
api POST /v1/workflows "$(workflow list "$(sh_step l 'true' '{"run":{"secrets":["gh-token"]}}')")"
is "$HTTP_STATUS" 400 "a list entry that is no variable name is refused"
like "$(jf .error.message "$RESP")" 'not a variable name' "saying so"

# --- refusals at submission ------------------------------------------------------------------------------------
api POST /v1/workflows "$(workflow nope "$(sh_step x 'true' '{"run":{"secrets":{"T":"no-such"}}}')")"
is "$HTTP_STATUS" 400 "a step naming an unknown secret is refused (400)"
like "$(jf .error.message "$RESP")" "step 'x' names secret 'no-such'" "naming the step and the secret"
is "$(jf .error.field "$RESP")" steps.x.run.secrets.T "and the field"
api POST /v1/workflows "$(workflow clash "$(sh_step x 'true' '{"run":{"env":{"T":"1"},"secrets":{"T":"gh-token"}}}')")"
is "$HTTP_STATUS" 400 "a variable both in env and in secrets is refused"
api POST /v1/workflows "$(workflow auto "$(sh_step x 'true' '{"run":{"secrets":{"AUTOOS_X":"gh-token"}}}')")"
is "$HTTP_STATUS" 400 "an AUTOOS_ variable is refused"

# --- rotation -------------------------------------------------------------------------------------------------
api_as "$ADMIN" PUT /v1/secrets/gh-token "$(jq -cn --arg v "$V2" '{value: $v}')"
is "$HTTP_STATUS" 200 "rotating gh-token (200)"
is "$(jf .version "$RESP")" 2 "to version 2"
id3=$(wf_submit "$(workflow rotated "$(step a "$(sha "$V2")")")") || bail_out "submit failed"
ok "the next workflow completes" wf_wait "$id3" succeeded 30
is "$(step_field "$id3" a stdout | sed -n 1,2p | tr '\n' ' ')" "match token=*** " \
        "the next run gets the new value, masked"

# --- tampering -----------------------------------------------------------------------------------------------
rcli XRANGE autoos:jobs:n1 - + >"$TEST_TMP/jobs.txt"
ln=$(grep -n -F "\"id\":\"$id3.a.1\"" "$TEST_TMP/jobs.txt" | head -n 1 | cut -d: -f1)
spec=$(sed -n "${ln}p" "$TEST_TMP/jobs.txt")
genuine="$(sed -n "$((ln + 2))p;$((ln + 4))p;$((ln + 6))p" "$TEST_TMP/jobs.txt" | tr '\n' ' ')"
blob=$(printf '%s' "$spec" | jq -r .secrets_sealed)
# One base64 digit changed, in the middle of the box.
mid=$((${#blob} / 2))
c=$(printf '%s' "$blob" | cut -c"$mid")
[ "$c" = A ] && n=B || n=A
bad_blob=$(printf '%s' "$blob" | cut -c1-$((mid - 1)))$n$(printf '%s' "$blob" | cut -c$((mid + 1))-)
tampered=$(printf '%s' "$spec" | jq -c --arg b "$bad_blob" '.secrets_sealed = $b')
set -- $genuine
rcli XADD autoos:jobs:n1 '*' spec "$tampered" token "$1" expires "$2" auth "$3" >/dev/null
ok "a spec whose blob was altered in Redis is refused by the job MAC" wait_for 10 grep -q 'refused (bad_mac)' \
        "$TEST_TMP/node-n1.log"
# Sealed again with n1's own key (someone holding it): the job MAC passes, the box does not open.
for case in altered moved; do
        rid=$id3.t$case.1
        if [ $case = altered ]; then
                s=$(printf '%s' "$tampered" | jq -c --arg r "$rid" '.id = $r | .step = "t"')
        else
                s=$(printf '%s' "$spec" | jq -c --arg r "$rid" '.id = $r | .step = "t"')
        fi
        seal=$(printf '%s' "$s" | "$top_builddir/tests/orchestrator/seal-job" "$TEST_TMP/node-n1/node.key" n1)
        set -- $seal
        rcli XADD autoos:jobs:n1 '*' spec "$s" token "$1" expires "$2" auth "$3" >/dev/null
        ok "the $case box's run has a result" wait_for 10 eval "[ -n \"\$(rcli GET 'autoos:result:n1:$rid')\" ]"
        r=$(rcli GET "autoos:result:n1:$rid" | sed 1d)
        is "$(jf .outcome "$r")" sandbox_error "a box $case is not opened: sandbox_error"
        like "$(jf .error "$r")" "secret ('gh-token' \\(for GITHUB_TOKEN\\)|'DEPLOY_KEY' \\(for deploy_key\\)) cannot be opened" \
                "naming the secret and its variable"
done

# --- a secret deleted after submission --------------------------------------------------------------------------
# b is dispatched only after gate (3 s), long after the DELETE below returned.
id4=$(wf_submit "$(workflow late "$(sh_step gate 'sleep 3')" \
        "$(sh_step b 'echo "$GITHUB_TOKEN"' '{"needs":["gate"],"run":{"secrets":{"GITHUB_TOKEN":"gh-token"}}}')")") ||
        bail_out "submit failed"
# --- deletion --------------------------------------------------------------------------------------------------
api_as "$KEY" DELETE /v1/secrets/gh-token
is "$HTTP_STATUS" 403 "an operator may not delete a secret"
api_as "$ADMIN" DELETE /v1/secrets/gh-token
is "$HTTP_STATUS" 200 "an admin deletes gh-token"
api_as "$ADMIN" DELETE /v1/secrets/gh-token
is "$HTTP_STATUS" 404 "deleting it again: 404"
ok "a step submitted before the deletion fails (moved, then escalated)" step_wait "$id4" b awaiting_human 60
like "$(step_field "$id4" b error)" "secret 'gh-token' \\(for GITHUB_TOKEN\\) was not delivered" \
        "its node says the secret was not delivered, naming it"
api POST /v1/workflows "$(workflow gone "$(step a x)")"
is "$HTTP_STATUS" 400 "a submission naming the deleted secret is refused"
like "$(jf .error.message "$RESP")" "step 'a' names secret 'gh-token'" "naming the step and the secret"
"$COORD" --config "$FLEET_CONF" --db "$PGSVC_URL" --delete-secret DEPLOY_KEY 2>>"$TEST_TMP/set.out"
is "$?" 0 "autoos-coordinator --delete-secret DEPLOY_KEY"
api_as "$ADMIN" GET /v1/secrets
is "$(jf '.secrets | length' "$RESP")" 0 "no secret is left"

# --- autoosctl secret (once cli/main.c runs cli/secret.c's cli_secret) ----------------------------------------------
sctl() {
        env AUTOOS_URL="$COORD_URL" AUTOOS_API_KEY="$ADMIN" "$AUTOOSCTL" secret "$@"
}
printf '%s\n' "$V3" | sctl set cli-token >"$TEST_TMP/ctl.out" 2>&1
is "$?" 0 "autoosctl secret set cli-token (value on stdin)"
like "$(cat "$TEST_TMP/ctl.out")" "secret 'cli-token' created \\(version 1\\)" "it says created, version 1"
printf '%s' "$V2" >"$TEST_TMP/value.txt"
sctl set cli-token --from-file "$TEST_TMP/value.txt" >>"$TEST_TMP/ctl.out" 2>&1
like "$(tail -n 1 "$TEST_TMP/ctl.out")" "rotated \\(version 2\\)" "--from-file rotates it"
sctl ls >>"$TEST_TMP/ctl.out" 2>&1
like "$(tail -n 1 "$TEST_TMP/ctl.out")" '^cli-token +2 ' "autoosctl secret ls lists it, at version 2"
env AUTOOS_URL="$COORD_URL" AUTOOS_API_KEY="$KEY" "$AUTOOSCTL" secret ls >/dev/null 2>&1
is "$?" 77 "with an operator key: refused (77)"
sctl rm cli-token >>"$TEST_TMP/ctl.out" 2>&1
is "$?" 0 "autoosctl secret rm cli-token"
absent "autoosctl's output" "$TEST_TMP/ctl.out"

# --- the audit trail ------------------------------------------------------------------------------------------------
is "$(psql_q "SELECT string_agg(actor || ':' || action || ':' || (detail->>'name') || ':' || (detail->>'version'), ' '
        ORDER BY seq) FROM audit_log WHERE workflow_id IS NULL AND action LIKE 'secret_%' AND detail->>'name' <> 'cli-token'")" \
        "admin:secret_created:gh-token:1 admin:secret_created:DEPLOY_KEY:1 admin:secret_rotated:gh-token:2 admin:secret_deleted:gh-token:2 admin:secret_deleted:DEPLOY_KEY:1" \
        "each change is a fleet audit row naming actor, secret and version"

# --- nowhere in plain text ---------------------------------------------------------------------------------------------
runuser -u postgres -- pg_dump -h 127.0.0.1 -p "$PGPORT" -U postgres postgres >"$TEST_TMP/dump.sql" 2>"$TEST_TMP/dump.err"
ok "pg_dump of the database" [ -s "$TEST_TMP/dump.sql" ]
absent "the database (pg_dump)" "$TEST_TMP/dump.sql"
psql_q "SELECT detail FROM audit_log" >"$TEST_TMP/audit.txt"
like "$(cat "$TEST_TMP/audit.txt")" 'gh-token' "the audit rows name the secrets"
absent "the audit rows" "$TEST_TMP/audit.txt"
rcli XRANGE autoos:events - + >"$TEST_TMP/events.txt"
ok "events were sent" [ -s "$TEST_TMP/events.txt" ]
absent "the events stream" "$TEST_TMP/events.txt"
absent "the coordinator's log" "$(coord_log c1)"
absent "the node's log" "$TEST_TMP/node-n1.log"
absent "autoos-coordinator --set-secret's output" "$TEST_TMP/set.out"
# Every Redis key, read by type.
: >"$TEST_TMP/redis-keys.txt"
for k in $(rcli --scan); do
        case $(rcli TYPE "$k") in
        string) rcli GET "$k" ;;
        hash) rcli HGETALL "$k" ;;
        set) rcli SMEMBERS "$k" ;;
        list) rcli LRANGE "$k" 0 -1 ;;
        zset) rcli ZRANGE "$k" 0 -1 ;;
        stream) rcli XRANGE "$k" - + ;;
        esac >>"$TEST_TMP/redis-keys.txt"
done
like "$(cat "$TEST_TMP/redis-keys.txt")" 'secrets_sealed' "the Redis keys were read (job specs among them)"
absent "any Redis key" "$TEST_TMP/redis-keys.txt"
rcli CONFIG SET rdbcompression no >/dev/null
rcli SAVE >/dev/null
ok "Redis saved its dump file" [ -s "$REDIS_DIR/dump.rdb" ]
absent "Redis's dump file" "$REDIS_DIR/dump.rdb"

fleet_finish
