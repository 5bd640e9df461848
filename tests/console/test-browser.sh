#!/bin/sh
# SPDX-License-Identifier: MIT
# The console in a real browser (issue 15): Debian's chromium driven by
# puppeteer-core (npm, pinned by tests/console/package-lock.json, installed
# on the first run into the build tree) against a live coordinator with
# PostgreSQL, Redis and two autoosd nodes. It signs in, submits and watches
# the DAG turn green live, opens a failed step's output (whole, from GET
# /v1/runs/{run}), retries it, approves with another key, cancels, filters
# the list, drains a node from the Nodes view (a new workflow's steps go to
# the other) and undrains it; sign-in asks GET /v1/whoami; a viewer sees no
# action or drain button and its forced requests get 403; the audit trail verifies in
# the browser, then a row changed in PostgreSQL is named where the chain
# breaks. Screenshots of failures: tests/console/screenshots/ in the build tree.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || skip_all "chromium missing (Debian package chromium)"
command -v node >/dev/null 2>&1 || skip_all "node missing (Debian package nodejs)"
command -v npm >/dev/null 2>&1 || skip_all "npm missing (Debian package npm)"

# puppeteer-core, once per build tree, exactly as the lock file pins it.
NPMDIR=$top_builddir/tests/console/npm
if ! cmp -s "$top_srcdir/tests/console/package-lock.json" "$NPMDIR/package-lock.json" ||
        [ ! -f "$NPMDIR/node_modules/puppeteer-core/package.json" ]; then
        rm -rf "$NPMDIR" && mkdir -p "$NPMDIR"
        cp "$top_srcdir/tests/console/package.json" "$top_srcdir/tests/console/package-lock.json" "$NPMDIR/"
        (cd "$NPMDIR" && timeout 600 npm ci --ignore-scripts --no-audit --no-fund) >"$TEST_TMP/npm.log" 2>&1 ||
                bail_out "npm ci of puppeteer-core failed: $(tail -n 3 "$TEST_TMP/npm.log" | tr '\n' ' ')"
fi
ok "puppeteer-core is installed (pinned)" test -f "$NPMDIR/node_modules/puppeteer-core/package.json"

printf '%s\n' "console_dir = $top_srcdir/console" "openapi_file = $top_srcdir/doc/openapi.json" >>"$FLEET_CONF"
pg_start
redis_start
KEY=$(key_create operator operator)
ADMIN=$(key_create boss admin)
VIEWER=$(key_create watcher viewer)
coord_start c1 || bail_out "the coordinator did not start"
node_start na "max_runs = 4" "labels = zone=a" || bail_out "node na did not start"
node_start nb "max_runs = 4" "labels = zone=b" || bail_out "node nb did not start"

workflow browser-fail "$(sh_step broken 'echo partial-output; echo boom-on-stderr >&2; exit 3')" >"$TEST_TMP/fail.json"
WF_FAIL=$(wf_submit "$TEST_TMP/fail.json") || bail_out "not accepted"
workflow browser-gate "$(sh_step build 'echo artefact')" '{"id":"gate","kind":"approval","needs":["build"]}' \
        "$(sh_step after 'cat /work/inputs/build.stdout' '{"needs":["gate"]}')" >"$TEST_TMP/gate.json"
WF_GATE=$(wf_submit "$TEST_TMP/gate.json") || bail_out "not accepted"
workflow browser-long "$(sh_step long 'sleep 600')" >"$TEST_TMP/long.json"
WF_LONG=$(wf_submit "$TEST_TMP/long.json") || bail_out "not accepted"

SHOTS=$top_builddir/tests/console/screenshots
rm -rf "$SHOTS"
# A row of the chain changed behind the coordinator's back (the trigger that refuses it is bypassed).
cat >"$TEST_TMP/tamper.sh" <<EOT
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p $PGPORT -U postgres -d postgres -c "BEGIN; SET LOCAL session_replication_role = replica;
        UPDATE audit_log SET detail = detail || '{\\"tampered\\": true}' WHERE workflow_id = '\$1' AND seq = 2; COMMIT;"
EOT
TAMPER="sh $TEST_TMP/tamper.sh WORKFLOW"
cp "$top_srcdir/tests/console/browser.mjs" "$NPMDIR/browser.mjs"
start=$(date +%s)
env URL="$COORD_URL" CHROMIUM="$CHROMIUM" SHOTS="$SHOTS" PROFILE="$TEST_TMP/chromium" \
        OPERATOR_KEY="$KEY" ADMIN_KEY="$ADMIN" VIEWER_KEY="$VIEWER" WF_FAIL="$WF_FAIL" WF_GATE="$WF_GATE" \
        WF_LONG="$WF_LONG" PSQL_TAMPER="$TAMPER" \
        node "$NPMDIR/browser.mjs" >"$TEST_TMP/browser.out" 2>&1 &
echo $! >"$TEST_TMP/browser.pid"
at_exit "kill \$(cat '$TEST_TMP/browser.pid') 2>/dev/null"
wait "$(cat "$TEST_TMP/browser.pid")"
brc=$?
while IFS= read -r _line; do
        case $_line in
        PASS\ *) tap_result 0 "${_line#PASS }" ;;
        FAIL\ *) tap_result 1 "${_line#FAIL }" ;;
        *) diag "$_line" ;;
        esac
done <"$TEST_TMP/browser.out"
is "$brc" 0 "the browser script ran to its end"
cmp_ok "$(grep -c '^PASS\|^FAIL' "$TEST_TMP/browser.out")" ">=" 23 "every check ran"
diag "browser part: $(($(date +%s) - start)) s"
fleet_finish
