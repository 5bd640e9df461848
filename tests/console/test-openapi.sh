#!/bin/sh
# SPDX-License-Identifier: MIT
# doc/openapi.json (issue 15): every route and error of doc/api.md is in it
# and nothing else is; a live coordinator serves it at /v1/openapi.json
# without a key, and answers every operation (no key, a role too low, a role
# high enough) with a status the document declares and a body its schema
# accepts; the error table's codes, provoked, have the Error shape. Then the
# console's files under /ui/: content types, the Content-Security-Policy,
# the index fallback, no way out of the directory, read-only, and a
# configured base path.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-fleet.sh"
need_fleet
need_cmd python3
CHECK=$top_srcdir/tests/console/openapi-check.py
OPENAPI=$top_srcdir/doc/openapi.json

# check_lines: "PASS what" / "FAIL what: why" lines as TAP.
check_lines() {
        while IFS= read -r _line; do
                case $_line in
                PASS\ *) tap_result 0 "${_line#PASS }" ;;
                FAIL\ *)
                        tap_result 1 "${_line#FAIL }"
                        ;;
                *) diag "$_line" ;;
                esac
        done <"$1"
}

python3 "$CHECK" static "$top_srcdir/doc/api.md" "$OPENAPI" >"$TEST_TMP/static.out" 2>&1
check_lines "$TEST_TMP/static.out"
cmp_ok "$(grep -c "is in the OpenAPI document" "$TEST_TMP/static.out")" ">=" 20 "api.md's 20 routes were found and checked"

printf '%s\n' "console_dir = $top_srcdir/console" "openapi_file = $OPENAPI" >>"$FLEET_CONF"
fleet_up na
VIEWER=$(key_create watcher viewer)
ADMIN=$(key_create boss admin)
workflow openapi-done "$(sh_step hello 'echo hi')" >"$TEST_TMP/wf.json"
id=$(wf_submit "$TEST_TMP/wf.json") || bail_out "not accepted"
ok "a workflow to read succeeds" wf_wait "$id" succeeded 30

VIEWER_KEY=$VIEWER OPERATOR_KEY=$KEY ADMIN_KEY=$ADMIN WORKFLOW_ID=$id STEP_ID=hello WORKFLOW_DONE=1 \
        python3 "$CHECK" live "$OPENAPI" "$COORD_URL" >"$TEST_TMP/live.out" 2>&1
check_lines "$TEST_TMP/live.out"
cmp_ok "$(grep -c "without a key is 401" "$TEST_TMP/live.out")" ">=" 17 "every keyed operation was tried without a key"

# --- the console's files -----------------------------------------------------------------
api_as "" GET /ui/
is "$HTTP_STATUS" 200 "GET /ui/ (no key): 200"
like "$(resp_header Content-Type)" "^text/html" "as text/html"
csp=$(resp_header Content-Security-Policy)
like "$csp" "default-src 'none'" "a Content-Security-Policy that allows nothing by default"
like "$csp" "script-src 'self';" "scripts from the console only (no inline, no eval)"
unlike "$csp" "unsafe" "nothing unsafe"
is "$(resp_header X-Content-Type-Options)" nosniff "nosniff"
is "$(resp_header X-Frame-Options)" DENY "no framing"
like "$RESP" '<base href="/ui/">' "the page's base is /ui/"
index=$RESP
api_as "" GET /ui/app.js
is "$HTTP_STATUS $(resp_header Content-Type)" "200 text/javascript; charset=utf-8" "app.js as JavaScript"
api_as "" GET /ui/style.css
is "$HTTP_STATUS $(resp_header Content-Type)" "200 text/css; charset=utf-8" "style.css as CSS"
api_as "" GET /ui/workflows/"$id"
is "$HTTP_STATUS" 200 "a path of the page's (no file) gets the index"
is "$RESP" "$index" "the same index"
api_as "" GET /ui/nothing.js
is "$HTTP_STATUS $(jf .error.code "$RESP")" "404 not_found" "a missing file (with an extension) is 404 not_found"
api_as "" GET /ui
is "$HTTP_STATUS $(resp_header Location)" "308 /ui/" "/ui redirects to /ui/"
for p in /ui/../doc/api.md /ui/%2e%2e/doc/api.md /ui/.hidden /ui/..%2f..%2fetc%2fpasswd /ui/a/../../etc/passwd; do
        api_as "" GET "$p"
        unlike "$RESP" "root:|HTTP API" "$p gives nothing from outside the console ($HTTP_STATUS)"
done
mkdir -p "$TEST_TMP/cons" && ln -sf /etc/passwd "$TEST_TMP/cons/passwd.txt" && cp "$top_srcdir/console/index.html" "$TEST_TMP/cons/"
: >"$TEST_TMP/autoosctl.conf"
out=$(env AUTOOS_URL="$COORD_URL" AUTOOS_CONFIG="$TEST_TMP/autoosctl.conf" "$AUTOOSCTL" console 2>&1)
like "$out" "AUTOOS console: $COORD_URL/ui/" "autoosctl console prints the console's address"
like "$out" "create-key NAME --role viewer" "with a sign-in hint"
out=$(env AUTOOS_URL="$COORD_URL/" AUTOOS_CONFIG="$TEST_TMP/autoosctl.conf" "$AUTOOSCTL" console --path /ops/console/ 2>&1)
like "$out" "AUTOOS console: $COORD_URL/ops/console/\$" "autoosctl console --path names another base path"
api_as "$KEY" POST /ui/ '{}'
is "$HTTP_STATUS $(resp_header Allow)" "405 GET, HEAD" "a POST to the console is 405 with Allow"
api_as "" GET /v1/nodes
is "$HTTP_STATUS" 401 "the API itself still needs a key"

# A coordinator with the console elsewhere, at another base path, with a symbolic link in it.
printf '%s\n' "console_dir = $TEST_TMP/cons" "console_path = /ops/console" >>"$FLEET_CONF"
coord_start c2 || bail_out "coordinator c2 did not start"
api_as "" GET /ops/console/
is "$HTTP_STATUS" 200 "console_path = /ops/console: the page is there"
like "$RESP" '<base href="/ops/console/">' "its base follows the path"
api_as "" GET /ops/console/passwd.txt
is "$HTTP_STATUS" 404 "a symbolic link in the console directory is not followed"
api_as "" GET /ui/
is "$HTTP_STATUS" 404 "and /ui/ is no route there"
{ cat "$FLEET_CONF" && echo "console_path = /v1"; } >"$TEST_TMP/bad.conf"
timeout 60 "$COORD" --config "$TEST_TMP/bad.conf" --db "$PGSVC_URL" --redis "$REDIS_URL" --listen 127.0.0.1:0 \
        --audit-key "$AUDIT_KEY" --sql-dir "$top_srcdir/sql" >"$TEST_TMP/bad.out" 2>&1 </dev/null
is "$?" 1 "a console_path over the API is refused at start"
like "$(cat "$TEST_TMP/bad.out")" "console_path" "naming console_path"
fleet_finish
