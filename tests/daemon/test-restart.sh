#!/bin/sh
# SPDX-License-Identifier: MIT
# kill -9 of autoosd mid-run, then a restart: the jobs it held are reported as
# sandbox_error "node restarted during the run"; no process of the old runs and
# no autoos-<oldpid>-* cgroup is left; a result spooled but not delivered
# before the crash is delivered by the next life, once, as it was.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

uniq=$$$(date +%N | cut -c1-6)
redis_start
autoosd_start --max-runs 1 || bail_out "autoosd did not start"

# One running (with a background child), one read and queued behind it.
job_add '{"id":"rs-1","workflow":"wf","step":"s1","attempt":3,"argv":["/bin/sh","-c","/bin/sleep 30.'$uniq' & /bin/sleep 30.'$uniq'"]}' >/dev/null
job_add '{"id":"rs-2","argv":["/bin/sleep","31.'$uniq'"]}' >/dev/null
wait_for 5 eval '[ "$(node_status | jq -r "[.running, .queued] | join(\" \")")" = "1 1" ]'
is "$(node_status | jq -r '[.running, .queued] | join(" ")')" "1 1" "one job running, one queued"
ok "the run's processes are up" test -n "$(ps_marker "30.$uniq")"
is "$(pending)" 2 "both entries are read and not acknowledged"
old=$D_PID
ok "the old daemon has run cgroups (autoos-$old-*)" test -n "$(run_cgroups "$old")"

autoosd_kill9
wait_for 3 eval '[ -z "$(ps_marker "30.$uniq")" ]'
is "$(ps_marker "30.$uniq")" "" "no process of the run survives the daemon's SIGKILL"
is "$(count_results rs-1)" 0 "no result yet"

autoosd_start --max-runs 1 || bail_out "autoosd did not restart"
wait_result rs-1 5
r1=$RESULT
is "$(jf .outcome "$r1")" sandbox_error "the interrupted run is reported as sandbox_error"
is "$(jf .error "$r1")" "node restarted during the run" "with error 'node restarted during the run'"
is "$(jf '[.node, .workflow, .step, (.attempt | tostring)] | join(" ")' "$r1")" "$NODE wf s1 3" \
        "naming the node and echoing workflow, step and attempt (so the coordinator can retry it)"
wait_result rs-2 5
is "$(jf .outcome "$RESULT")" sandbox_error "the job read but not started is reported too"
is "$(count_results rs-1) $(count_results rs-2)" "1 1" "one result each"
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "both entries acknowledged by the new daemon"
sleep 0.3
is "$(ps_marker "31.$uniq")" "" "the reported job was not run after all"
is "$(run_cgroups "$old")" "" "no autoos-$old-* cgroup is left"

job_add '{"id":"rs-3","argv":["/bin/echo","again"]}' >/dev/null
wait_result rs-3
is "$(jf .outcome "$RESULT") $(jf .stdout "$RESULT")" "exited again" "the new daemon runs jobs"

# A result spooled but not delivered (Redis frozen) when the daemon dies.
job_add '{"id":"rs-4","argv":["/bin/sh","-c","/bin/sleep 1; echo done-4"]}' >/dev/null
wait_for 3 eval '[ -n "$(ps_marker "sleep 1; echo done-4")" ]'
kill -STOP "$REDIS_PID"
wait_for 5 eval '[ -n "$(ls "$D_STATE/spool" 2>/dev/null | grep "\.json$")" ]'
ok "the finished run's result is spooled while Redis does not answer" \
        test -n "$(ls "$D_STATE/spool" 2>/dev/null | grep '\.json$')"
old=$D_PID
autoosd_kill9
kill -CONT "$REDIS_PID"
autoosd_start --max-runs 1 || bail_out "autoosd did not restart"
wait_result rs-4 5
is "$(jf .outcome "$RESULT") $(jf .stdout "$RESULT")" "exited done-4" \
        "the next life delivers the spooled result as it was, not as lost"
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "and acknowledges its entry"
sleep 0.3
# The frozen Redis may still execute the dead daemon's buffered publish once it
# thaws: at-least-once allows a duplicate, but only the same result again.
is "$(results_for rs-4 | sort -u | wc -l)" 1 "delivered once, or again identically ($(count_results rs-4) copies)"
is "$(ls "$D_STATE/spool" | grep -c '\.json')" 0 "the spool is empty again"
is "$(run_cgroups "$old")" "" "no autoos-$old-* cgroup is left"

autoosd_stop
is "$D_RC" 0 "exit 0 on SIGTERM"

finish
