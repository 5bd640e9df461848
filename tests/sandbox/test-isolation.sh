#!/bin/sh
# SPDX-License-Identifier: MIT
# Namespaces, from inside a real sandbox: pid, user (uid map to a pool uid),
# mount, network, uts, ipc, cgroup; and the host environment not leaking in.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_root
need_cmd jq ipcmk ipcrm
need_built

# A host SysV shared memory segment: the sandbox must not see it.
shmid=$(ipcmk -M 4096 2>/dev/null | awk '{print $NF}')
[ -n "$shmid" ] && at_exit "ipcrm -m $shmid"

# A host environment variable: it must not reach the program.
AUTOOS_TEST_HOST_SECRET=leaked-$$
export AUTOOS_TEST_HOST_SECRET

# One sandbox answers most questions, one KEY=VALUE line each.
run_json --env GIVEN=by-spec -- /bin/sh -c '
echo "pid=$$"
echo "ids=uid=$(id -u) gid=$(id -g)"
echo "uid_map=$(cat /proc/self/uid_map | tr -s " " | sed "s/^ //")"
echo "gid_map=$(cat /proc/self/gid_map | tr -s " " | sed "s/^ //")"
for n in pid user net mnt uts ipc cgroup; do echo "ns_$n=$(readlink /proc/self/ns/$n)"; done
echo "hostname=$(hostname)"
echo "uname_n=$(uname -n)"
echo "procs=$(ls /proc | grep -E "^[0-9]+$" | sort -n | tr "\n" " ")"
printf "pid1=%s\n" "$(tr "\0\n" "  " </proc/1/cmdline)"
echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\n" " ")"
echo "lo_up=$(ip -o link show lo 2>/dev/null | grep -c "[<,]UP[,>]")"
echo "shm_lines=$(wc -l </proc/sysvipc/shm)"
echo "shm_ids=$(tail -n +2 /proc/sysvipc/shm | awk "{print \$2}" | tr "\n" " ")"
echo "cgroup=$(cat /proc/self/cgroup | cut -d: -f3 | sort -u | tr "\n" " ")"
echo "env_names=$(env | cut -d= -f1 | sort | tr "\n" " ")"
echo "given=$GIVEN"
echo "secret=${AUTOOS_TEST_HOST_SECRET:-unset}"
'
is "$(jf .outcome)" exited "the probe run exits normally"
[ "$(jf .outcome)" = exited ] || diag "result: $RUN_JSON" "stderr: $RUN_ERR"

# pid
is "$(out pid)" 1 "pid namespace: the program is pid 1"
like "$(out pid1)" '^/bin/sh -c' "pid 1 inside runs the sandboxed shell"
procs=$(out procs)
nprocs=$(printf '%s\n' $procs | grep -c .)
cmp_ok "$nprocs" '<=' 6 "/proc lists only the sandbox's few processes ($procs)"
unlike "$procs" "(^| )$$( |$)" "/proc does not list the test's own host pid"

# user: uid 1000 inside maps to one unprivileged pool uid on the host
host_uid=$(jf .host_uid)
is "$(out ids)" "uid=1000 gid=1000" "runs as uid/gid 1000 inside"
is "$(out uid_map)" "1000 $host_uid 1" "uid_map maps exactly uid 1000 to the result's host_uid"
is "$(out gid_map)" "1000 $host_uid 1" "gid_map maps exactly gid 1000 to the same pool id"
cmp_ok "${host_uid:-0}" '>=' 65536 "host uid $host_uid is a pool id, far from host root and system users"
ok "host uid $host_uid names no host account" sh -c "! getent passwd '$host_uid' >/dev/null"

# every namespace differs from the host's
for n in pid user net mnt uts ipc cgroup; do
        host_ns=$(readlink /proc/self/ns/$n)
        got=$(out ns_$n)
        like "$got" "^$n:\[[0-9]+\]$" "$n namespace link readable inside"
        isnt "$got" "$host_ns" "$n namespace differs from the host's"
done

# uts
is "$(out hostname)" sandbox "uts: hostname is sandbox"
is "$(out uname_n)" sandbox "uts: uname -n is sandbox"
isnt "$(hostname)" sandbox "the host's own hostname is left alone"

# net: only loopback, up (standard trust, loopback network)
is "$(out ifaces)" "lo " "net: /proc/net/dev lists lo and nothing else"
is "$(out lo_up)" 1 "net: lo is up (loopback network)"

# ipc
if [ -n "$shmid" ]; then
        is "$(awk -v id="$shmid" 'NR > 1 && $2 == id { print "yes" }' /proc/sysvipc/shm)" yes "host shm segment $shmid exists on the host"
        is "$(out shm_ids)" "" "ipc: the host's SysV segment is invisible inside"
        is "$(out shm_lines)" 1 "ipc: /proc/sysvipc/shm inside holds only its header"
else
        skip 3 "ipcmk -M failed on the host"
fi

# cgroup namespace: the run's own cgroup is its root
is "$(out cgroup)" "/ " "cgroup namespace: every hierarchy shows / inside"

# environment
is "$(out given)" by-spec "--env reaches the program"
is "$(out secret)" unset "a host environment variable does not leak in"
unlike "$(out env_names)" "AUTOOS_TEST_HOST_SECRET|^LC_ALL | LC_ALL |TERM|SSH_" "no host variable in the program's environment ($(out env_names))"

# network none: no interface up at all, not even lo
run_json --net none -- /bin/sh -c '
echo "lo_up=$(ip -o link show lo 2>/dev/null | grep -c "[<,]UP[,>]")"
echo "ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\n" " ")"
echo "ping=$(ip -o addr show lo 2>/dev/null | grep -c "inet ")"'
is "$(out ifaces)" "lo " "--net none: only lo exists"
is "$(out lo_up)" 0 "--net none: lo is down"
is "$(out ping)" 0 "--net none: lo has no address"

# loopback up in standard: a TCP connection to 127.0.0.1 works inside
run_json -- /usr/bin/python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
c = socket.create_connection(s.getsockname(), timeout=2)
print("loopback=ok")'
is "$(out loopback)" ok "--net loopback (default): lo is up and usable"

# restricted: no loopback either
run_json --trust restricted -- /bin/sh -c 'echo "lo_up=$(ip -o link show lo 2>/dev/null | grep -c "[<,]UP[,>]")"'
is "$(out lo_up)" 0 "restricted trust: lo is down"

done_testing
