#!/bin/sh
# SPDX-License-Identifier: MIT
# Two sandboxes at once: different pool uids on the host, and neither sees
# the other's processes or files.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_root
need_cmd jq
need_built

uniq=$$$(date +%N | cut -c1-6)

# Each run leaves a mark in /work, /tmp, /dev/shm and the process table (a sleeper), waits
# for the other to do the same, then reports what it sees.
script='
echo mine >/work/mark-$TAG; echo mine >/tmp/mark-$TAG; echo mine >/dev/shm/mark-$TAG
/bin/sleep $SLEEP &
sleeper=$!
/bin/sleep 1
echo "uid_map=$(tr -s " " </proc/self/uid_map | sed "s/^ //")"
echo "files=$(ls /work /tmp /dev/shm | grep "^mark-" | sort | tr "\n" " ")"
# printf, not echo: dash'"'"'s echo would expand the backslashes of this very script
printf "procs=%s\n" "$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\0\n" "  ")"
kill $sleeper'

run_json_start a --env TAG="a$uniq" --env SLEEP="60.${uniq}1" -- /bin/sh -c "$script"
run_json_start b --env TAG="b$uniq" --env SLEEP="60.${uniq}2" -- /bin/sh -c "$script"
run_json_finish a
a=$RUN_JSON
run_json_finish b
b=$RUN_JSON

is "$(jf .outcome "$a")" exited "run a exits normally"
is "$(jf .outcome "$b")" exited "run b exits normally"
# They really overlapped (ISO 8601 UTC times compare as strings).
overlap=$(jq -n --argjson a "$a" --argjson b "$b" '$a.started_at < $b.finished_at and $b.started_at < $a.finished_at' 2>/dev/null)
is "$overlap" true "the two runs overlapped in time"

ua=$(jf .host_uid "$a")
ub=$(jf .host_uid "$b")
isnt "$ua" "$ub" "different host uids ($ua, $ub)"
is "$(out uid_map "$a")" "1000 $ua 1" "run a is mapped to its own host uid"
is "$(out uid_map "$b")" "1000 $ub 1" "run b is mapped to its own host uid"
cmp_ok "$ua" '>' 0 "run a's host uid is not root"
cmp_ok "$ub" '>' 0 "run b's host uid is not root"

is "$(out files "$a")" "mark-a$uniq mark-a$uniq mark-a$uniq " "run a sees its own marks in /work, /tmp and /dev/shm, and only those"
is "$(out files "$b")" "mark-b$uniq mark-b$uniq mark-b$uniq " "run b sees its own marks in /work, /tmp and /dev/shm, and only those"
like "$(out procs "$a")" "sleep 60\\.${uniq}1" "run a sees its own sleeper"
unlike "$(out procs "$a")" "60\\.${uniq}2|b$uniq" "run a does not see run b's processes"
like "$(out procs "$b")" "sleep 60\\.${uniq}2" "run b sees its own sleeper"
unlike "$(out procs "$b")" "60\\.${uniq}1|a$uniq" "run b does not see run a's processes"

done_testing
