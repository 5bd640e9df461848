#!/bin/sh
# SPDX-License-Identifier: MIT
# Per-workflow token bucket (rate, burst in autoosd.conf): over-limit jobs
# wait, none is dropped; each workflow has its own bucket; jobs outside a
# workflow are not limited.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

# started_at as epoch milliseconds
start_ms() {
        results_for "$1" | jq -r '((.started_at[0:19] + "Z") | fromdate) * 1000 + (.started_at[20:23] | tonumber)'
}

redis_start
autoosd_config "rate = 2" "burst = 1"
autoosd_start --max-runs 8 || bail_out "autoosd did not start"

for i in 1 2 3 4 5; do
        job_add '{"id":"a-'$i'","workflow":"wf-a","step":"s'$i'","attempt":1,"argv":["/bin/true"]}' >/dev/null
done
job_add '{"id":"b-1","workflow":"wf-b","step":"s1","attempt":1,"argv":["/bin/true"]}' >/dev/null
job_add '{"id":"free-1","argv":["/bin/true"]}' >/dev/null

for id in a-1 a-2 a-3 a-4 a-5 b-1 free-1; do
        wait_result "$id" 10 || true
done
all=0
for id in a-1 a-2 a-3 a-4 a-5 b-1 free-1; do
        [ "$(count_results "$id")" -ge 1 ] && all=$((all + 1))
done
is "$all" 7 "every job gets its result: over-limit jobs wait, none is dropped"
is "$(pending)" 0 "every entry is acknowledged"

a1=$(start_ms a-1)
a5=$(start_ms a-5)
b1=$(start_ms b-1)
f1=$(start_ms free-1)
# Burst 1 at 2 per second: the fifth job of wf-a starts no sooner than 2 s after the first.
cmp_ok "$((a5 - a1))" '>=' 1900 "wf-a is held to 2 jobs/s (5th started $((a5 - a1)) ms after the 1st)"
late=$((2000 + $(time_bound 2000))) # the slack past the bucket's 2 s scales with the host's speed
cmp_ok "$((a5 - a1))" '<=' "$late" "... and not much later than that (at most $late ms)"
# Queued behind wf-a, b-1 and free-1 would start after a-5 (the bucket's 2 s); on
# their own they start while wf-a's jobs are still held, however slow the host.
cmp_ok "$b1" '<' "$a5" "wf-b has its own bucket: it does not wait behind wf-a ($((b1 - a1)) ms after a-1, a-5 at $((a5 - a1)))"
cmp_ok "$f1" '<' "$a5" "a job outside any workflow is not limited ($((f1 - a1)) ms after a-1, a-5 at $((a5 - a1)))"
is "$(results_for a-3 | jq -r .outcome)" exited "a rate-limited job still runs normally"
done_testing
