#!/bin/sh
# SPDX-License-Identifier: MIT
# 100 runs at once (--max-runs 100): 100 jobs of `sleep S` all finish within a
# deadline, and more than 50 of them are seen running at the same time. S is
# 2 s times AUTOOS_TIME_SCALE (tests/lib.sh): on a host that starts runs five
# times slower, each run lasts long enough for 50 to be started while the
# first still sleep.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

N=100
S=$((2 * AUTOOS_TIME_SCALE))
redis_start
autoosd_start --max-runs $N || bail_out "autoosd did not start"

i=1
while [ $i -le $N ]; do
        printf 'XADD autoos:jobs:%s * spec '"'"'{"id":"c-%d","argv":["/bin/sleep","%d"]}'"'"'\n' "$NODE" $i $S
        i=$((i + 1))
done | rcli >/dev/null
t0=$(now_ms)

# Watch the daemon's own count while the results come in.
peak=0
peak_hb=0
DEADLINE=$(($(time_bound 40000) + S * 1000))
deadline=$((t0 + DEADLINE))
while :; do
        running=$(node_status | jq -r .running)
        [ "${running:-0}" -gt "$peak" ] && peak=$running
        hb=$(rcli HGET "autoos:node:$NODE" running)
        [ "${hb:-0}" -gt "$peak_hb" ] && peak_hb=$hb
        n=$(rcli XLEN autoos:results)
        [ "$n" -ge $N ] && break
        [ "$(now_ms)" -ge "$deadline" ] && break
        sleep 0.05
done
elapsed=$(($(now_ms) - t0))

is "$n" $N "all $N results arrived (in $elapsed ms)"
cmp_ok "$elapsed" '<' $DEADLINE "within the $((DEADLINE / 1000)) s deadline"
cmp_ok "$peak" '>' 50 "more than 50 runs at once (peak $peak seen over the control socket)"
cmp_ok "$peak_hb" '>' 0 "the heartbeat's running field follows (peak $peak_hb)"
is "$(results | jq -r .id | sort -u | wc -l)" $N "each job id has a result"
is "$(results | jq -r 'select(.outcome == "exited" and .exit_code == 0) | .id' | wc -l)" $N \
        "every run exited 0"
# sleep S in each: truly concurrent runs took far less than N x S seconds.
cmp_ok "$elapsed" '<' $((N * S * 1000 / 4)) "the runs overlapped ($elapsed ms for $N x $S s)"
wait_for 5 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "every job acknowledged"
is "$(metric autoosd_runs_total exited)" $N "metrics count $N exited runs"
is "$(node_status | jq -r .running)" 0 "nothing running afterwards"

autoosd_stop
is "$D_RC" 0 "autoosd exits 0 on SIGTERM"
is "$(run_cgroups "$D_PID")" "" "no run cgroup left behind"

finish
