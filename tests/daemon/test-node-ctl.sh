#!/bin/sh
# SPDX-License-Identifier: MIT
# The local control socket through `autoosctl node`: status, run (a spec
# through the daemon's policy, the result back, nothing on the bus) and drain
# (no new jobs; in-flight runs finish; the daemon stays up).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

uniq=$$$(date +%N | cut -c1-6)
redis_start
autoosd_start --max-runs 3 || bail_out "autoosd did not start"

is "$(stat -c %a "$D_SOCK")" 660 "the control socket is mode 0660"

st=$(node_status)
is "$(jf '[.node, .state, (.capacity | tostring), (.running | tostring), (.redis_connected | tostring)] | join(" ")' "$st")" \
        "$NODE active 3 0 true" "status --json: node, state, capacity, running, redis_connected"
txt=$(autoosctl node status --socket "$D_SOCK")
like "$txt" "node: +$NODE" "status (text) names the node"
like "$txt" 'state: +active' "status (text) shows the state"

out=$(autoosctl node run --socket "$D_SOCK" -- /bin/echo via-socket 2>&1)
rc=$?
is "$rc" 0 "node run: exit 0"
like "$out" via-socket "node run: the program's output comes back"
r=$(autoosctl node run --json --socket "$D_SOCK" -- /bin/sh -c 'echo x; exit 7' 2>/dev/null)
rc=$?
is "$rc" 7 "node run: the program's exit status passes through"
is "$(jf '[.outcome, (.exit_code | tostring), .stdout, .node] | join(" ")' "$r")" "exited 7 x
 $NODE" "node run --json: the result, from this node"
printf '%s' '{"id":"local-1","workflow":"w","step":"s","attempt":1,"argv":["/bin/echo","spec"],"env":{"A":"B"}}' >"$TEST_TMP/spec.json"
r=$(autoosctl node run --json --socket "$D_SOCK" --spec "$TEST_TMP/spec.json" 2>/dev/null)
is "$(jf '[.id, .workflow, .step, (.attempt | tostring), .stdout] | join(" ")' "$r")" "local-1 w s 1 spec" "node run --spec: id, workflow, step, attempt echoed"
is "$(rcli XLEN autoos:results)" 0 "local runs are answered on the socket, not on the results stream"

# Local runs and stream jobs run side by side. bus-1 must still be running when status is read
# and when the drain comes: 1 + 2 x AUTOOS_TIME_SCALE seconds (on a loaded host, a 1 s job had
# ended, or not yet started, by the time status was read).
job_add '{"id":"bus-1","argv":["/bin/sleep","'$((1 + 2 * ${AUTOOS_TIME_SCALE:-1})).$uniq'"]}' >/dev/null
wait_for 3 eval '[ "$(node_status | jq -r .running)" = 1 ]'
st=$(node_status)
is "$(jf '.runs | map(.id) | join(",")' "$st")" bus-1 "status lists the running job"
cmp_ok "$(jf '.runs[0].running_ms' "$st")" '>=' 0 "with how long it has been running"

# Drain: stops taking jobs, lets the running one finish, stays up.
out=$(autoosctl node drain --socket "$D_SOCK" 2>&1)
is "$?" 0 "node drain: exit 0"
is "$(node_status | jq -r .state)" draining "status: draining"
wait_for 2 eval '[ "$(rcli HGET "autoos:node:$NODE" state)" = draining ]'
is "$(rcli HGET "autoos:node:$NODE" state)" draining "heartbeat: draining"
job_add '{"id":"bus-2","argv":["/bin/true"]}' >/dev/null
out=$(autoosctl node run --socket "$D_SOCK" -- /bin/true 2>&1)
rc=$?
isnt "$rc" 0 "node run while draining is refused (exit $rc)"
like "$out" 'drain' "saying the node is draining"
wait_result bus-1 5
is "$(jf .outcome "$RESULT")" exited "the job running at the drain finished and was reported"
sleep 1
is "$(count_results bus-2)" 0 "the job added after the drain was not taken"
[ "$(count_results bus-2)" != 0 ] && diag "bus-2 was run: $(results_for bus-2 | jq -c '{outcome, started_at}')" \
        "$(grep -E 'drain|bus-2' "$D_LOG")"
ok "the daemon stays up after a drain" pid_alive "$D_PID"
is "$(rcli XPENDING "autoos:jobs:$NODE" autoosd | head -n 1)" 0 "nothing is held: bus-2 stays unread for another node"

autoosd_stop
is "$D_RC" 0 "SIGTERM after a drain: exit 0"
out=$(autoosctl node status --socket "$D_SOCK" 2>&1)
is "$?" 69 "status with no daemon: exit 69 (EX_UNAVAILABLE)"
ok "the socket is removed when the daemon exits" test ! -e "$D_SOCK"

finish
