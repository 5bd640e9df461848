#!/bin/sh
# SPDX-License-Identifier: MIT
# Limits and supervision in real sandboxes: memory (oom), pids, CPU quota,
# wall time (killing setsid'd and double-forked descendants too), CPU time,
# output, /work size; exit statuses; the run's cgroups removed afterwards.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_root
need_cmd jq ps pgrep
need_built probe

uniq=$$$(date +%N | cut -c1-6)

# no_cgroups_left WHAT: the last run (RUN_PID) left no autoos-* cgroup below ours.
no_cgroups_left() {
        left=$(run_cgroups "$RUN_PID")
        is "$left" "" "$1: the run's cgroups are removed"
}

# host_procs ERE: host processes whose command line matches ERE (markers made unique by $uniq).
host_procs() {
        ps -eo pid=,args= | grep -E -- "$1" | grep -v -e grep -e autoosctl
}

# Should a sandbox fail to take its sleepers with it, they are ended here, by pid.
kill_leftovers() {
        for p in $(host_procs "/bin/sleep [0-9]+\\.$uniq\$" | awk '{ print $1 }'); do
                kill -KILL "$p"
        done
}
at_exit kill_leftovers

# Started first, in the background: a busy loop for 3 s at the default 50% of
# one CPU, and a timeout that must take a setsid'd and a double-forked sleeper
# with it. Everything below runs meanwhile.
run_json_start busy --timeout 3s -- /bin/sh -c 'while :; do :; done'
# Beside it, an unconfined busy loop for the same 3 s measures how much of a CPU
# this host could give any loop meanwhile (this test's other runs, other load):
# the bound below the sandboxed loop's share follows it.
ref_share=""
if command -v python3 >/dev/null 2>&1; then
        python3 -c '
import time
t0, c0 = time.monotonic(), time.process_time()
while time.monotonic() - t0 < 3:
    pass
print("%.3f" % ((time.process_time() - c0) / (time.monotonic() - t0)))' >"$TEST_TMP/ref-share" 2>/dev/null &
        ref_pid=$!
fi
run_json_start setsid --timeout 1s -- /bin/sh -c "
(setsid /bin/sleep 1000.$uniq &)
(/bin/sh -c '/bin/sleep 1001.$uniq & exit 0' &)
/bin/sleep 1002.$uniq"

# memory bomb: one 256 MiB buffer against a 64 MiB limit
run_json --memory 64M -- /bin/dd if=/dev/zero of=/dev/null bs=256M count=1
is "$(jf .outcome)" oom "memory bomb: outcome oom"
cmp_ok "$(jf .oom_kills)" '>=' 1 "memory bomb: oom_kills read from the cgroup ($(jf .oom_kills))"
is "$(jf .signal)" 9 "memory bomb: killed by SIGKILL"
is "$RUN_RC" 137 "memory bomb: autoosctl exits 137"
peak=$(jf .memory_peak_bytes)
cmp_ok "$peak" '<=' $((64 * 1024 * 1024 + 1024 * 1024)) "memory bomb: peak $peak stays within 64 MiB"
cmp_ok "$peak" '>=' $((32 * 1024 * 1024)) "memory bomb: peak $peak shows the bomb got going"
no_cgroups_left "memory bomb"

# ...and under the limit nothing happens
run_json --memory 64M -- /bin/dd if=/dev/zero of=/dev/null bs=16M count=1
is "$(jf .outcome)" exited "16 MiB under a 64 MiB limit: exited"
is "$(jf .oom_kills)" 0 "16 MiB under a 64 MiB limit: no oom kill"

# fork loop against --pids 32
run_json --pids 32 --timeout 20s -- /bin/sh -c 'while :; do /bin/sleep 60 & done'
is "$(jf .outcome)" pids_limit "fork loop: outcome pids_limit"
is "$RUN_RC" 137 "fork loop: autoosctl exits 137"
cmp_ok "$(jf .wall_ms)" '<' 10000 "fork loop: stopped well before the timeout ($(jf .wall_ms) ms)"
no_cgroups_left "fork loop"

# CPU time: a busy loop at 100% against --cpu-time 500ms
run_json --cpu-time 500ms --cpu 100 --timeout 20s -- /bin/sh -c 'while :; do :; done'
is "$(jf .outcome)" cpu_limit "busy loop: outcome cpu_limit"
is "$RUN_RC" 124 "cpu_limit: autoosctl exits 124"
cmp_ok "$(jf .cpu_ms)" '>=' 500 "cpu_limit: at least 500 ms of CPU used ($(jf .cpu_ms))"
cmp_ok "$(jf .cpu_ms)" '<' 1500 "cpu_limit: stopped soon after 500 ms ($(jf .cpu_ms))"
no_cgroups_left "cpu_limit"

# output: up to 8 times the limit is truncated and flagged, more ends the run
run_json --output-limit 1000 -- /bin/sh -c 'head -c 5000 /dev/zero | tr "\0" a; echo done >&2; exit 7'
is "$(jf .outcome)" exited "5000 bytes over a 1000-byte limit: the run goes on"
is "$(jf .exit_code)" 7 "5000 bytes: the program's exit code is kept"
is "$(jf '.stdout | length')" 1000 "5000 bytes: stdout holds exactly the limit"
is "$(jf '.stdout | test("^a+$")')" true "5000 bytes: what is kept is the start of the output"
is "$(jf .stdout_truncated)" true "5000 bytes: stdout_truncated"
is "$(jf .stderr)" done "5000 bytes: stderr is kept whole"
is "$(jf .stderr_truncated)" false "5000 bytes: stderr not flagged"
run_json --output-limit 1000 --timeout 20s -- /usr/bin/yes
is "$(jf .outcome)" output_limit "endless output: outcome output_limit"
is "$(jf '.stdout | length')" 1000 "endless output: stdout holds exactly the limit"
is "$(jf .stdout_truncated)" true "endless output: stdout_truncated"
is "$RUN_RC" 137 "output_limit: autoosctl exits 137"
cmp_ok "$(jf .wall_ms)" '<' 5000 "endless output: stopped at once ($(jf .wall_ms) ms)"
no_cgroups_left "output_limit"
out_plain=$("$AUTOOSCTL" run --output-limit 1000 -- /bin/sh -c 'head -c 5000 /dev/zero' 2>"$TEST_TMP/plain.err" | wc -c)
is "$out_plain" 1000 "without --json the passed-through output is bounded too"
like "$(cat "$TEST_TMP/plain.err")" 'discarded' "without --json autoosctl says output was discarded"

# /work full
run_json --work-size 1M -- /bin/sh -c '
dd if=/dev/zero of=/work/big bs=64k count=64 2>/tmp/dd.err; echo "dd=$?"
echo "err=$(grep -o "No space left on device" /tmp/dd.err | head -n 1)"
echo "size=$(stat -c %s /work/big)"
echo "tmp=$(echo still-writable >/tmp/x && cat /tmp/x)"'
is "$(jf .outcome)" exited "/work full: the run still exits normally"
isnt "$(out dd)" 0 "/work full: dd fails"
is "$(out err)" "No space left on device" "/work full: ENOSPC"
cmp_ok "$(out size)" '<=' 1048576 "/work full: the file stops at 1 MiB ($(out size))"
is "$(out tmp)" still-writable "/work full: the program carries on"

# exit statuses
run_json -- /bin/sh -c 'exit 3'
is "$(jf .outcome)/$(jf .exit_code)/$(jf .signal)" exited/3/null "exit 3: outcome exited, exit_code 3, signal null"
is "$RUN_RC" 3 "exit 3: autoosctl --json exits 3"
"$AUTOOSCTL" run -- /bin/sh -c 'exit 3' </dev/null >/dev/null 2>&1
is "$?" 3 "exit 3: autoosctl exits 3 without --json"

# The program is pid 1 of its namespace: signals it sends itself with the default
# action are ignored (init semantics), so "kill -TERM \$\$" cannot end it...
run_json -- /bin/sh -c 'kill -TERM $$; kill -KILL $$; echo alive'
is "$(jf .outcome)/$(jf .stdout)" "exited/alive" "pid 1 ignores its own default-action signals (documented: init semantics)"
# ...but a fault does: 128+N
run_json -- /usr/bin/python3 -c 'import ctypes; ctypes.string_at(0)'
is "$(jf .outcome)/$(jf .signal)/$(jf .exit_code)" signaled/11/null "a segfault: outcome signaled, signal 11"
is "$RUN_RC" 139 "a segfault: autoosctl exits 128+11"
run_json --file probe="$PROBE" -- /work/probe x32-getpid
is "$(jf .outcome)/$(jf .signal)" signaled/31 "a foreign-ABI syscall: signaled by SIGSYS"
is "$RUN_RC" 159 "SIGSYS: autoosctl exits 128+31"

# SIGKILL from the host to the sandbox's pid 1
run_json_start hostkill --timeout 20s -- /bin/sleep 300.$uniq
victim=""
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        victim=$(pgrep -x -f "/bin/sleep 300.$uniq")
        [ -n "$victim" ] && break
        sleep 0.1
done
[ -n "$victim" ] && kill -KILL $victim
run_json_finish hostkill
is "$(jf .outcome)/$(jf .signal)" signaled/9 "killed from the host: outcome signaled, signal 9"
is "$RUN_RC" 137 "killed from the host: autoosctl exits 128+9"
cmp_ok "$(jf .wall_ms)" '<' 10000 "killed from the host: reported at once"

# autoosctl itself told to stop: the run ends, descendants included
run_json_start term --timeout 20s -- /bin/sh -c "(setsid /bin/sleep 2000.$uniq &); /bin/sleep 2001.$uniq"
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        [ -n "$(host_procs "2000.$uniq")" ] && break
        sleep 0.1
done
kill -TERM "$(cat "$TEST_TMP/run.term.pid")"
run_json_finish term
is "$(jf .outcome)" signaled "autoosctl got SIGTERM: outcome signaled"
like "$(jf .reason)" 'received' "autoosctl got SIGTERM: the reason says so ($(jf .reason))"
is "$RUN_RC" 143 "autoosctl got SIGTERM: exits 128+15"
is "$(host_procs "200[01].$uniq")" "" "autoosctl got SIGTERM: the setsid'd sleeper is gone too"
no_cgroups_left "SIGTERM"

# The caller killed outright: the sandbox must not outlive it.
run_json_start kill9 --timeout 20s -- /bin/sh -c "(setsid /bin/sleep 3000.$uniq &); /bin/sleep 3001.$uniq"
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        [ -n "$(host_procs "3000.$uniq")" ] && break
        sleep 0.1
done
kill -KILL "$(cat "$TEST_TMP/run.kill9.pid")"
wait "$(cat "$TEST_TMP/run.kill9.pid")"
for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        [ -z "$(host_procs "300[01].$uniq")" ] && break
        sleep 0.1
done
is "$(host_procs "300[01].$uniq")" "" "autoosctl SIGKILLed: every sandboxed process dies with it"

# The background runs.
run_json_finish setsid
is "$(jf .outcome)" timeout "setsid + double fork: outcome timeout"
is "$RUN_RC" 124 "timeout: autoosctl exits 124"
cmp_ok "$(jf .wall_ms)" '<' 3000 "timeout: ended soon after 1 s ($(jf .wall_ms) ms)"
is "$(host_procs "100[012].$uniq")" "" "timeout: no sleeper survives, setsid'd or double-forked"
no_cgroups_left "timeout"

run_json_finish busy
is "$(jf .outcome)" timeout "3 s busy loop: outcome timeout"
wall=$(jf .wall_ms)
cpu=$(jf .cpu_ms)
ratio=$(awk -v c="$cpu" -v w="$wall" 'BEGIN { if (w > 0) printf "%.3f", c / w; else print 0 }')
cmp_ok "$wall" '>=' 2900 "3 s busy loop: ran for its 3 s ($wall ms)"
if [ -n "${ref_pid:-}" ] && wait "$ref_pid"; then
        ref_share=$(cat "$TEST_TMP/ref-share")
fi
# 0.40 when the host had a CPU to spare; less when even an unconfined loop got little.
low=$(awk -v s="${ref_share:-1}" 'BEGIN { b = 0.8 * s; if (b > 0.40) b = 0.40; printf "%.3f", b }')
cmp_ok "$ratio" '>=' "$low" \
        "busy loop held to 50% of one CPU: cpu/wall $ratio >= $low (an unconfined loop got ${ref_share:-?} of a CPU meanwhile)"
cmp_ok "$ratio" '<=' 0.60 "busy loop held to 50% of one CPU: cpu/wall $ratio <= 0.60"
[ "$(awk -v r="$ratio" 'BEGIN { print (r < 0.4) }')" = 1 ] && diag "load average: $(cat /proc/loadavg)"
no_cgroups_left "busy loop"

done_testing
