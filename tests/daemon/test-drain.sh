#!/bin/sh
# SPDX-License-Identifier: MIT
# SIGTERM drains: no new job is taken, the running one finishes and is
# reported, and autoosd exits 0 within the grace period; a run still going when
# the grace period ends is killed and reported, and the exit is still 0.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

uniq=$$$(date +%N | cut -c1-6)
# The running job must still run when SIGTERM comes, on a slow host too
# (AUTOOS_TIME_SCALE, tests/lib.sh): it sleeps D1 s, and the grace is 8 s more.
D1=$((2 * AUTOOS_TIME_SCALE))
GRACE=$((D1 + 8))
redis_start
autoosd_config "grace = ${GRACE}s"
autoosd_start --max-runs 1 || bail_out "autoosd did not start"

job_add '{"id":"dr-1","argv":["/bin/sh","-c","/bin/sleep '$D1'.'$uniq'; echo finished"]}' >/dev/null
job_add '{"id":"dr-2","argv":["/bin/sleep","0.'$uniq'"]}' >/dev/null
wait_for 5 eval '[ "$(node_status | jq -r "[.running, .queued] | join(\" \")")" = "1 1" ]'
is "$(node_status | jq -r '[.running, .queued] | join(" ")')" "1 1" "one running, one read and queued"

t0=$(now_ms)
kill -TERM "$D_PID"
wait_for 2 eval '[ "$(rcli HGET "autoos:node:$NODE" state)" = draining ]'
is "$(rcli HGET "autoos:node:$NODE" state)" draining "the heartbeat says draining"
is "$(node_status | jq -r .state)" draining "the status says draining"
job_add '{"id":"dr-3","argv":["/bin/true"]}' >/dev/null
if autoosd_wait_exit $((GRACE + 2)); then
        elapsed=$(($(now_ms) - t0))
        is "$D_RC" 0 "autoosd exits 0"
        cmp_ok "$elapsed" '<' $((GRACE * 1000)) "within the grace period ($elapsed ms of $GRACE s)"
        cmp_ok "$elapsed" '>=' 1000 "after the running job finished, not before"
else
        tap_result 1 "autoosd exits within the $GRACE s grace"
        skip 2 "still running"
fi
wait_result dr-1 1
is "$(jf .outcome "$RESULT") $(jf .stdout "$RESULT")" "exited finished" "the running job finished and was reported"
is "$(count_results dr-2)" 0 "the queued job was not run"
is "$(count_results dr-3)" 0 "the job added while draining was not taken"
is "$(ps_marker "0.$uniq")" "" "nothing of the queued job runs"
is "$(rcli XPENDING "autoos:jobs:$NODE" autoosd - + 10 | grep -c -- '-')" 1 \
        "the queued job stays pending (for the next start to report), the new one unread"
is "$(run_cgroups "$D_PID")" "" "no run cgroup left"

# The next life reports the queued job as lost and runs the new one.
autoosd_start --max-runs 1 || bail_out "autoosd did not restart"
wait_result dr-2 5
is "$(jf .outcome "$RESULT")" sandbox_error "the next start reports the job it had queued"
wait_result dr-3 5
is "$(jf .outcome "$RESULT")" exited "and runs the job that arrived while it drained"

# With free slots the daemon has a blocking read in flight when SIGTERM comes:
# a job arriving right after must not be taken either.
autoosd_stop
autoosd_start --max-runs 4 || bail_out "autoosd did not restart"
job_add '{"id":"dr-5","argv":["/bin/sleep","'$D1'.'$uniq'"]}' >/dev/null
wait_for 3 eval '[ -n "$(ps_marker "sleep $D1.$uniq")" ]'
sleep 0.2
kill -TERM "$D_PID"
sleep 0.1
job_add '{"id":"dr-6","argv":["/bin/true"]}' >/dev/null
autoosd_wait_exit 10
is "$D_RC" 0 "free slots: exit 0 after draining"
wait_result dr-5 1
is "$(jf .outcome "$RESULT")" exited "free slots: the running job finished"
is "$(count_results dr-6)" 0 "free slots: the job added after SIGTERM was not taken"
[ "$(count_results dr-6)" != 0 ] && diag "dr-6 was run: $(results_for dr-6 | jq -c '{outcome, started_at}')"

# Grace over: the run is killed and reported, exit 0.
autoosd_config "grace = 1s"
autoosd_start --max-runs 1 || bail_out "autoosd did not restart"
job_add '{"id":"dr-4","argv":["/bin/sh","-c","/bin/sleep 30.'$uniq' & /bin/sleep 30.'$uniq'"]}' >/dev/null
wait_for 5 eval '[ -n "$(ps_marker "sleep 30.$uniq")" ]'
t0=$(now_ms)
kill -TERM "$D_PID"
if autoosd_wait_exit 8; then
        elapsed=$(($(now_ms) - t0))
        is "$D_RC" 0 "grace over: autoosd still exits 0"
        cmp_ok "$elapsed" '<' $((1000 + $(time_bound 4000))) "soon after the 1 s grace ($elapsed ms)"
else
        tap_result 1 "grace over: autoosd exits within 8 s"
        skip 1 "still running"
fi
wait_result dr-4 2
is "$(jf .outcome "$RESULT")" signaled "the run still going is killed and reported as signaled"
like "$(jf '.reason // .error // ""' "$RESULT")" 'shutting down|grace' "noting why ($(jf .reason "$RESULT"))"
is "$(ps_marker "30.$uniq")" "" "no process of it is left"
is "$(pending)" 0 "everything acknowledged"
is "$(run_cgroups "$D_PID")" "" "no run cgroup left"

# SIGINT drains the same way.
autoosd_start --max-runs 1 || bail_out "autoosd did not restart"
kill -INT "$D_PID"
autoosd_wait_exit 5
is "$D_RC" 0 "SIGINT: exit 0"

finish
