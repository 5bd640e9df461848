#!/bin/sh
# SPDX-License-Identifier: MIT
# 100 runs at once (--max-runs 100): 100 jobs of `sleep 1` all finish within a
# deadline, and more than 50 of them are seen running at the same time.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

N=100
redis_start
autoosd_start --max-runs $N || bail_out "autoosd did not start"

i=1
while [ $i -le $N ]; do
        printf 'XADD autoos:jobs:%s * spec '"'"'{"id":"c-%d","argv":["/bin/sleep","1"]}'"'"'\n' "$NODE" $i
        i=$((i + 1))
done | rcli >/dev/null
t0=$(now_ms)

# Watch the daemon's own count while the results come in.
peak=0
peak_hb=0
deadline=$((t0 + 40000))
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
cmp_ok "$elapsed" '<' 40000 "within the 40 s deadline"
cmp_ok "$peak" '>' 50 "more than 50 runs at once (peak $peak seen over the control socket)"
cmp_ok "$peak_hb" '>' 0 "the heartbeat's running field follows (peak $peak_hb)"
is "$(results | jq -r .id | sort -u | wc -l)" $N "each job id has a result"
is "$(results | jq -r 'select(.outcome == "exited" and .exit_code == 0) | .id' | wc -l)" $N \
        "every run exited 0"
# sleep 1 in each: truly concurrent runs took far less than N seconds.
cmp_ok "$elapsed" '<' $((N * 1000 / 4)) "the runs overlapped ($elapsed ms for $N x 1 s)"
wait_for 5 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "every job acknowledged"
is "$(metric autoosd_runs_total exited)" $N "metrics count $N exited runs"
is "$(node_status | jq -r .running)" 0 "nothing running afterwards"

autoosd_stop
is "$D_RC" 0 "autoosd exits 0 on SIGTERM"
is "$(run_cgroups "$D_PID")" "" "no run cgroup left behind"

finish
