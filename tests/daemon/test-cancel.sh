#!/bin/sh
# SPDX-License-Identifier: MIT
# A 'cancel' entry for a running job id kills the run (its whole cgroup) and
# reports it 'signaled' with the cancel noted; a queued one is answered without
# running; a cancel for an unknown id is acknowledged and otherwise ignored; a
# cancel still works when the node is full (every slot and the queue taken).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

uniq=$$$(date +%N | cut -c1-6)
# sleepers NUMBER: the sleep processes (not the shells) of marker NUMBER.$uniq
sleepers() {
        ps_marker "$1.$uniq" | grep -E "^ *[0-9]+ /bin/sleep $1\.$uniq" || true
}
redis_start
autoosd_config "grace = 1s"
autoosd_start --max-runs 2 || bail_out "autoosd did not start"

# The run forks a background child too: the cancel must take the whole cgroup.
job_add '{"id":"can-1","argv":["/bin/sh","-c","/bin/sleep 30.'$uniq' & /bin/sleep 30.'$uniq'"]}' >/dev/null
wait_for 5 eval '[ "$(sleepers 30 | wc -l)" -ge 2 ]'
is "$(sleepers 30 | wc -l)" 2 "the run and its background child are running"

t0=$(now_ms)
cancel_add can-1 >/dev/null
wait_result can-1 10
is "$(jf .outcome "$RESULT")" signaled "a cancelled run is 'signaled'"
like "$(jf '.reason // .error // ""' "$RESULT")" 'cancel' "the result notes the cancel ($(jf .reason "$RESULT"))"
is "$(jf .signal "$RESULT")" 9 "killed with SIGKILL"
cmp_ok "$(($(now_ms) - t0))" '<' "$(time_bound 5000)" "the cancel took effect promptly (bound $(time_bound 5000) ms)"
wait_for 3 eval '[ -z "$(ps_marker "30.$uniq")" ]'
is "$(ps_marker "30.$uniq")" "" "no process of the cancelled run is left (background child included)"

# Cancelled before it started: both slots busy, one job queued.
job_add '{"id":"can-2","argv":["/bin/sleep","32.'$uniq'"]}' >/dev/null
job_add '{"id":"can-3","argv":["/bin/sleep","33.'$uniq'"]}' >/dev/null
job_add '{"id":"can-4","argv":["/bin/sleep","34.'$uniq'"]}' >/dev/null
wait_for 5 eval '[ "$(node_status | jq -r "[.running, .queued] | join(\" \")")" = "2 1" ]'
is "$(node_status | jq -r '[.running, .queued] | join(" ")')" "2 1" "two running, one queued"
cancel_add can-4 >/dev/null
wait_result can-4 5
is "$(jf .outcome "$RESULT")" signaled "a queued job cancelled: signaled"
like "$(jf '.reason // ""' "$RESULT")" 'cancel' "with the cancel noted ($(jf .reason "$RESULT"))"
cancel_add can-2 >/dev/null
cancel_add can-3 >/dev/null
wait_result can-2 5
wait_result can-3 5
sleep 0.3
is "$(ps_marker "34.$uniq")" "" "the job cancelled while queued never ran"
is "$(count_results can-4)" 1 "and it has exactly one result"

# Unknown id: acknowledged, nothing else.
cancel_add no-such-run >/dev/null
job_add '{"id":"can-5","argv":["/bin/true"]}' >/dev/null
wait_result can-5
cancel_add can-5 >/dev/null
sleep 0.3
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "every job and cancel entry is acknowledged"
is "$(count_results no-such-run)" 0 "a cancel for an unknown id produces no result"
is "$(count_results can-5)" 1 "a cancel after the result changes nothing"
ok "the daemon keeps running" pid_alive "$D_PID"
is "$(metric autoosd_runs_total signaled)" 4 "metrics: four signaled"

# A full node (2 running + 2 queued = max_runs + max_queued) must still read cancels.
for k in 6 7 8 9; do
        job_add '{"id":"can-'$k'","argv":["/bin/sleep","4'$k'.'$uniq'"]}' >/dev/null
done
wait_for 5 eval '[ "$(node_status | jq -r "[.running, .queued] | join(\" \")")" = "2 2" ]'
is "$(node_status | jq -r '[.running, .queued] | join(" ")')" "2 2" "full node: two running, two queued"
cancel_add can-6 >/dev/null
if wait_result can-6 5; then
        is "$(jf .outcome "$RESULT")" signaled "full node: a running job is cancelled"
else
        tap_result 1 "full node: a running job is cancelled within 5 s (cancel entries wait behind the job credit)"
fi
cancel_add can-9 >/dev/null
if wait_result can-9 5; then
        is "$(jf .outcome "$RESULT")" signaled "full node: a queued job is cancelled"
else
        tap_result 1 "full node: a queued job is cancelled within 5 s"
fi

autoosd_stop
is "$D_RC" 0 "exit 0 on SIGTERM"
is "$(run_cgroups "$D_PID")" "" "no run cgroup left behind"

finish
