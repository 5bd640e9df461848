#!/bin/sh
# SPDX-License-Identifier: MIT
# autoosctl's coordinator commands without a coordinator: usage errors, --help,
# settings (options > environment > configuration file), the message and exit
# status when nothing listens, and the wire handling against a canned HTTP
# responder (python3): bearer key, error documents, exit statuses, tables.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"
need_built

# Nothing of this shell's settings may matter.
unset AUTOOS_URL AUTOOS_API_KEY XDG_CONFIG_HOME http_proxy https_proxy all_proxy ALL_PROXY HTTPS_PROXY
no_proxy='*'
HOME=$TEST_TMP/home
AUTOOS_CONFIG=$TEST_TMP/empty.conf
export no_proxy HOME AUTOOS_CONFIG
mkdir -p "$HOME"
: >"$AUTOOS_CONFIG"

# run_ctl ARG...: sets OUT, ERR and RC.
run_ctl() {
        "$AUTOOSCTL" "$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" </dev/null
        RC=$?
        OUT=$(cat "$TEST_TMP/out")
        ERR=$(cat "$TEST_TMP/err")
}

# --- help and usage --------------------------------------------------------------

for c in submit status list pause resume cancel approve retry skip audit nodes simulate events; do
        run_ctl "$c" --help
        if [ "$RC" -eq 0 ] && printf '%s\n' "$OUT" | head -n 1 | grep -q "^Usage: autoosctl $c " &&
                printf '%s' "$OUT" | grep -q -- '--url URL'; then
                tap_result 0 "$c --help: usage on stdout, exit 0"
        else
                tap_result 1 "$c --help: usage on stdout, exit 0"
                diag "rc=$RC" "$OUT" "$ERR"
        fi
done

run_ctl --help
like "$OUT" '^  submit FILE' "autoosctl --help lists the coordinator commands"

CLOSED=$(free_port)
export AUTOOS_URL="http://127.0.0.1:$CLOSED"

run_ctl status
is "$RC" 2 "status without ID: exit 2"
like "$ERR" "^autoosctl status: no ID given" "status without ID: says what is missing"
run_ctl approve some-id
is "$RC" 2 "approve without STEP: exit 2"
like "$ERR" "no STEP given" "approve without STEP: names STEP"
run_ctl submit
like "$ERR" "no FILE given" "submit without FILE: names FILE"
run_ctl status a b
is "$RC" 2 "status with two ids: exit 2"
like "$ERR" "unexpected argument 'b'" "status with two ids: names the extra one"
run_ctl list --frobnicate
is "$RC" 2 "unknown option: exit 2"
like "$ERR" -- "--frobnicate: unknown option" "unknown option: named"
run_ctl list --wait
is "$RC" 2 "an option of another command: exit 2"
like "$ERR" -- "--wait: not an option of 'list'" "an option of another command: named"
run_ctl list --limit 0
is "$RC" 2 "--limit 0: exit 2"
run_ctl list --state
like "$ERR" -- "--state: requires a value" "--state without a value: named"
run_ctl submit --json --quiet wf.json
is "$RC" 2 "--json with --quiet: exit 2"
run_ctl nosuchcommand
is "$RC" 2 "unknown command: exit 2"

# --- FILE --------------------------------------------------------------------------

run_ctl submit "$TEST_TMP/missing.json"
is "$RC" 2 "submit of a missing file: exit 2"
like "$ERR" "^autoosctl submit: $TEST_TMP/missing.json: No such file or directory$" "submit of a missing file: names it"
# One byte over the 64 MiB a document may have (sparse: zeros), and a directory (read fails).
truncate -s $((64 * 1024 * 1024 + 1)) "$TEST_TMP/huge.json"
run_ctl simulate "$TEST_TMP/huge.json"
is "$RC" 2 "simulate of a file over 64 MiB: exit 2, before any connection"
like "$ERR" "huge.json: over 64 MiB" "simulate of a file over 64 MiB: says so"
rm -f "$TEST_TMP/huge.json"
run_ctl simulate "$TEST_TMP"
is "$RC" 2 "simulate of a directory: exit 2"
like "$ERR" "Is a directory" "simulate of a directory: names the error"
printf '{"name":' >"$TEST_TMP/bad.json"
run_ctl simulate "$TEST_TMP/bad.json"
is "$RC" 65 "simulate of a file that is not JSON: exit 65, before any connection"
like "$ERR" "bad.json: invalid JSON" "simulate of a file that is not JSON: says so"
RC=$(printf '[1,2]' | "$AUTOOSCTL" submit - 2>"$TEST_TMP/err" >/dev/null; echo $?)
is "$RC" 65 "submit - reads standard input; an array is not a workflow: exit 65"
like "$(cat "$TEST_TMP/err")" "standard input: expected a JSON object" "submit -: names standard input"

# --- nothing listening ---------------------------------------------------------------

run_ctl status 0b6a8f1e-0000-4000-8000-000000000001
is "$RC" 69 "status with nothing listening: exit 69"
is "$ERR" "autoosctl: cannot reach the coordinator at http://127.0.0.1:$CLOSED: Connection refused" \
        "status with nothing listening: the clear message"
printf '{"name":"w","steps":[{"id":"a","run":{"argv":["/bin/true"]}}]}\n' >"$TEST_TMP/wf.json"
run_ctl submit --wait "$TEST_TMP/wf.json"
is "$RC" 69 "submit --wait with nothing listening: exit 69 at once"
run_ctl events
is "$RC" 69 "events with nothing listening: exit 69 at once"

# --- settings ------------------------------------------------------------------------

OTHER=$(free_port)
run_ctl nodes --url "http://127.0.0.1:$OTHER/"
like "$ERR" "at http://127.0.0.1:$OTHER: " "--url beats \$AUTOOS_URL (and loses its trailing slash)"
printf '# comment\n\nurl = http://127.0.0.1:%s\napi_key=secret\n' "$OTHER" >"$TEST_TMP/a.conf"
AUTOOS_CONFIG=$TEST_TMP/a.conf run_ctl nodes
like "$ERR" "at http://127.0.0.1:$CLOSED: " "\$AUTOOS_URL beats the configuration file"
(unset AUTOOS_URL; AUTOOS_CONFIG=$TEST_TMP/a.conf run_ctl nodes; printf '%s' "$ERR" >"$TEST_TMP/err2")
like "$(cat "$TEST_TMP/err2")" "at http://127.0.0.1:$OTHER: " "the configuration file's url= is used"
mkdir -p "$HOME/.config/autoos"
cp "$TEST_TMP/a.conf" "$HOME/.config/autoos/autoosctl.conf"
(unset AUTOOS_URL AUTOOS_CONFIG; run_ctl nodes; printf '%s' "$ERR" >"$TEST_TMP/err2")
like "$(cat "$TEST_TMP/err2")" "at http://127.0.0.1:$OTHER: " "~/.config/autoos/autoosctl.conf without \$AUTOOS_CONFIG"
printf 'url=http://127.0.0.1:1\nsecret=1\n' >"$TEST_TMP/b.conf"
(unset AUTOOS_URL; AUTOOS_CONFIG=$TEST_TMP/b.conf run_ctl nodes; echo "$RC" >"$TEST_TMP/rc2"; printf '%s' "$ERR" >"$TEST_TMP/err2")
is "$(cat "$TEST_TMP/rc2")" 78 "an unknown setting in the configuration file: exit 78"
like "$(cat "$TEST_TMP/err2")" "b.conf:2: unknown setting 'secret'" "an unknown setting: file and line named"
AUTOOS_CONFIG=$TEST_TMP/none.conf run_ctl nodes
is "$RC" 78 "a missing \$AUTOOS_CONFIG: exit 78"
AUTOOS_URL=ftp://example run_ctl nodes
is "$RC" 78 "\$AUTOOS_URL not http(s): exit 78"
run_ctl nodes --url 'not a url'
is "$RC" 2 "--url not http(s): exit 2"
run_ctl nodes --key-file "$TEST_TMP/nokey"
is "$RC" 2 "a missing --key-file: exit 2"
like "$ERR" "key file $TEST_TMP/nokey: No such file" "a missing --key-file: named"

# --- the wire, against canned answers -------------------------------------------------

if ! command -v python3 >/dev/null 2>&1; then
        skip 27 "needs python3 for the canned HTTP responder"
        done_testing
fi

cat >"$TEST_TMP/canned.py" <<'EOF'
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
routes = json.load(open(sys.argv[1]))
log = open(sys.argv[2], "a")
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        log.write(json.dumps({"req": self.command + " " + self.path, "auth": self.headers.get("Authorization"),
                              "ctype": self.headers.get("Content-Type"), "body": body}) + "\n")
        log.flush()
        status, headers, text = routes.get(self.command + " " + self.path,
            [404, {}, '{"error":{"code":"not_found","message":"no such route"}}'])
        data = text.encode()
        self.send_response(status)
        headers.setdefault("Content-Type", "application/json")
        for k, v in headers.items(): self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    do_GET = do_POST = answer
srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[3] + ".tmp", "w").write(str(srv.server_address[1]))
import os; os.rename(sys.argv[3] + ".tmp", sys.argv[3])
srv.serve_forever()
EOF
W=0b6a8f1e-0000-4000-8000-000000000001
cat >"$TEST_TMP/routes.json" <<EOF
{
 "POST /v1/workflows": [201, {}, "{\"id\":\"$W\",\"name\":\"w\",\"state\":\"running\",\"steps\":1}"],
 "GET /v1/workflows/$W": [200, {}, "{\"id\":\"$W\",\"name\":\"w\",\"state\":\"failed\",\"created_at\":\"2026-11-21T10:00:00Z\",\"updated_at\":\"2026-11-21T10:00:01Z\",\"created_by\":\"alice\",\"steps\":[{\"id\":\"a\",\"kind\":\"run\",\"state\":\"failed\",\"attempt\":3,\"node\":\"n1\",\"needs\":[],\"fallback\":null,\"outcome\":\"exited\",\"exit_code\":7,\"wall_ms\":52,\"error\":\"exit status 7\",\"stdout\":\"x\\\\u0000y\",\"updated_at\":\"2026-11-21T10:00:01Z\"}]}"],
 "POST /v1/workflows/$W/resume": [409, {}, "{\"error\":{\"code\":\"conflict\",\"message\":\"workflow is failed\"}}"],
 "POST /v1/workflows/$W/pause": [429, {"Retry-After": "7"}, "{\"error\":{\"code\":\"rate_limited\",\"message\":\"over the key's rate\"}}"],
 "POST /v1/workflows/$W/cancel": [200, {}, "{\"id\":\"$W\",\"state\":\"cancelled\"}"],
 "POST /v1/workflows/$W/steps/a/retry": [503, {}, "{\"error\":{\"code\":\"unavailable\",\"message\":\"PostgreSQL is away\"}}"],
 "POST /v1/workflows/simulate": [400, {}, "{\"error\":{\"code\":\"invalid_workflow\",\"message\":\"step 'a': run.limits.memory_bytes: over the ceiling\",\"field\":\"steps.a.run.limits.memory_bytes\"}}"],
 "GET /v1/workflows/$W/audit": [200, {}, "{\"workflow\":\"$W\",\"rows\":[{\"seq\":1,\"ts\":\"2026-11-21T10:00:00Z\",\"actor\":\"alice\",\"action\":\"submitted\",\"detail\":{\"steps\":1},\"prev_hash\":\"00\",\"hash\":\"aa\"}],\"verify\":{\"ok\":false,\"rows\":1,\"first_bad_seq\":1}}"],
 "GET /v1/workflows?state=failed&limit=5": [200, {}, "{\"workflows\":[]}"],
 "GET /v1/nodes": [200, {}, "not json"],
 "GET /v1/events?since=1-0": [200, {"Content-Type": "text/event-stream"}, ": ping\n\nid: 1-1\r\nevent: step.finished\r\ndata: {\"type\":\"step.finished\",\r\ndata: \"step\":\"a\"}\r\n\r\n"]
}
EOF
python3 "$TEST_TMP/canned.py" "$TEST_TMP/routes.json" "$TEST_TMP/requests" "$TEST_TMP/port" \
        >"$TEST_TMP/canned.log" 2>&1 &
CANNED=$!
at_exit "kill $CANNED"
_i=0
while [ ! -s "$TEST_TMP/port" ] && [ "$_i" -lt 100 ]; do
        sleep 0.1
        _i=$((_i + 1))
done
[ -s "$TEST_TMP/port" ] || bail_out "the canned responder did not start: $(cat "$TEST_TMP/canned.log")"
AUTOOS_URL="http://127.0.0.1:$(cat "$TEST_TMP/port")"
printf '  key-42  \n' >"$TEST_TMP/key"
KF="--key-file=$TEST_TMP/key"

run_ctl submit "$KF" "$TEST_TMP/wf.json"
is "$RC" 0 "submit: exit 0"
is "$OUT" "submitted $W" "submit: prints 'submitted ID'"
last=$(tail -n 1 "$TEST_TMP/requests")
is "$(jf .auth "$last")" "Bearer key-42" "submit: the key of --key-file as a bearer key, blanks trimmed"
is "$(jf .ctype "$last")" "application/json" "submit: Content-Type application/json"
is "$(jf .body "$last")" "$(cat "$TEST_TMP/wf.json")" "submit: the file as the body"
run_ctl submit -q "$KF" "$TEST_TMP/wf.json"
is "$OUT" "$W" "submit -q: only the id"

AUTOOS_API_KEY=env-key run_ctl status "$W" --json
is "$(jf .auth "$(tail -n 1 "$TEST_TMP/requests")")" "Bearer env-key" "status: the key of \$AUTOOS_API_KEY"
is "$(jf .state "$OUT")" failed "status --json: the coordinator's document"
run_ctl status "$W"
like "$OUT" '^STEP +KIND +STATE +ATTEMPT +NODE +OUTCOME +EXIT +WALL_MS$' "status: the steps' table header"
like "$OUT" '^a +run +failed +3 +n1 +exited +7 +52$' "status: a row per step"
like "$OUT" '^step a: exit status 7$' "status: the step's error"

run_ctl status --watch "$W"
is "$RC" 1 "status --watch of a failed workflow: exit 1"
like "$OUT" "^workflow $W: failed\$" "status --watch on a pipe: the final state line"

run_ctl resume "$W"
is "$RC" 1 "resume refused with 409: exit 1"
is "$ERR" "autoosctl: workflow is failed (conflict)" "an error document as 'message (code)'"
run_ctl resume "$W" --json
is "$(jf .error.code "$OUT")" conflict "--json: the error document on stdout too"

run_ctl simulate "$TEST_TMP/wf.json"
is "$RC" 65 "invalid_workflow: exit 65"
is "$ERR" "autoosctl: step 'a': run.limits.memory_bytes: over the ceiling (invalid_workflow, field steps.a.run.limits.memory_bytes)" \
        "an error document with its field"

run_ctl pause "$W"
is "$RC" 75 "rate_limited: exit 75"
like "$ERR" "try again in 7 s" "rate_limited: Retry-After given"
run_ctl retry "$W" a
is "$RC" 69 "unavailable: exit 69"
run_ctl cancel "$W"
is "$OUT" "workflow $W: cancelled" "cancel: the new state"

run_ctl audit "$W" --verify
is "$RC" 2 "audit --verify without the coordinator's public audit key: a usage error"
like "$ERR" 'audit-pubkey' "naming --audit-pubkey"
"$top_builddir/orchestrator/autoos-coordinator" --create-audit-key "$TEST_TMP/audit.key" >/dev/null 2>&1
run_ctl audit "$W" --verify --audit-pubkey "$TEST_TMP/audit.key.pub"
is "$RC" 1 "audit --verify of a broken chain: exit 1"
like "$OUT" '^chain BROKEN at seq 1$' "audit --verify: names the first bad row"
like "$OUT" 'seq 1 is malformed' "and why"

run_ctl list --state failed --limit 5
is "$OUT" "no workflows in this state" "list: --state and --limit in the query"
run_ctl nodes
is "$RC" 76 "a reply that is not JSON: exit 76"

# A stream that ends is taken up again; two lines are enough.
EV=$(timeout 10 "$AUTOOSCTL" events --since 1-0 2>/dev/null | head -n 2)
is "$(printf '%s\n' "$EV" | head -n 1)" '{"id":"1-1","event":"step.finished","data":{"type":"step.finished","step":"a"}}' \
        "events: one JSON line per event, data lines joined"

done_testing
