#!/bin/sh
# SPDX-License-Identifier: MIT
# Tighter roles (issue 10 item 5): elevated runs need a role the policy
# names (admin by default) and privileged is off in the shipped policy;
# an approval comes from another key than the submitter's (unless
# approval_by_submitter = yes); a revoked key is refused from its next
# request on, on this coordinator and on another, whichever way it was
# revoked; failed authentication is throttled per client address, event
# streams are capped per key and connections per address.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
fleet_up na
ADMIN=$(key_create boss admin)
OP2=$(key_create second operator)

elevated_wf() {
        workflow "$1" "$(sh_step hi 'echo hi')" \
                "$(sh_step up 'echo up' '{"needs":["hi"],"run":{"trust":"elevated","network":"loopback"}}')"
}

# --- trust levels and roles --------------------------------------------------------------
api POST /v1/workflows "$(elevated_wf op-elevated)"
is "$HTTP_STATUS" 403 "an operator's workflow with an elevated step: 403"
is "$(jf .error.code "$RESP")" forbidden "code forbidden"
like "$(jf .error.message "$RESP")" "step 'up' runs at the elevated trust level, which role operator may not" \
        "the message names the step, the level and the role"
like "$(jf .error.message "$RESP")" "allows admin" "and who may"
is "$(psql_q "SELECT count(*) FROM workflows WHERE name = 'op-elevated'")" 0 "nothing was stored"
api POST /v1/runs '{"argv":["/bin/true"],"trust":"elevated","network":"loopback"}'
is "$HTTP_STATUS" 403 "an operator's elevated run (POST /v1/runs): 403"
like "$(jf .error.message "$RESP")" "elevated trust level" "naming the level"
api POST /v1/runs '{"argv":["/bin/true"],"trust":"standard"}'
is "$HTTP_STATUS" 202 "an operator's standard run: 202"
api_as "$ADMIN" POST /v1/workflows "$(elevated_wf admin-elevated)"
is "$HTTP_STATUS" 201 "an admin's workflow with an elevated step: 201"
api_as "$ADMIN" POST /v1/runs '{"argv":["/bin/true"],"trust":"privileged"}'
like "$HTTP_STATUS" '^4' "a privileged run is refused even for an admin (HTTP $HTTP_STATUS)"
like "$(jf .error.message "$RESP")" "privileged" "naming the level: $(jf .error.message "$RESP")"

# --- approvals from someone else -----------------------------------------------------------
workflow release "$(sh_step build 'echo artefact')" '{"id":"gate","kind":"approval","needs":["build"]}' \
        "$(sh_step ship 'cat /work/inputs/build.stdout' '{"needs":["gate"]}')" >"$TEST_TMP/release.json"
id=$(wf_submit "$TEST_TMP/release.json") || bail_out "not accepted"
ok "the approval step waits" step_wait "$id" gate awaiting_human 20
api POST "/v1/workflows/$id/steps/gate/approve"
is "$HTTP_STATUS" 403 "the submitter's own approval: 403"
like "$(jf .error.message "$RESP")" "submitted workflow .* may not approve its step 'gate'" "the message says why"
is "$(step_field "$id" gate state)" awaiting_human "the step still waits"
api_as "$OP2" POST "/v1/workflows/$id/steps/gate/approve"
is "$HTTP_STATUS" 200 "another operator's approval: 200"
ok "the workflow succeeds" wf_wait "$id" succeeded 20
is "$(jf '[.rows[] | select(.action == "approved") | .actor] | join(",")' "$(audit_json "$id")")" second \
        "the approval is recorded under the approver's key"

# --- revocation takes effect at once -------------------------------------------------------
# c2: a second coordinator, on which the submitter may approve, with two connections per address.
printf '%s\n' "approval_by_submitter = yes" "max_connections_per_ip = 2" >>"$FLEET_CONF"
C1_URL=$COORD_URL
coord_start c2 || bail_out "coordinator c2 did not start"
C2_URL=$COORD_URL
COORD_URL=$C1_URL

D1=$(key_create doomed1 operator)
D2=$(key_create doomed2 operator)
D3=$(key_create doomed3 operator)
for k in "$D1" "$D2" "$D3"; do
        api_as "$k" GET /v1/nodes
        [ "$HTTP_STATUS" = 200 ] || diag "a fresh key: HTTP $HTTP_STATUS"
        API_URL=$C2_URL api_as "$k" GET /v1/nodes
done
is "$HTTP_STATUS" 200 "the keys to revoke work on both coordinators (cached)"

# An event stream of doomed1, open when it is revoked.
curl -sN --max-time 120 -H "Authorization: Bearer $D1" "$COORD_URL/v1/events" >"$TEST_TMP/doomed-sse.txt" 2>&1 &
doomed_sse=$!
fleet_bg $doomed_sse
_doomed_open() {
        grep -q ': ok' "$TEST_TMP/doomed-sse.txt"
}
wait_for 10 _doomed_open || diag "doomed1's event stream did not open"

api DELETE /v1/keys/doomed1
is "$HTTP_STATUS" 403 "an operator may not revoke keys: 403"
api_as "$ADMIN" DELETE /v1/keys/nosuch
is "$HTTP_STATUS" 404 "revoking an unknown key: 404"
api_as "$ADMIN" DELETE /v1/keys/doomed1
is "$HTTP_STATUS" 200 "an admin revokes doomed1 (DELETE /v1/keys/doomed1): 200"
api_as "$D1" GET /v1/nodes
is "$HTTP_STATUS" 401 "its next request to the same coordinator: 401"
_doomed_ended() {
        ! pid_alive "$doomed_sse"
}
ok "its open event stream ends" wait_for 10 _doomed_ended
API_URL=$C2_URL api_as "$D1" GET /v1/nodes
is "$HTTP_STATUS" 401 "its next request to the other coordinator: 401"
api_as "$ADMIN" DELETE /v1/keys/doomed1
is "$HTTP_STATUS" 404 "revoking it again: 404"

"$COORD" --config "$FLEET_CONF" --db "${PGSVC_URL:-$PGURL}" --revoke-key doomed2 >"$TEST_TMP/revoke.out" 2>&1
is "$?" 0 "autoos-coordinator --revoke-key doomed2 exits 0"
api_as "$D2" GET /v1/nodes
is "$HTTP_STATUS" 401 "doomed2's next request: 401"
API_URL=$C2_URL api_as "$D2" GET /v1/nodes
is "$HTTP_STATUS" 401 "and on the other coordinator: 401"

env AUTOOS_URL="$COORD_URL" AUTOOS_API_KEY="$ADMIN" AUTOOS_CONFIG=/dev/null "$AUTOOSCTL" key revoke doomed3 \
        >"$TEST_TMP/ctl-revoke.out" 2>&1
is "$?" 0 "autoosctl key revoke doomed3 exits 0"
like "$(cat "$TEST_TMP/ctl-revoke.out")" "key 'doomed3' revoked" "and says so"
api_as "$D3" GET /v1/nodes
is "$HTTP_STATUS" 401 "doomed3's next request: 401"
is "$(psql_q "SELECT string_agg(actor || ':' || (detail->>'name'), ',' ORDER BY id) FROM audit_log
        WHERE action = 'key_revoked'")" "boss:doomed1,admin:doomed2,boss:doomed3" \
        "each revocation is an audit row naming who revoked which key"

# --- approval_by_submitter = yes ------------------------------------------------------------
COORD_URL=$C2_URL
id2=$(wf_submit "$TEST_TMP/release.json") || bail_out "not accepted"
ok "the approval step waits" step_wait "$id2" gate awaiting_human 20
api POST "/v1/workflows/$id2/steps/gate/approve"
is "$HTTP_STATUS" 200 "with approval_by_submitter = yes the submitter may approve"
COORD_URL=$C1_URL

# --- throttling before authentication -------------------------------------------------------
# From 127.0.0.2 (another loopback address): made-up keys until the address is throttled.
fails=0
code=
while [ "$fails" -lt 60 ]; do
        code=$(curl -s -o "$TEST_TMP/fail.out" -w '%{http_code}' --interface 127.0.0.2 \
                -H "Authorization: Bearer aok_made_up_$fails" "$COORD_URL/v1/nodes")
        [ "$code" = 401 ] || break
        fails=$((fails + 1))
done
# At once (a token comes back each second): a valid key from the throttled address.
curl -s -D "$TEST_TMP/fail.headers" -o /dev/null --interface 127.0.0.2 -H "Authorization: Bearer $KEY" \
        "$COORD_URL/v1/nodes"
is "$code" 429 "after $fails failed keys from one address: 429"
cmp_ok "$fails" ">=" 20 "not before the burst (20) is used up"
cmp_ok "$fails" "<=" 40 "nor long after (a failure a second comes back)"
like "$(cat "$TEST_TMP/fail.out")" "too many failed authentications" "the answer says why"
like "$(head -n 1 "$TEST_TMP/fail.headers")" " 429" "a valid key from that address is refused too (it must not tell a guesser)"
like "$(tr -d '\r' <"$TEST_TMP/fail.headers")" "Retry-After: [0-9]" "with Retry-After"
api GET /v1/nodes
is "$HTTP_STATUS" 200 "another address (127.0.0.1) is not affected"
# _unthrottled: a valid key from 127.0.0.2 is served; else waits as long as Retry-After says (a try
# while throttled counts as a failure, so a client that does not wait stays shut out).
_unthrottled() {
        [ "$(curl -s -D "$TEST_TMP/retry.headers" -o /dev/null -w '%{http_code}' --interface 127.0.0.2 \
                -H "Authorization: Bearer $KEY" "$COORD_URL/v1/nodes")" = 200 ] && return 0
        sleep "$(tr -d '\r' <"$TEST_TMP/retry.headers" | sed -n 's/^Retry-After: *//p' | grep -E '^[0-9]+$' || echo 1)"
        return 1
}
ok "the address is served again once it waits as Retry-After says" wait_for 30 _unthrottled

# Unknown keys cost no database query each: the refused ones are remembered. Counted in
# PostgreSQL's statement log, up to a marker statement that shows the log is written that far.
psql_q "ALTER SYSTEM SET log_statement = 'all'" >/dev/null && psql_q "SELECT pg_reload_conf()" >/dev/null
_logged() {
        grep -q "$1" "$TEST_TMP/pg.log"
}
# key_queries MARKER: key lookups by hash logged before MARKER.
key_queries() {
        psql_q "SELECT '$1'" >/dev/null
        wait_for 10 _logged "$1" || diag "$1 is not in the statement log"
        sed "/$1/q" "$TEST_TMP/pg.log" | grep -c 'FROM api_keys WHERE key_sha256'
}
api_as aok_same_made_up_key GET /v1/nodes
is "$HTTP_STATUS" 401 "a made-up key: 401"
before=$(key_queries marker-one)
cmp_ok "$before" ">=" 1 "its lookup is in the statement log ($before key queries so far)"
for i in 1 2 3 4 5; do
        api_as aok_same_made_up_key GET /v1/nodes
done
is "$HTTP_STATUS" 401 "the same key five times more: 401"
is "$(key_queries marker-two)" "$before" "and no more key queries for them"
api GET /v1/nodes
is "$(key_queries marker-three)" "$((before + 1))" "while a good key is confirmed in PostgreSQL on each use"
psql_q "ALTER SYSTEM RESET log_statement" >/dev/null && psql_q "SELECT pg_reload_conf()" >/dev/null

# --- event streams per key ------------------------------------------------------------------
streams=""
for i in 1 2 3 4; do
        curl -sN --max-time 60 -H "Authorization: Bearer $OP2" "$COORD_URL/v1/events" >"$TEST_TMP/sse-$i.txt" 2>&1 &
        streams="$streams $!"
        fleet_bg $!
done
_streams_open() {
        for i in 1 2 3 4; do
                grep -q ': ok' "$TEST_TMP/sse-$i.txt" || return 1
        done
}
ok "four event streams of one key are open" wait_for 10 _streams_open
api_as "$OP2" GET /v1/events
is "$HTTP_STATUS" 429 "a fifth stream of that key: 429"
like "$(jf .error.message "$RESP")" "4 event streams open already" "the message says why"
isnt "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Authorization: Bearer $KEY" "$COORD_URL/v1/events")" \
        429 "another key's stream is not refused"
set -- $streams
kill "$1" 2>/dev/null
_fifth_ok() {
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Authorization: Bearer $OP2" \
                "$COORD_URL/v1/events")" = 200 ]
}
ok "once one of them ends, a new one is taken" wait_for 10 _fifth_ok
for p in $streams; do
        kill "$p" 2>/dev/null
done

# --- connections per address (c2: max_connections_per_ip = 2) --------------------------------
for i in 1 2; do
        curl -sN --max-time 60 -H "Authorization: Bearer $KEY" "$C2_URL/v1/events" >"$TEST_TMP/c2-sse-$i.txt" 2>&1 &
        held="${held:-} $!"
        fleet_bg $!
done
_held_open() {
        grep -q ': ok' "$TEST_TMP/c2-sse-1.txt" && grep -q ': ok' "$TEST_TMP/c2-sse-2.txt"
}
ok "two connections from 127.0.0.1 are open on c2" wait_for 10 _held_open
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$C2_URL/healthz")" 000 \
        "a third connection from the same address is closed without an answer"
is "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface 127.0.0.2 "$C2_URL/healthz")" 200 \
        "one from another address is served"
for p in $held; do
        kill "$p" 2>/dev/null
done

fleet_finish
