#!/bin/sh
# SPDX-License-Identifier: MIT
# SIGHUP reloads configuration and policy without dropping runs; a broken
# policy or configuration file is refused with a log line and the old one is
# kept; a good new one applies.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"
need_root
need_redis
need_daemon

MiB=1048576
# policy CEILING_MIB: the standard level's memory ceiling (and default) in MiB.
policy() {
        printf '{"levels":{"standard":{"defaults":{"memory_bytes":%d},"ceilings":{"memory_bytes":%d}}}}\n' \
                $(($1 * MiB / 2)) $(($1 * MiB)) >"$D_POLICY"
}
seq=0
# try MIB: a job asking for MIB MiB (a new id each time); sets OUTCOME and RESULT.
try() {
        seq=$((seq + 1))
        job_add '{"id":"m'$seq'","argv":["/bin/true"],"limits":{"memory_bytes":'$(($1 * MiB))'}}' >/dev/null
        if wait_result "m$seq" 5; then
                OUTCOME=$(jf .outcome "$RESULT")
        else
                OUTCOME="no result"
        fi
}
hup() {
        _lines=$(wc -l <"$D_LOG")
        kill -HUP "$D_PID" 2>/dev/null
        wait_for 3 eval '[ -n "$(tail -n +$((_lines + 1)) "$D_LOG" | grep -E "reload|refused")" ] || ! pid_alive "$D_PID"'
        HUP_LOG=$(tail -n +$((_lines + 1)) "$D_LOG")
}

redis_start
policy 256
autoosd_config "max_runs = 2"
autoosd_start || bail_out "autoosd did not start"

try 300; is "$OUTCOME" rejected "policy 1 (256 MiB ceiling): 300 MiB is rejected"
is "$(jf .error "$RESULT" | grep -o 'limits.memory_bytes')" limits.memory_bytes "naming limits.memory_bytes"
try 200; is "$OUTCOME" exited "policy 1: 200 MiB runs"

# A run in flight across every reload below.
uniq=$$$(date +%N | cut -c1-6)
job_add '{"id":"long","argv":["/bin/sh","-c","/bin/sleep 3.'$uniq'; echo survived"]}' >/dev/null
wait_for 3 eval '[ -n "$(ps_marker "sleep 3.$uniq")" ]'

# Broken policy: not JSON.
echo '{"levels": {"standard": ' >"$D_POLICY"
hup
like "$HUP_LOG" 'refused' "broken policy (bad JSON): a log line says the reload is refused"
like "$HUP_LOG" 'keeping' "and that the running configuration is kept"
ok "the daemon is still running" pid_alive "$D_PID"
try 300; is "$OUTCOME" rejected "the old policy still rejects 300 MiB"
try 200; is "$OUTCOME" exited "the old policy still accepts 200 MiB"

# Broken policy: valid JSON, an impossible value (default over the ceiling), and an unknown field.
printf '{"levels":{"standard":{"defaults":{"memory_bytes":%d},"ceilings":{"memory_bytes":%d}}}}\n' \
        $((2048 * MiB)) $((1024 * MiB)) >"$D_POLICY"
hup
like "$HUP_LOG" 'refused.*levels\.standard\.defaults\.memory_bytes' "default over ceiling: refused, naming the field"
try 300; is "$OUTCOME" rejected "the old policy is still in force"
echo '{"levelz":{}}' >"$D_POLICY"
hup
like "$HUP_LOG" 'refused.*levelz' "unknown policy field: refused, naming it"
try 300; is "$OUTCOME" rejected "the old policy is still in force"

# A good new policy applies.
policy 1024
hup
like "$HUP_LOG" 'reloaded' "a good policy: the log says reloaded"
try 300; is "$OUTCOME" exited "policy 2 (1 GiB ceiling): 300 MiB now runs"
try 2000; is "$OUTCOME" rejected "policy 2: 2000 MiB is rejected"
is "$(jf .error "$RESULT" | grep -o 'limits.memory_bytes')" limits.memory_bytes "naming limits.memory_bytes"

# Configuration: a broken file is refused, a good one applies (max_runs, seen in the heartbeat).
autoosd_config "max_runs = lots"
hup
like "$HUP_LOG" 'refused.*max_runs' "broken configuration: refused, naming max_runs"
sleep 1.1
is "$(rcli HGET "autoos:node:$NODE" capacity)" 2 "the old max_runs (2) is kept"
autoosd_config "max_runs = 3"
hup
like "$HUP_LOG" 'reloaded' "a good configuration: reloaded"
wait_for 2 eval '[ "$(rcli HGET "autoos:node:$NODE" capacity)" = 3 ]'
is "$(rcli HGET "autoos:node:$NODE" capacity)" 3 "the new max_runs (3) is in the heartbeat"
is "$(node_status | jq -r .capacity)" 3 "and in the status"

wait_result long 10
is "$(jf .outcome "$RESULT") $(jf .stdout "$RESULT")" "exited survived" "the run in flight went on through every reload"
ok "the daemon is still running" pid_alive "$D_PID"
wait_for 3 eval '[ "$(pending)" = 0 ]'
is "$(pending)" 0 "every entry acknowledged"

autoosd_stop
is "$D_RC" 0 "exit 0 on SIGTERM"

finish
