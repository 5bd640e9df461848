#!/bin/sh
# SPDX-License-Identifier: MIT
# PID 1 of the v2 and v1 lanes' VMs (tests/vm/init hands over to it): mounts
# the lane's cgroup layout, runs each test script of the lane from the build
# tree and writes what it printed to the 9p output directory (/mnt/out:
# NAME.tap, NAME.err, NAME.status "EXIT SECONDS", NAME.name), then the lane's
# own checks (tests/vm/guest-checks.sh, lane.tap), then "done", and powers off.
# "order" lists the NAMEs in the order they ran.
#
#   v2: cgroup_no_v1=all on the kernel command line, cgroup2 at /sys/fs/cgroup;
#       the tests run in the root cgroup (no internal-process rule there).
#   v1: every controller its own v1 hierarchy under a tmpfs /sys/fs/cgroup, no
#       cgroup2; the tests run in /autoos-vm of each hierarchy, so runs are
#       created below a non-root cgroup as on a host.
set -u
. /etc/autoos-vm/params
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
HOME=/root
TMPDIR=/tmp
LC_ALL=C
# LeakSanitizer's scan at every exit costs ~0.5 s of TCG per program; make
# check on the host looks for leaks, the VM for what the host cannot run.
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export PATH HOME TMPDIR LC_ALL ASAN_OPTIONS
OUT=/mnt/out

poweroff_now() {
        sync
        busybox poweroff -f
        echo o >/proc/sysrq-trigger
        sleep 30
}

mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
mount -t tmpfs -o mode=1777,nosuid,nodev shm /dev/shm
hostname "vm-$lane"
ip link set lo up

case "$lane" in
v2)
        mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup || echo "mount cgroup2 failed" >"$OUT/setup.err"
        layout="v2 (cgroup_no_v1=all, cgroup2 at /sys/fs/cgroup; tests in the root cgroup)"
        ;;
v1)
        mount -t tmpfs -o mode=0755 cgroup /sys/fs/cgroup
        for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
                mkdir -p "/sys/fs/cgroup/$c"
                mount -t cgroup -o "$c" cgroup "/sys/fs/cgroup/$c" || echo "mount v1 $c failed" >>"$OUT/setup.err"
                mkdir -p "/sys/fs/cgroup/$c/autoos-vm"
                # cpuset needs its cpus and mems before a task may join.
                [ "$c" = cpuset ] && cat /sys/fs/cgroup/cpuset/cpuset.cpus >/sys/fs/cgroup/cpuset/autoos-vm/cpuset.cpus &&
                        cat /sys/fs/cgroup/cpuset/cpuset.mems >/sys/fs/cgroup/cpuset/autoos-vm/cpuset.mems
                echo $$ >"/sys/fs/cgroup/$c/autoos-vm/cgroup.procs" || echo "join v1 $c/autoos-vm failed" >>"$OUT/setup.err"
        done
        layout="v1 (cpu, cpuacct, cpuset, memory, devices, freezer, blkio, pids each its own hierarchy, no cgroup2; tests in /autoos-vm)"
        ;;
esac

{
        echo "kernel=$(uname -r)"
        echo "cgroup=$layout"
        echo "systemd=none (a shell is PID 1)"
        echo "cpus=$(nproc)"
        echo "memory_kib=$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo)"
} >"$OUT/env"

if [ -n "$shell" ]; then
        echo "autoos-vm: lane $lane, tests not run; the build tree is $build. Exit the shell to power off."
        cd "$build" && top_srcdir=$src top_builddir=$build setsid -c /bin/sh -i </dev/ttyS0 >/dev/ttyS0 2>&1
        poweroff_now
fi

if [ -n "$tests" ]; then
        tests=$(printf '%s' "$tests" | tr ',' ' ')
else
        case "$lane" in
        # Every sandbox test that touches cgroups, and autoosd end to end; test-syscalls too, for
        # the seccomp filter on another kernel build (Debian's has the 32-bit entry this host lacks),
        # and egress (veth, nftables, tc) with that kernel's modules.
        # test-filesystem and test-privileges (mounts, capabilities) do not depend on the cgroup
        # layout: make check runs them, VM_TESTS can add them.
        v2)
                tests="tests/sandbox/test-limits.sh tests/sandbox/test-isolation.sh tests/sandbox/test-concurrency.sh
tests/sandbox/test-cli.sh tests/sandbox/test-syscalls.sh tests/daemon/test-jobs.sh tests/sandbox/test-egress.sh"
                ;;
        # The limits and their clean-up on v1 (the rest does not depend on the layout).
        v1)
                tests="tests/sandbox/test-limits.sh tests/sandbox/test-concurrency.sh"
                ;;
        esac
fi

# Each test alone, from the build tree as make check runs it; none may take more than 10 minutes.
run_tests() {
        for t in $tests; do
                name=$(printf '%s' "$t" | tr '/.' '__')
                printf '%s\n' "$t" >"$OUT/$name.name"
                echo "$name" >>"$OUT/order"
                s=$(date +%s)
                case "$t" in
                /*) path=$t ;;
                *) path=$src/$t ;;
                esac
                (cd "$build" && top_srcdir=$src top_builddir=$build exec timeout -s KILL 600 sh "$path") \
                        </dev/null >"$OUT/$name.tap" 2>"$OUT/$name.err"
                echo "$? $(($(date +%s) - s))" >"$OUT/$name.status"
        done
        (cd "$build" && top_srcdir=$src top_builddir=$build exec timeout -s KILL 300 sh "$src/tests/vm/guest-checks.sh" "$lane") \
                </dev/null >"$OUT/lane.tap" 2>"$OUT/lane.err"
}

# PID 1 only reaps: the tests run in a child, and orphans come back to us.
run_tests &
wait $!
date -u +%FT%TZ >"$OUT/done"
poweroff_now
