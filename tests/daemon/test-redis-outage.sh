#!/bin/sh
# SPDX-License-Identifier: MIT
# Redis stopped and restarted mid-stream: runs keep finishing while it is
# down, their results wait in the spool, and after the restart every job id
# has a result (a duplicate only as the same result again); every entry is
# acknowledged. Redis keeps its data over the restart (AOF), as in production.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

N=24
REDIS_EXTRA="--appendonly yes --appendfsync always"
redis_start
autoosd_start --max-runs 4 || bail_out "autoosd did not start"

i=1
while [ $i -le $N ]; do
        printf '%s\n' "XADD autoos:jobs:$NODE * spec '{\"id\":\"o-$i\",\"argv\":[\"/bin/sh\",\"-c\",\"/bin/sleep 0.4; echo o-$i\"]}'"
        i=$((i + 1))
done | rcli >/dev/null

wait_for 10 eval '[ "$(rcli XLEN autoos:results)" -ge 2 ]'
redis_stop
before=$(node_status | jq -r '[.running, .queued] | add')
wait_for 5 eval '[ "$(node_status | jq -r .redis_connected)" = false ]'
is "$(node_status | jq -r .redis_connected)" false "the daemon notices Redis is gone"
# Runs go on without Redis; their results are kept. The jobs in hand finish
# (nothing new can be read), so the count is read once it no longer moves: on a
# slow host runs were still finishing between the status and the metrics read.
wait_for 60 eval '[ "$(node_status | jq -r '"'"'.running + .queued'"'"')" = 0 ]'
wait_for 10 eval '[ "$(node_status | jq -r .undelivered_results)" -ge 2 ]'
undelivered=$(node_status | jq -r .undelivered_results)
cmp_ok "$undelivered" '>=' 2 "runs finish while Redis is down ($undelivered results waiting, $before were in hand)"
cmp_ok "$(ls "$D_STATE/spool" | grep -c '\.json$')" '>=' 2 "their results are in the spool directory"
ok "the daemon keeps running without Redis" pid_alive "$D_PID"
is "$(metric autoosd_results_undelivered)" "$undelivered" "metrics: autoosd_results_undelivered"

redis_restart || bail_out "redis-server did not restart"
wait_for 60 eval '[ "$(results | jq -r .id | sort -u | wc -l)" -ge $N ]'
ids=$(results | jq -r .id | sort -u | wc -l)
is "$ids" $N "after the restart every job id has a result"
wait_for 30 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "every entry is acknowledged"
total=$(rcli XLEN autoos:results)
is "$(results | sort -u | wc -l)" "$ids" "duplicates only as the same result again ($total results for $ids ids)"
conflicts=$(results | sort -u | jq -r .id | sort | uniq -d | tr '\n' ' ')
[ -n "$conflicts" ] && diag "different results for one id: $conflicts" \
        "$(results | jq -r --arg c " $conflicts" 'select(. as $r | $c | contains(" " + $r.id + " ")) | [.id, .outcome, .error // ""] | join(" ")' | sort | head -n 8)"
is "$(results | jq -r 'select(.outcome == "exited" and .stdout == (.id + "\n")) | .id' | sort -u | wc -l)" $N \
        "each result is its own run's (exited, its own stdout)"
is "$(results | jq -r .id | grep -vc '^o-[0-9]*$')" 0 "no result under another id"
is "$(metric autoosd_runs_total exited)" $N "each job ran once"
wait_for 30 eval '[ "$(node_status | jq -r .undelivered_results)" = 0 ]'
is "$(node_status | jq -r .undelivered_results)" 0 "nothing left undelivered"
is "$(ls "$D_STATE/spool" | grep -c '\.json')" 0 "the spool is empty"
cmp_ok "$(metric autoosd_redis_reconnects_total)" '>=' 1 "metrics: the reconnection is counted"
is "$(node_status | jq -r .redis_connected)" true "connected again"
wait_for 3 eval '[ "$(rcli SISMEMBER autoos:nodes "$NODE")" = 1 ]'
is "$(rcli HGET "autoos:node:$NODE" capacity)" 4 "the heartbeat resumes"

# Redis killed outright (no SIGTERM) while idle: the daemon takes jobs again after.
kill -KILL "$REDIS_PID"
wait "$REDIS_PID" 2>/dev/null
REDIS_PID=
wait_for 5 eval '[ "$(node_status | jq -r .redis_connected)" = false ]'
redis_restart || bail_out "redis-server did not restart"
job_add '{"id":"after-kill","argv":["/bin/echo","back"]}' >/dev/null
wait_result after-kill 15
is "$(jf .stdout "$RESULT")" back "after Redis was killed and restarted, jobs run again"

autoosd_stop
is "$D_RC" 0 "exit 0 on SIGTERM"

finish
