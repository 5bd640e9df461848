#!/bin/sh
# SPDX-License-Identifier: MIT
# The v2 and v1 lanes' own checks, run in the VM after the lane's test
# scripts (tests/vm/guest-cgroup.sh): they prove the lane's cgroup code paths
# really ran, from the system calls autoosctl made (strace) and from what
# autoosd reports, rather than trusting that the tests would have noticed.
#
#   tests/vm/guest-checks.sh v2|v1
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
lane=$1
need_root
need_cmd jq strace
need_built probe

mounts=$(awk '$3 == "cgroup" || $3 == "cgroup2" { print $3 " " $2 }' /proc/self/mounts)
own=$(sed -n 's/^0:://p' /proc/self/cgroup)
if [ "$lane" = v2 ]; then
        is "$(printf '%s\n' "$mounts" | tr '\n' ' ')" "cgroup2 /sys/fs/cgroup " "cgroup2 at /sys/fs/cgroup is the only cgroup file system"
        base=/sys/fs/cgroup${own%/}
else
        is "$(printf '%s\n' "$mounts" | grep -c '^cgroup2')" 0 "no cgroup2 is mounted"
        for c in memory cpu cpuacct pids freezer; do
                is "$(printf '%s\n' "$mounts" | grep -c "^cgroup /sys/fs/cgroup/$c\$")" 1 "$c is its own v1 hierarchy"
        done
        own=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
        is "$own" /autoos-vm "the lane runs in /autoos-vm of each hierarchy, not at the root"
        base=/sys/fs/cgroup/memory$own
fi

# One run that times out with a setsid'd sleeper, under strace: how the run got
# into its cgroup, how the cgroup was killed, where its statistics came from.
# Followed with -f: the child is cloned from a spawner thread (sandbox/spawn.c),
# not autoosctl's main thread. Each line's pid goes, and a call another thread
# interrupted keeps its arguments on its "<unfinished ...>" line.
uniq=$$$(date +%N | cut -c1-6)
trace=$TEST_TMP/strace
strace -f -o "$trace.raw" -e trace=clone3,openat,write -y -s 80 \
        "$AUTOOSCTL" run --json --timeout 3s -- /bin/sh -c "(setsid /bin/sleep 700.$uniq &); /bin/sleep 701.$uniq" \
        </dev/null >"$TEST_TMP/run.json" 2>"$TEST_TMP/run.err"
sed -E 's/^[0-9]+ +//' "$trace.raw" >"$trace"
RUN_JSON=$(cat "$TEST_TMP/run.json")
is "$(jf .outcome)" timeout "the traced run ends as timeout"
cmp_ok "$(jf .memory_peak_bytes)" '>' 0 "memory_peak_bytes > 0 ($(jf .memory_peak_bytes))"
run_dir=$(grep -o '"autoos-[0-9]*-[0-9]*", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = [0-9]*<[^>]*>' "$trace" | head -n 1 | sed 's/.*<\(.*\)>$/\1/')
like "$run_dir" "^$base/autoos-[0-9]+-[0-9]+\$" "the run's cgroup was made below the lane's own cgroup ($run_dir)"
if [ "$lane" = v2 ]; then
        # strace names the fds an openat returns: the clone3's cgroup=N is the run's directory.
        into=$(awk '/^openat\(.* = [0-9]+</ { fd = $0; sub(/.* = /, "", fd); p = fd; sub(/<.*/, "", fd)
                        sub(/^[0-9]+</, "", p); sub(/>$/, "", p); path[fd] = p }
                /^clone3\(.*CLONE_NEWPID.*CLONE_INTO_CGROUP/ { c = $0; sub(/.*cgroup=/, "", c); sub(/[^0-9].*/, "", c)
                        print path[c]; exit }' "$trace")
        is "$into" "$run_dir" "the sandbox was cloned straight into its cgroup (clone3 CLONE_INTO_CGROUP, cgroup=$into)"
        like "$(grep 'cgroup.kill' "$trace" | grep '^write(')" 'write\([0-9]+<[^>]*/cgroup.kill>, "1", 1\) = 1' \
                "the timeout killed the whole cgroup with cgroup.kill"
        like "$(grep '"memory.peak"' "$trace")" '= [0-9]+<' "memory_peak_bytes was read from memory.peak"
        like "$(grep '"memory.events"' "$trace")" '= [0-9]+<' "oom kills are read from memory.events"
        like "$(grep '^write(.*/cpu.max>' "$trace")" '"50000 100000", 12\) = 12' "the CPU limit went into cpu.max (50000 100000)"
else
        unlike "$(grep '^clone3(' "$trace")" 'CLONE_INTO_CGROUP' "no CLONE_INTO_CGROUP on v1"
        like "$(grep '^write(' "$trace" | grep 'freezer.state')" '"FROZEN"' "the timeout froze the run's cgroup (freezer.state FROZEN)..."
        like "$(grep '^write(' "$trace" | grep 'freezer.state')" '"THAWED"' "...and thawed it after the SIGKILLs"
        like "$(grep '"memory.max_usage_in_bytes"\|"memory.memsw.max_usage_in_bytes"' "$trace")" '= [0-9]+<' \
                "memory_peak_bytes was read from memory(.memsw).max_usage_in_bytes"
fi
is "$(ps -eo args= | grep -c "/bin/sleep 70[01].$uniq")" 0 "no sleeper survives, setsid'd or not"
is "$(ls -d "$base"/autoos-* 2>/dev/null)" "" "the run's cgroups are removed"

# autoosd: what it says about this host, and a run through Redis.
need_redis
redis_start
autoosd_start
hb=$(rcli HGET "autoos:node:$NODE" cgroup_mode)
is "$hb" "$lane" "autoosd's heartbeat says cgroup_mode $lane"
job_add '{"id":"vm-lane-oom","argv":["/bin/dd","if=/dev/zero","of=/dev/null","bs=128M","count=1"],"limits":{"memory_bytes":33554432}}' >/dev/null
wait_result vm-lane-oom 120
is "$(jf .outcome "$RESULT")" oom "a job over its memory limit ends oom"
cmp_ok "$(jf .oom_kills "$RESULT")" '>=' 1 "its oom_kills are counted ($(jf .oom_kills "$RESULT"))"
autoosd_stop
is "${D_RC:-}" 0 "autoosd stops cleanly"
finish
