#!/bin/sh
# SPDX-License-Identifier: MIT
# Privileges inside a real sandbox: no capability in any set, NoNewPrivs,
# seccomp filter mode, setuid binaries granting nothing, no inherited fds.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_root
need_cmd jq
need_built

# What the status of pid 1 (the program) and of a child (sed, after execve) say.
status_script='
for who in 1 self; do
        for f in CapInh CapPrm CapEff CapBnd CapAmb NoNewPrivs Seccomp; do
                echo "$who.$f=$(sed -n "s/^$f:[[:space:]]*//p" /proc/$who/status)"
        done
done
echo "fds=$(ls /proc/self/fd | sort -n | tr "\n" " ")"
# Last: pid 1 becomes ls, which lists what pid 1 holds (plus its own directory fd).
printf "pid1_fds="; exec /bin/ls -m /proc/self/fd'

check_status() { # LABEL
        for who in 1 self; do
                [ $who = 1 ] && w="pid 1" || w="a child"
                for f in CapInh CapPrm CapEff CapBnd CapAmb; do
                        is "$(out $who.$f)" 0000000000000000 "$1: $f of $w is empty"
                done
                is "$(out $who.NoNewPrivs)" 1 "$1: NoNewPrivs of $w is 1"
                is "$(out $who.Seccomp)" 2 "$1: Seccomp of $w is 2 (filter)"
        done
}

# An extra descriptor open in the caller must not reach the program.
exec 3</dev/null 7</dev/null 8>"$TEST_TMP/leak"
run_json -- /bin/sh -c "$status_script"
exec 3<&- 7<&- 8>&-
is "$(jf .outcome)" exited "status run exits normally"
check_status standard
# ls holds one descriptor of its own on /proc/self/fd (3).
is "$(out fds)" "0 1 2 3 " "only stdio is open in a child (plus ls's own directory fd)"
is "$(out pid1_fds)" "0, 1, 2, 3" "only stdio is open in the program (pid 1; 3 is ls's own)"

# privileged is off unless a policy turns it on (the built-in policy: issue 10).
run_json --trust privileged -- /bin/true
is "$(jf .outcome)" rejected "privileged is rejected under the built-in policy"
like "$(jf .error)" 'privileged level is disabled' "...saying the level is disabled ($(jf .error))"
printf '{"levels":{"privileged":{"enabled":true}}}\n' >"$TEST_TMP/privileged.json"

# Even the most trusted level holds no capability.
run_json --policy "$TEST_TMP/privileged.json" --trust privileged -- /bin/sh -c "$status_script"
is "$(jf .outcome)" exited "privileged status run exits normally"
for f in CapInh CapPrm CapEff CapBnd CapAmb; do
        is "$(out 1.$f)" 0000000000000000 "privileged: $f of pid 1 is empty"
done
is "$(out 1.NoNewPrivs)" 1 "privileged: NoNewPrivs is 1"
is "$(out 1.Seccomp)" 2 "privileged: Seccomp is 2"

# setuid-root binaries from the host's /usr: they must not make anyone root.
suid=""
for b in /usr/bin/su /usr/bin/mount /usr/bin/newgrp; do
        [ -u "$b" ] && [ "$(stat -c %u "$b")" = 0 ] && suid="$suid $b"
done
if [ -z "$suid" ]; then
        skip 6 "no setuid-root su/mount/newgrp on this host"
else
        run_json -- /bin/sh -c '
echo "suid_visible=$(ls -l /usr/bin/su /usr/bin/mount 2>/dev/null | cut -c4 | tr "\n" " ")"
echo "usr_opts=$(awk "\$5 == \"/usr\" {print \$6}" /proc/self/mountinfo)"
echo | /usr/bin/su -c "id -u >/tmp/su-ran" root >/dev/null 2>&1
echo "su_exit=$?"
echo "su_ran=$(cat /tmp/su-ran 2>/dev/null || echo no)"
/usr/bin/mount -t tmpfs none /tmp 2>/tmp/mount.err
echo "mount_exit=$?"
echo "mount_err=$(head -n 1 /tmp/mount.err)"
echo "tmp_fs=$(awk "\$5 == \"/tmp\" {print \$9}" /proc/self/mountinfo | tr "\n" " ")"'
        is "$(out suid_visible)" "s s " "the setuid bits of su and mount are visible inside"
        like "$(out usr_opts)" '(^|,)nosuid(,|$)' "/usr is mounted nosuid"
        isnt "$(out su_exit)" 0 "su to root fails"
        is "$(out su_ran)" no "su never ran a command (as root or at all)"
        like "$(out mount_err)" 'must be superuser|permission denied|Operation not permitted' "setuid mount runs without privilege ($(out mount_err))"
        is "$(out tmp_fs)" "tmpfs " "mount changed nothing: one tmpfs on /tmp"
fi

done_testing
