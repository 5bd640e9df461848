#!/bin/sh
# SPDX-License-Identifier: MIT
# Idempotency: a job id XADDed twice runs once; both entries are acknowledged;
# a job id that already has a result is not run again, its stored result is
# re-sent (also by a restarted daemon).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

uniq=$$$(date +%N | cut -c1-6)
# sleep N.<unique>: findable in the process table, and still running when the
# duplicate comes on a slow host (AUTOOS_TIME_SCALE, tests/lib.sh).
mark="$((1 + AUTOOS_TIME_SCALE)).$uniq"
spec='{"id":"dup-1","argv":["/bin/sleep","'$mark'"]}'

redis_start
autoosd_start --max-runs 4 || bail_out "autoosd did not start"

# Twice: the second while the first is running.
e1=$(job_add "$spec")
wait_for 3 eval '[ -n "$(ps_marker "sleep $mark")" ]'
e2=$(job_add "$spec")
isnt "$e1" "$e2" "two distinct stream entries for the same id"
# Time for the daemon to read the second entry (and, were it wrong, to start it).
sleep "$(awk -v k="$AUTOOS_TIME_SCALE" 'BEGIN { print 0.3 * k }')"
is "$(ps_marker "sleep $mark" | wc -l)" 1 "only one process runs for the duplicated id"
is "$(node_status | jq -r .running)" 1 "the daemon counts one run"

wait_result dup-1 10
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "both entries are acknowledged (XPENDING 0)"
is "$(count_results dup-1)" 1 "one result for both entries"
is "$(metric autoosd_runs_total exited)" 1 "metrics: one run (autoosd_runs_total)"
first=$RESULT

# Again after the result is out: not run, the stored result re-sent.
job_add "$spec" >/dev/null
wait_for 5 eval '[ "$(count_results dup-1)" -ge 2 ]'
is "$(count_results dup-1)" 2 "an id that already has a result is answered again"
is "$(results_for dup-1 | tail -n 1)" "$first" "with the very same result (same started_at)"
is "$(metric autoosd_runs_total exited)" 1 "metrics: still one run"
is "$(ps_marker "sleep $mark")" "" "no process started for it"
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "that entry is acknowledged too"

# A restarted daemon remembers through Redis.
autoosd_stop
autoosd_start --max-runs 4 || bail_out "autoosd did not restart"
job_add "$spec" >/dev/null
wait_for 5 eval '[ "$(count_results dup-1)" -ge 3 ]'
is "$(count_results dup-1)" 3 "after a restart the id is answered again"
is "$(results_for dup-1 | tail -n 1)" "$first" "with the stored result"
is "$(metric autoosd_runs_total exited)" 0 "and the new daemon ran nothing"
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "acknowledged"

# Back to back, before the first has even started: still one run.
printf '%s\n' "XADD autoos:jobs:$NODE * spec '{\"id\":\"dup-2\",\"argv\":[\"/bin/true\"]}'" \
        "XADD autoos:jobs:$NODE * spec '{\"id\":\"dup-2\",\"argv\":[\"/bin/true\"]}'" | rcli >/dev/null
wait_result dup-2
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "back-to-back duplicates: both acknowledged"
is "$(metric autoosd_runs_total exited)" 1 "back-to-back duplicates: one run"
is "$(results_for dup-2 | jq -r .started_at | sort -u | wc -l)" 1 "back-to-back duplicates: one run's result"

# Two different ids are two runs (the check is by id, not by spec).
job_add '{"id":"dup-3","argv":["/bin/true"]}' >/dev/null
job_add '{"id":"dup-4","argv":["/bin/true"]}' >/dev/null
wait_result dup-3 && wait_result dup-4
is "$(metric autoosd_runs_total exited)" 3 "distinct ids each run"

finish
