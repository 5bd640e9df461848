#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd lane's checks, run inside the VM by autoos-vm.service once
# systemd 252 (PID 1, cgroup v2 unified) has reached multi-user.target. TAP on
# stdout (/mnt/out/lane.tap); tests/vm/vm.sh renumbers it.
#
# The package is installed as an administrator would: the .debs of
# scripts/build-deb with dpkg -i (or, when the tree has no debian/ yet, make
# install DESTDIR= of the build tree, said in a diag). autoosd.service is
# then started by systemd (Type=notify, WatchdogSec, Delegate=yes) against a
# redis-server started in the VM, and the checks are: READY and WATCHDOG
# reach systemd, the daemon moved itself into a leaf of its delegated cgroup
# and runs its jobs in cgroups beside it, the run limits hold (memory and OOM,
# 50% CPU, pids), SIGHUP (systemctl reload) reloads the settings,
# systemctl stop drains a run in progress into Redis, nothing is left in the
# unit's cgroup, and dpkg --purge leaves nothing behind.
set -u
. /etc/autoos-vm/params
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
LC_ALL=C
export PATH HOME LC_ALL
OUT=/mnt/out
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/lib-redis.sh"

if [ -n "$shell" ]; then
        echo "autoos-vm: systemd lane, checks not run. Exit the shell to power off." >/dev/ttyS0
        setsid -c /bin/sh -i </dev/ttyS0 >/dev/ttyS0 2>&1
        exit 0
fi

lane_start=$(date +%s)
NODE=vm-node
REDIS_PORT=6379
UNIT_CG=/sys/fs/cgroup/system.slice/autoosd.service

{
        echo "kernel=$(uname -r)"
        echo "systemd=$(systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p') (PID 1: $(cat /proc/1/comm))"
        echo "cgroup=$(stat -fc %T /sys/fs/cgroup) (unified; controllers: $(cat /sys/fs/cgroup/cgroup.controllers))"
} >"$OUT/env"

# unit_prop NAME: one property of autoosd.service.
unit_prop() {
        systemctl show -p "$1" --value autoosd.service
}

# hb FIELD: the node's heartbeat field.
hb() {
        rcli HGET "autoos:node:$NODE" "$1" 2>/dev/null
}

# job ID JSON-REST: a spec on the node's stream ("argv" and friends after the id).
job() {
        rcli XADD "autoos:jobs:$NODE" '*' spec "{\"id\":\"$1\",$2}" >/dev/null
}

# Results of the daemon, however it was started.
D_PID=1
pid_alive() { [ "$(unit_prop ActiveState)" = active ] || [ "$(unit_prop ActiveState)" = deactivating ]; }

# save_logs: what the guest saw, for the host to keep.
save_logs() {
        journalctl -b --no-pager -o short-monotonic >"$OUT/journal.txt" 2>&1
        journalctl -b --no-pager -u autoosd.service -o cat >"$OUT/autoosd.log" 2>&1
}
at_exit save_logs

# --- redis-server, under systemd ------------------------------------------------

cat >/etc/systemd/system/vm-redis.service <<EOF
[Unit]
Description=redis-server for the check-vm systemd lane
[Service]
ExecStart=/usr/bin/redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" --appendonly no --daemonize no --dir /tmp
EOF
systemctl daemon-reload
systemctl start vm-redis.service
ok "redis-server runs in the VM (vm-redis.service)" wait_for 30 eval 'rcli PING 2>/dev/null | grep -q PONG'

# --- the package ----------------------------------------------------------------------

. "$build/tests/vm/install.env"
conf=/etc/autoos/autoosd.conf
if [ "$method" = deb ]; then
        debs=$(ls "$debdir"/autoosd_*.deb "$debdir"/autoosctl_*.deb 2>/dev/null | tr '\n' ' ')
        diag "installing $debs"
        # The host's /usr may carry a policy-rc.d that forbids starting
        # services (container images do); a real host has none.
        rm -f /usr/sbin/policy-rc.d
        # The .debs' files over the host's dpkg database (an overlay): dependencies are checked against it.
        dpkg -i $debs >"$OUT/dpkg-install.log" 2>&1
        rc=$?
        is "$rc" 0 "dpkg -i autoosd autoosctl: exit 0"
        [ "$rc" = 0 ] || diag "$(tail -n 20 "$OUT/dpkg-install.log")"
        dpkg -L autoosd autoosctl 2>/dev/null | sort -u >"$OUT/package-files.txt"
        is "$(dpkg-query -W -f='${Status}' autoosd 2>/dev/null)" "install ok installed" "autoosd is installed"
        is "$(unit_prop LoadState)/$(unit_prop UnitFileState)" loaded/disabled \
                "systemd knows autoosd.service, installed but not enabled (it needs settings first)"
else
        diag "no Debian package (scripts/build-deb or debian/ missing): make install DESTDIR= of the build tree instead"
        cp -a "$destdir/." / && ok "make install DESTDIR= copied into /" true
        conf=$sysconfdir/autoos/autoosd.conf
        systemd-sysusers >/dev/null 2>&1
        systemd-tmpfiles --create autoos.conf >/dev/null 2>&1
        systemctl daemon-reload
fi
mkdir -p "$(dirname "$conf")"

# The administrator's settings: this redis, a node name, labels, a long
# enough grace. Jobs are fed by hand here (redis-cli XADD), as in
# tests/daemon, not by an enrolled coordinator that seals them: bus_auth off.
write_conf() {
        {
                echo "bus_auth = off"
                echo "redis = redis://127.0.0.1:$REDIS_PORT"
                echo "node_id = $NODE"
                echo "labels = $1"
                echo "grace = 45s"
                echo "max_runs = 4"
        } >"$conf"
}
write_conf "lane=systemd"
# Then it is enabled and started, as README.Debian says (after the settings).
systemctl enable autoosd.service >/dev/null 2>&1
is "$(systemctl is-enabled autoosd.service 2>&1)" enabled "systemctl enable autoosd"
systemctl start autoosd.service
rc=$?
is "$rc" 0 "systemctl start autoosd: exit 0 (returns once READY=1 reached systemd)"

# --- READY, the delegated cgroup, the heartbeat ---------------------------------------

is "$(unit_prop Type)/$(unit_prop ActiveState)/$(unit_prop SubState)" notify/active/running \
        "autoosd.service is Type=notify and active (READY=1 reached systemd)"
[ "$(unit_prop ActiveState)" = active ] ||
        bail_out "autoosd.service is not running: $(journalctl -b --no-pager -u autoosd.service -o cat | tail -n 5 | tr '\n' ' ')"
like "$(unit_prop StatusText)" '.' "STATUS= reached systemd ($(unit_prop StatusText))"
is "$(unit_prop Delegate)" yes "the unit has Delegate=yes"
mainpid=$(unit_prop MainPID)
is "$(sed -n 's/^0:://p' "/proc/$mainpid/cgroup")" /system.slice/autoosd.service/supervisor \
        "the daemon moved itself into a leaf of its delegated cgroup (no internal processes)"
sc=$(cat "$UNIT_CG/cgroup.subtree_control" 2>/dev/null)
like "$sc" 'memory' "memory is enabled for the runs below the unit ($sc)"
like "$sc" '(^| )cpu( |$)' "cpu is enabled for the runs below the unit"
like "$sc" 'pids' "pids is enabled for the runs below the unit"
ok "the node's heartbeat is in Redis" wait_for 20 eval '[ -n "$(hb beat)" ]'
is "$(hb cgroup_mode)" v2 "the heartbeat says cgroup_mode v2"
is "$(hb labels)" lane=systemd "the heartbeat has the settings file's labels"

# --- jobs and their limits --------------------------------------------------------------

job vm-hello '"argv":["/bin/sh","-c","echo hello from $(cat /proc/self/cgroup)"]'
wait_result vm-hello 60
is "$(jf .outcome "$RESULT")/$(jf .stdout "$RESULT")" "exited/hello from 0::/" \
        "a job from Redis runs and its result comes back (its own cgroup namespace)"
cmp_ok "$(jf .memory_peak_bytes "$RESULT")" '>' 0 "memory_peak_bytes from memory.peak ($(jf .memory_peak_bytes "$RESULT"))"

# While a run sleeps, its cgroup is beside the supervisor, with the spec's limits.
job vm-sleeper '"argv":["/bin/sleep","30"],"limits":{"memory_bytes":67108864,"pids":40,"cpu_percent":50}'
run_cg=""
find_run_cg() {
        run_cg=$(for d in "$UNIT_CG"/autoos-*; do [ -d "$d" ] && echo "$d"; done | head -n 1)
        [ -n "$run_cg" ] && [ -n "$(cat "$run_cg/cgroup.procs" 2>/dev/null)" ]
}
ok "the run's cgroup is made below the unit's, beside the supervisor" wait_for 60 find_run_cg
is "$(cat "$run_cg/memory.max" 2>/dev/null)/$(cat "$run_cg/pids.max" 2>/dev/null)/$(cat "$run_cg/cpu.max" 2>/dev/null)" \
        "67108864/40/50000 100000" "the run's cgroup has its memory.max, pids.max and cpu.max"
rcli XADD "autoos:jobs:$NODE" '*' cancel vm-sleeper >/dev/null
wait_result vm-sleeper 60
is "$(jf .outcome "$RESULT")/$(jf .reason "$RESULT")" signaled/cancelled "a cancel kills the run (its whole cgroup)"

job vm-oom '"argv":["/bin/dd","if=/dev/zero","of=/dev/null","bs=256M","count=1"],"limits":{"memory_bytes":67108864}'
wait_result vm-oom 90
is "$(jf .outcome "$RESULT")" oom "a 256 MiB buffer against 64 MiB: outcome oom"
cmp_ok "$(jf .oom_kills "$RESULT")" '>=' 1 "oom_kills counted from memory.events ($(jf .oom_kills "$RESULT"))"

job vm-forks '"argv":["/bin/sh","-c","while :; do /bin/sleep 60 & done"],"limits":{"pids":32,"wall_ms":60000}'
wait_result vm-forks 90
is "$(jf .outcome "$RESULT")" pids_limit "a fork loop against pids 32: outcome pids_limit"

job vm-busy '"argv":["/bin/sh","-c","while :; do :; done"],"limits":{"wall_ms":6000,"cpu_percent":50}'
wait_result vm-busy 90
wall=$(jf .wall_ms "$RESULT")
cpu=$(jf .cpu_ms "$RESULT")
ratio=$(awk -v c="$cpu" -v w="$wall" 'BEGIN { if (w > 0) printf "%.3f", c / w; else print 0 }')
is "$(jf .outcome "$RESULT")" timeout "a 6 s busy loop: outcome timeout"
cmp_ok "$ratio" '>=' 0.35 "the busy loop is held to 50% of one CPU by cpu.max: cpu/wall $ratio >= 0.35"
cmp_ok "$ratio" '<=' 0.65 "the busy loop is held to 50% of one CPU by cpu.max: cpu/wall $ratio <= 0.65"

# --- WATCHDOG ----------------------------------------------------------------------------

wd1=$(unit_prop WatchdogTimestampMonotonic)
is "$(unit_prop WatchdogUSec)" 10s "the unit's WatchdogSec is 10s"
cmp_ok "${wd1:-0}" '>' 0 "WATCHDOG=1 reached systemd (WatchdogTimestampMonotonic $wd1)"
wd_moved() { [ "$(unit_prop WatchdogTimestampMonotonic)" -gt "$wd1" ]; }
ok "WATCHDOG=1 keeps coming (the timestamp moves on)" wait_for 30 wd_moved
# Alive past its WatchdogSec since start, without a restart.
since=$(($(date +%s) - $(date -d "$(unit_prop ExecMainStartTimestamp)" +%s 2>/dev/null || echo 0)))
[ "$since" -lt 12 ] && sleep $((12 - since))
is "$(unit_prop ActiveState)/$(unit_prop NRestarts)/$(unit_prop MainPID)" "active/0/$mainpid" \
        "autoosd is still the same process, never restarted, past its 10 s WatchdogSec"

# --- SIGHUP --------------------------------------------------------------------------------

write_conf "lane=systemd,reloaded=yes"
systemctl reload autoosd.service
is "$?" 0 "systemctl reload autoosd: exit 0"
reloaded() { [ "$(hb labels)" = "lane=systemd,reloaded=yes" ]; }
ok "SIGHUP reloaded the settings: the heartbeat has the new labels" wait_for 30 reloaded
is "$(unit_prop MainPID)" "$mainpid" "the reload kept the same process"
like "$(journalctl -b --no-pager -u autoosd.service -o cat | grep -c 'reloaded')" '^[1-9]' \
        "the daemon's log says it reloaded"

# --- stop drains -----------------------------------------------------------------------------

job vm-drain '"argv":["/bin/sh","-c","sleep 8; echo drained"],"limits":{"wall_ms":120000}'
ok "a run is going when the stop comes" wait_for 60 find_run_cg
stop_start=$(date +%s)
systemctl stop autoosd.service
stop_rc=$?
stop_secs=$(($(date +%s) - stop_start))
is "$stop_rc" 0 "systemctl stop autoosd: exit 0 (after ${stop_secs} s)"
is "$(unit_prop ActiveState)/$(unit_prop Result)" inactive/success "the unit stopped cleanly (exit 0 after draining)"
RESULT=$(results_for vm-drain | tail -n 1)
is "$(jf .outcome "$RESULT")/$(jf .stdout "$RESULT")" "exited/drained" \
        "the run in progress at stop finished and its result reached Redis"
is "$(rcli XPENDING "autoos:jobs:$NODE" autoosd | head -n 1)" 0 "every job was acknowledged"

# --- nothing left ----------------------------------------------------------------------------

left=""
diag "after the stop the unit's cgroup $UNIT_CG $([ -d "$UNIT_CG" ] && echo "is still there: $(ls -A "$UNIT_CG" | grep -v '^[a-z]*\.' | tr '\n' ' ')" || echo "was removed by systemd")"
if [ -d "$UNIT_CG" ]; then
        left=$(cat "$UNIT_CG"/cgroup.procs "$UNIT_CG"/*/cgroup.procs 2>/dev/null)
        left="$left$(cd "$UNIT_CG" && ls -d autoos-* 2>/dev/null)"
fi
is "$left" "" "nothing is left in the unit's cgroup: no process, no run cgroup"
pool=$(ps -eo uid=,pid=,args= | awk '$1 >= 1000000000')
is "$pool" "" "no process of a pool uid is left"

# --- a crash: systemd restarts the daemon, which answers for the run it lost -----------------

systemctl start autoosd.service
is "$(unit_prop ActiveState)" active "systemctl start: autoosd runs again (its leaf cgroup made anew)"
mainpid=$(unit_prop MainPID)
restarts=$(unit_prop NRestarts)
job vm-crash '"argv":["/bin/sleep","120"],"limits":{"wall_ms":300000}'
ok "a run is going when the daemon is killed" wait_for 60 find_run_cg
crashed_cg=$run_cg
kill -KILL "$mainpid"
restarted() {
        [ "$(unit_prop ActiveState)" = active ] && [ "$(unit_prop MainPID)" != "$mainpid" ] &&
                [ "$(unit_prop MainPID)" != 0 ]
}
ok "SIGKILLed, autoosd is restarted by systemd (Restart=on-failure)" wait_for 60 restarted
is "$(unit_prop NRestarts)" $((restarts + 1)) "NRestarts counts it"
is "$(sed -n 's/^0:://p' "/proc/$(unit_prop MainPID)/cgroup")" /system.slice/autoosd.service/supervisor \
        "the new daemon is in the leaf again"
wait_result vm-crash 90
is "$(jf .outcome "$RESULT")/$(jf .error "$RESULT")" "sandbox_error/node restarted during the run" \
        "the run lost in the crash is answered: node restarted during the run"
gone() { [ ! -d "$crashed_cg" ]; }
ok "the crashed daemon's run cgroup is gone ($crashed_cg)" wait_for 30 gone
is "$(ps -eo uid=,args= | awk '$1 >= 1000000000 && /sleep 120/')" "" "the lost run's processes are gone"

# --- purge -----------------------------------------------------------------------------------

if [ "$method" = deb ]; then
        dpkg --purge autoosd autoosctl >"$OUT/dpkg-purge.log" 2>&1
        rc=$?
        is "$rc" 0 "dpkg --purge autoosd autoosctl: exit 0"
        [ "$rc" = 0 ] || diag "$(tail -n 20 "$OUT/dpkg-purge.log")"
        still=""
        while IFS= read -r f; do
                [ -n "$f" ] && [ ! -d "$f" ] && { [ -e "$f" ] || [ -L "$f" ]; } && still="$still $f"
        done <"$OUT/package-files.txt"
        is "$still" "" "no file of the packages is left"
        is "$(ls -d /etc/autoos /var/lib/autoos /run/autoos 2>/dev/null)" "" "/etc/autoos, /var/lib/autoos, /run/autoos are gone"
        is "$(systemctl show -p LoadState --value autoosd.service)" not-found "systemd no longer knows autoosd.service"
        is "$(dpkg-query -W -f='${Status}' autoosd 2>/dev/null)" "" "dpkg no longer knows autoosd"
else
        skip 1 "no Debian package to purge (make install DESTDIR= was used)"
fi

diag "systemd lane checks: $(($(date +%s) - lane_start)) s"
# autoos-vm.service powers the VM off when this script ends.
date -u +%FT%TZ >"$OUT/done"
done_testing
