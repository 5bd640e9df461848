#!/bin/sh
# SPDX-License-Identifier: MIT
# Jobs in, results out (DESIGN.md "Node <-> coordinator", "Result of a run"):
# the fields of a result, workflow/step/attempt echoed, the job acknowledged
# only with its result, the heartbeat hash and the metrics by outcome.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

redis_start
autoosd_start --max-runs 4 || bail_out "autoosd did not start"

job_add '{"id":"plain-1","argv":["/bin/sh","-c","echo out-$((6*7)); echo err >&2; exit 3"]}' >/dev/null
job_add '{"id":"wf-1","workflow":"wf-a","step":"build","attempt":2,"argv":["/bin/echo","step"]}' >/dev/null
job_add '{"id":"slow-1","argv":["/bin/sleep","5"],"limits":{"wall_ms":300}}' >/dev/null

wait_result plain-1
r=$RESULT
is "$(jf .id "$r")" plain-1 "result carries the job id"
is "$(jf .node "$r")" "$NODE" "result names the node"
is "$(jf .outcome "$r")" exited "a program that exits is 'exited'"
is "$(jf .exit_code "$r")" 3 "exit_code is the program's"
is "$(jf .signal "$r")" null "signal is null when it exited"
is "$(jf .stdout "$r")" out-42 "stdout is captured"
is "$(jf .stderr "$r")" err "stderr is captured"
is "$(jf '[.wall_ms, .cpu_ms, .memory_peak_bytes, .oom_kills] | map(type) | join(",")' "$r")" \
        number,number,number,number "wall_ms, cpu_ms, memory_peak_bytes, oom_kills are numbers"
is "$(jf '[.stdout_truncated, .stderr_truncated] | map(tostring) | join(",")' "$r")" false,false "nothing truncated"
is "$(jf '.denied_syscalls | type' "$r")" array "denied_syscalls is a list"
like "$(jf .started_at "$r")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z$' "started_at is ISO 8601 UTC"
is "$(jf '.finished_at >= .started_at' "$r")" true "finished_at is not before started_at"
is "$(jf 'has("workflow") or has("step")' "$r")" false "no workflow or step when the spec has none"

wait_result wf-1
r=$RESULT
is "$(jf '[.workflow, .step, (.attempt | tostring)] | join(" ")' "$r")" "wf-a build 2" \
        "workflow, step and attempt are echoed"
is "$(jf .stdout "$r")" step "the workflow job ran"

wait_result slow-1
is "$(jf .outcome "$RESULT")" timeout "a run over its wall-clock limit is 'timeout'"
# Early against its 5 s: at most 3 s past the 300 ms limit, scaled to this host, short of the 5 s.
early=$(time_bound 3000)
[ "$early" -gt 4800 ] && early=4800
cmp_ok "$(jf .wall_ms "$RESULT")" '<' "$early" "and it was stopped early ($(jf .wall_ms "$RESULT") ms, bound $early)"

wait_for 5 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "every job is acknowledged once its result is in (XPENDING 0)"
is "$(rcli XLEN autoos:results)" 3 "one result per job"
like "$(rcli GET "autoos:result:$NODE:plain-1")" '"id":"plain-1"' "the result is remembered for idempotency"
ttl=$(rcli TTL "autoos:result:$NODE:plain-1")
cmp_ok "$ttl" '>' 0 "the remembered result expires (TTL $ttl s)"

# Heartbeat: refreshed every second with PEXPIRE <= 3000, node in autoos:nodes.
wait_for 3 eval '[ "$(rcli EXISTS "autoos:node:$NODE")" = 1 ]'
hb() { rcli HGET "autoos:node:$NODE" "$1"; }
is "$(hb capacity)" 4 "heartbeat: capacity is max_runs"
is "$(hb running)" 0 "heartbeat: running"
like "$(hb version)" '^[0-9]+\.[0-9]+' "heartbeat: version"
like "$(hb cgroup_mode)" '^(v1|v2|hybrid)$' "heartbeat: cgroup mode"
is "$(hb kernel)" "$(uname -r)" "heartbeat: kernel"
like "$(hb started_at)" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T' "heartbeat: started_at"
is "$(rcli HEXISTS "autoos:node:$NODE" labels)" 1 "heartbeat: labels"
pttl=$(rcli PTTL "autoos:node:$NODE")
ok "heartbeat hash expires within 3000 ms (PTTL $pttl)" test "$pttl" -gt 0 -a "$pttl" -le 3000
sleep 1.5
pttl2=$(rcli PTTL "autoos:node:$NODE")
ok "heartbeat is refreshed (PTTL $pttl2 after 1.5 s)" test "$pttl2" -gt 1000 -a "$pttl2" -le 3000
is "$(rcli SISMEMBER autoos:nodes "$NODE")" 1 "the node is in autoos:nodes"

# Metrics: runs by outcome.
is "$(metric autoosd_runs_total exited)" 2 "metrics: autoosd_runs_total{outcome=exited}"
is "$(metric autoosd_runs_total timeout)" 1 "metrics: autoosd_runs_total{outcome=timeout}"
is "$(metric autoosd_run_duration_seconds_count)" 3 "metrics: the duration histogram counts every run"
is "$(metric autoosd_running)" 0 "metrics: nothing running"

# When the daemon goes, its heartbeat expires within 3 s.
autoosd_stop
is "$D_RC" 0 "SIGTERM with nothing running: exit 0"
wait_for 4 eval '[ "$(rcli EXISTS "autoos:node:$NODE")" = 0 ]'
is "$(rcli EXISTS "autoos:node:$NODE")" 0 "the heartbeat hash expires once the daemon is gone"

finish
