#!/bin/sh
# SPDX-License-Identifier: MIT
# The sandbox's file system, from inside: read-only root and host binds,
# hidden host files, masked /proc, minimal /dev, private writable /tmp and
# /work; restricted trust without a writable /work.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_root
need_cmd jq
need_built

marker=autoos-fs-test-$$
# What is masked in /proc, as runc and Docker do (maskedPaths, readonlyPaths; no /sys here)
# plus more (see sandbox/rootfs.c): files under /dev/null, directories under an empty
# read-only tmpfs, directories bound read-only.
PROC_MASKED_FILES="kcore sysrq-trigger timer_list timer_stats keys latency_stats sched_debug kallsyms kmsg kpagecount kpageflags kpagecgroup config.gz vmallocinfo interrupts softirqs"
PROC_MASKED_DIRS="acpi scsi asound driver pressure"
PROC_READONLY_DIRS="sys bus fs irq"

# w PATH: "rw" when a file can be created in the directory, else the error.
# r PATH: bytes readable from PATH (at most 1), or "none" when it cannot be opened.
# Some fifty programs: on a slow host (TCG in make check-vm) they need more than the default 30 s.
run_json --timeout "$(time_bound 30000)ms" --env MARKER="$marker" --env PROC_MASKED_FILES="$PROC_MASKED_FILES" \
        --env PROC_MASKED_DIRS="$PROC_MASKED_DIRS" --env PROC_READONLY_DIRS="$PROC_READONLY_DIRS" -- /bin/sh -c '
w() { if ( : >"$1/.autoos-w" ) 2>/tmp/w.err; then rm -f "$1/.autoos-w"; echo rw; else sed "s/.*: //" /tmp/w.err; fi; }
r() { if [ -e "$1" ]; then (head -c 1 "$1" 2>/dev/null || true) | wc -c; else echo none; fi; }
for d in / /usr /bin /lib /etc /proc /dev /tmp /work; do echo "w$d=$(w $d)"; done
for f in /etc/shadow /etc/gshadow /root /home /boot /var /sys /etc/sudoers /etc/ssh /run/autoos /etc/ssl/private /etc/ssl/certs; do
        echo "exists$f=$( [ -e $f ] && echo yes || echo no)"
done
echo "passwd_root=$(grep -c "^root:" /etc/passwd)"
echo "passwd_hashes=$(awk -F: "length(\$2) > 1" /etc/passwd | wc -l)"
for f in /proc/kcore /proc/sysrq-trigger /proc/kallsyms /proc/keys /proc/timer_list /proc/kpagecount /proc/kpageflags /proc/vmallocinfo; do
        echo "read$f=$(r $f)"
done
# masked files: the device bound over them (never read: /proc/kmsg would take host log lines)
for f in $PROC_MASKED_FILES; do
        echo "mask/proc/$f=$(if [ -c /proc/$f ]; then stat -c "dev:%t,%T" /proc/$f; elif [ -e /proc/$f ]; then echo "file, $(r /proc/$f) bytes readable"; else echo absent; fi)"
done
for d in $PROC_MASKED_DIRS; do
        echo "mask/proc/$d=$(if [ -d /proc/$d ]; then echo "$(ls -A /proc/$d | wc -l) entries, $(awk -v m=/proc/$d "\$5 == m {print \$9, \$6}" /proc/self/mountinfo)"; else echo absent; fi)"
done
for d in $PROC_READONLY_DIRS; do
        echo "ro/proc/$d=$(if [ -d /proc/$d ]; then awk -v m=/proc/$d "\$5 == m {print \$6}" /proc/self/mountinfo | cut -d, -f1; else echo absent; fi)"
done
echo "sysrq=$(if [ -c /proc/sysrq-trigger ]; then stat -c "dev:%t,%T" /proc/sysrq-trigger; elif [ -e /proc/sysrq-trigger ]; then echo file; else echo absent; fi)"
echo "write/proc/sys=$( (echo sandbox >/proc/sys/kernel/hostname) 2>/dev/null && echo yes || echo no)"
echo "opts/proc/sys=$(awk "\$5 == \"/proc/sys\" {print \$6}" /proc/self/mountinfo)"
echo "opts/=$(awk "\$5 == \"/\" {print \$6}" /proc/self/mountinfo)"
echo "opts/usr=$(awk "\$5 == \"/usr\" {print \$6}" /proc/self/mountinfo)"
echo "mountpoints=$(awk "{print \$5}" /proc/self/mountinfo | sort | tr "\n" " ")"
echo "dev=$(ls -A /dev | tr "\n" " ")"
echo "devpts=$(ls -A /dev/pts | tr "\n" " ")"
# test -c, not find -type c: readdir reports a bind mount point as the file under it
echo "chardevs=$(for f in /dev/* /dev/.[!.]*; do [ -c "$f" ] && [ ! -L "$f" ] && echo "$f"; done | sort | tr "\n" " ")"
echo "blockdevs=$(for f in /dev/* /dev/.[!.]* /dev/*/*; do [ -b "$f" ] && echo "$f"; done | wc -l)"
echo "devnums=$(stat -c "%n:%t,%T" /dev/null /dev/zero /dev/full /dev/random /dev/urandom | tr "\n" " ")"
echo "full=$(dd if=/dev/zero of=/dev/full bs=1 count=1 2>&1 | sed -n "1s/.*: //p")"
echo "zero=$(head -c 4 /dev/zero | od -An -tx1 | tr -d " ")"
echo "tmp_before=$(ls -A /tmp | grep -v "^w.err$" | tr "\n" " ")"
echo hello >/tmp/$MARKER && echo "tmp_write=$(cat /tmp/$MARKER)"
echo hello >/work/$MARKER && echo "work_write=$(cat /work/$MARKER)"
echo "pwd=$(pwd)"
echo "root_link=$(readlink /proc/1/root)"
echo "dotdot=$(ls -A /.. | tr "\n" " ")"
echo "rootls=$(ls -A / | tr "\n" " ")"'
is "$(jf .outcome)" exited "file-system probe run exits normally"
[ "$(jf .outcome)" = exited ] || diag "result: $RUN_JSON"

# read-only root and host binds
for d in / /usr /bin /lib /etc; do
        is "$(out "w$d")" "Read-only file system" "$d is read-only"
done
like "$(out opts/)" '(^|,)ro(,|$)' "the root mount is ro"
like "$(out opts/usr)" '(^|,)ro(,|$)' "/usr is mounted ro"
like "$(out opts/usr)" '(^|,)nodev(,|$)' "/usr is mounted nodev"

# host files hidden
for f in /etc/shadow /etc/gshadow /root /home /boot /var /sys /etc/sudoers /etc/ssh /run/autoos; do
        is "$(out "exists$f")" no "$f does not exist inside"
done
# /etc/ssl comes in (CA certificates), its private keys never do
is "$(out exists/etc/ssl/private)" no "/etc/ssl/private does not exist inside ($( [ -d /etc/ssl/private ] && echo present || echo absent) on the host)"
if [ -d /etc/ssl/certs ]; then
        is "$(out exists/etc/ssl/certs)" yes "/etc/ssl/certs is there (the rest of /etc/ssl is copied)"
else
        skip 1 "no /etc/ssl/certs on this host"
fi
is "$(out passwd_root)" 1 "/etc/passwd is there (curated copy)"
is "$(out passwd_hashes)" 0 "/etc/passwd holds no password hash"

# masked /proc: absent or empty, never the host's content
for f in /proc/kcore /proc/kallsyms /proc/keys /proc/timer_list /proc/kpagecount /proc/kpageflags /proc/vmallocinfo; do
        got=$(out "read$f")
        if [ -e "$f" ] && [ "$(head -c 1 "$f" 2>/dev/null | wc -c)" -eq 1 ]; then
                host="host has content"
        else
                host="empty or absent on the host too"
        fi
        like "$got" '^(0|none)$' "$f is masked: nothing to read inside ($host)"
done
# Each masked path, whatever the host has there: /dev/null, or an empty read-only tmpfs.
for f in $PROC_MASKED_FILES; do
        [ -e "/proc/$f" ] && host="present on the host" || host="absent on the host"
        like "$(out "mask/proc/$f")" '^(absent|dev:1,3)$' "/proc/$f is /dev/null inside, or absent ($host): $(out "mask/proc/$f")"
done
for d in $PROC_MASKED_DIRS; do
        [ -e "/proc/$d" ] && host="present on the host" || host="absent on the host"
        like "$(out "mask/proc/$d")" '^(absent|0 entries, tmpfs ro(,.*)?)$' "/proc/$d is an empty read-only tmpfs, or absent ($host): $(out "mask/proc/$d")"
done
for d in $PROC_READONLY_DIRS; do
        like "$(out "ro/proc/$d")" '^(absent|ro)$' "/proc/$d is mounted read-only, or absent: $(out "ro/proc/$d")"
done
if [ -r /proc/interrupts ] && [ "$(head -c 1 /proc/interrupts | wc -c)" -eq 1 ]; then
        is "$(out mask/proc/interrupts)" dev:1,3 "/proc/interrupts, readable on this host, is masked inside"
else
        skip 1 "this host has no readable /proc/interrupts"
fi
# Masked as runc and crun do, with /dev/null bound over it: a write is accepted and goes nowhere.
# (This host's kernel may have no sysrq at all; the Debian kernel of make check-vm has.)
like "$(out sysrq)" '^(absent|dev:1,3)$' "/proc/sysrq-trigger is /dev/null inside (or absent): a write cannot reach the kernel ($(out sysrq))"
is "$(out write/proc/sys)" no "/proc/sys cannot be written"
like "$(out opts/proc/sys)" '(^|,)ro(,|$)' "/proc/sys is mounted read-only"

# old root gone: only the sandbox's own mounts, / really is the root
unlike "$(out mountpoints)" '(^| )/(run|sys|var|home|root|oldroot|mnt)[/ ]' "no host mount point survives pivot_root ($(out mountpoints))"
is "$(out root_link)" / "pid 1's root is /"
is "$(out dotdot)" "$(out rootls)" "/.. is / (no way out)"
like "$(out dotdot)" '^bin dev etc lib' "listing /.. shows the sandbox's own root"

# minimal /dev
is "$(out dev)" "fd full null ptmx pts random shm stderr stdin stdout urandom zero " "/dev holds exactly the minimal set"
is "$(out devpts)" "ptmx " "/dev/pts is a new devpts: no host terminals"
is "$(out chardevs)" "/dev/full /dev/null /dev/random /dev/urandom /dev/zero " "the only device nodes are null, zero, full, random, urandom"
is "$(out blockdevs)" 0 "no block device in /dev"
is "$(out devnums)" "/dev/null:1,3 /dev/zero:1,5 /dev/full:1,7 /dev/random:1,8 /dev/urandom:1,9 " "each device is the real one"
is "$(out full)" "No space left on device" "/dev/full behaves"
is "$(out zero)" 00000000 "/dev/zero behaves"

# /tmp: private, empty, writable; /work writable and the working directory
is "$(out w/tmp)" rw "/tmp is writable"
is "$(out tmp_before)" "" "/tmp starts empty (not the host's)"
is "$(out tmp_write)" hello "a file written to /tmp reads back"
ok "the sandbox's /tmp file is not on the host" test ! -e "/tmp/$marker"
is "$(out w/work)" rw "/work is writable"
is "$(out work_write)" hello "a file written to /work reads back"
is "$(out pwd)" /work "the program starts in /work"
w=$(out w/proc); isnt "${w:-rw}" rw "/proc itself is not writable ($w)"
w=$(out w/dev); isnt "${w:-rw}" rw "/dev itself is not writable ($w)"

# /work size: a file of --work-size fits, past it ENOSPC (test-limits.sh fills it)

# restricted trust: no writable /work
run_json --trust restricted -- /bin/sh -c '
echo "work=$( (: >/work/x) 2>&1 | sed "s/.*: //")"
echo "root=$( (: >/x) 2>&1 | sed "s/.*: //")"
echo "tmp=$( (: >/tmp/x) 2>&1 | sed "s/.*: //")"
echo "shm=$( (: >/dev/shm/x) 2>&1 | sed "s/.*: //")"
echo "shadow=$( [ -e /etc/shadow ] && echo yes || echo no)"'
is "$(jf .outcome)" exited "restricted run exits normally"
like "$(out shm)" 'Read-only' "restricted: /dev/shm is read-only too (a size-0 tmpfs would have no limit) ($(out shm))"
like "$(out work)" 'Read-only|No such file|Permission denied' "restricted: /work is not writable ($(out work))"
like "$(out root)" 'Read-only' "restricted: / is read-only"
is "$(out shadow)" no "restricted: /etc/shadow is hidden"
diag "restricted: writing /tmp says: $(out tmp)"

done_testing
