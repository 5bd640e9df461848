#!/bin/sh
# SPDX-License-Identifier: MIT
# autoosd's command line: --help, --version, --check-config on good and
# broken configuration and policy files (no Redis needed), bad options.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
AUTOOSD=$top_builddir/daemon/autoosd
[ -x "$AUTOOSD" ] || bail_out "$AUTOOSD not built"

d=$TEST_TMP
out=$("$AUTOOSD" --help 2>&1)
is "$?" 0 "--help: exit 0"
for opt in --config --redis --node-id --max-runs --metrics --policy --control-socket --state-dir --check-config; do
        like "$out" "^ +$opt" "--help describes $opt"
done
like "$out" 'SIGHUP' "--help describes SIGHUP"
like "$out" 'SIGTERM' "--help describes SIGTERM"
like "$out" 'autoos:jobs:' "--help names the jobs stream"
like "$("$AUTOOSD" -h 2>&1)" '^Usage: autoosd' "-h is --help"
like "$("$AUTOOSD" --version 2>&1)" '^autoosd [0-9]+\.[0-9]+' "--version"

# Good: a file, flags over it; Redis is not contacted (port 1 would refuse).
cat >"$d/good.conf" <<'CONF'
# a comment
redis = redis://127.0.0.1:1
node_id = node-a
max_runs = 8
labels = arch=x86_64,zone=a
grace = 5s
rate = 2
burst = 4
metrics = ""
CONF
out=$("$AUTOOSD" --check-config --config "$d/good.conf" --policy "$d/absent.json" 2>&1)
is "$?" 0 "--check-config on a good file: exit 0"
like "$out" 'node node-a' "it reports the node id from the file"
like "$out" '8 runs at once' "and max_runs"
like "$out" 'built-in' "and that the built-in policy applies when there is no policy file"
out=$("$AUTOOSD" --check-config --config "$d/good.conf" --policy "$d/absent.json" --node-id node-b --max-runs 3 2>&1)
like "$out" 'node node-b.*3 runs at once' "flags override the file"
printf '{"levels":{"standard":{"ceilings":{"memory_bytes":1073741824}}}}\n' >"$d/policy.json"
out=$("$AUTOOSD" --check-config --config "$d/good.conf" --policy "$d/policy.json" 2>&1)
is "$?" 0 "--check-config with a good policy file: exit 0"
like "$out" "policy $d/policy.json" "it names the policy file"
out=$("$AUTOOSD" --check-config --config "$d/absent.conf" 2>&1)
isnt "$?" 0 "an explicit --config that does not exist: refused"
like "$out" 'absent\.conf' "naming the file"

# broken NAME LINE... : a file with LINEs is refused by --check-config, naming WHAT (an ERE).
broken() {
        _what=$1
        _desc=$2
        shift 2
        printf '%s\n' "$@" >"$d/broken.conf"
        _out=$("$AUTOOSD" --check-config --config "$d/broken.conf" --policy "$d/absent.json" 2>&1)
        _rc=$?
        is "$_rc" 1 "broken config ($_desc): exit 1"
        like "$_out" "$_what" "broken config ($_desc): the message names it ($_out)"
}
broken "broken\\.conf:2: .*bogus" "unknown key" "max_runs = 2" "bogus = 1"
broken "broken\\.conf:1: .*max_runs" "max_runs not a number" "max_runs = many"
broken "max_runs" "max_runs 0" "max_runs = 0"
broken "broken\\.conf:1" "no '='" "just some words"
broken "grace" "bad duration" "grace = soon"
broken "node_id" "node id with a space" 'node_id = "a b"'
broken "redis" "not a redis URL" "redis = http://x"
broken "labels" "labels not k=v" "labels = novalue"
broken "log_level" "unknown log level" "log_level = chatty"
broken "state_dir" "relative state_dir" "state_dir = var/lib"

# Broken policy files.
printf '{' >"$d/bad.json"
out=$("$AUTOOSD" --check-config --config "$d/good.conf" --policy "$d/bad.json" 2>&1)
is "$?" 1 "a policy file that is not JSON: exit 1"
like "$out" 'bad\.json' "the message names the policy file ($out)"
printf '{"levels":{"standard":{"ceilings":{"memory_bytes":"lots"}}}}' >"$d/bad.json"
out=$("$AUTOOSD" --check-config --config "$d/good.conf" --policy "$d/bad.json" 2>&1)
is "$?" 1 "a policy with a bad value: exit 1"
like "$out" 'levels\.standard\.ceilings\.memory_bytes' "the message names the field ($out)"

# A uid pool overlapping a subordinate-id range (files given through the environment,
# never the host's /etc): refused, naming the file, its line and both ranges.
printf 'alice:100000:65536\nbuilder:999990000:20000\n' >"$d/subuid"
printf 'alice:100000:65536\n' >"$d/subgid"
out=$(AUTOOS_SUBUID_FILE="$d/subuid" AUTOOS_SUBGID_FILE="$d/subgid" "$AUTOOSD" --check-config --config "$d/good.conf" \
        --policy "$d/absent.json" 2>&1)
is "$?" 1 "a uid pool overlapping /etc/subuid: exit 1"
like "$out" "uid_base: uid pool 1000000000-1000065535 overlaps $d/subuid line 2 \\(builder: 999990000-1000009999\\)" \
        "the message names the file, the line and the ranges ($out)"
out=$(AUTOOS_SUBUID_FILE="$d/subgid" AUTOOS_SUBGID_FILE="$d/subuid" "$AUTOOSD" --check-config \
        --config "$d/good.conf" --policy "$d/absent.json" 2>&1)
like "$out" "overlaps $d/subuid line 2" "an overlap in /etc/subgid is refused too (the gids are the uids)"
{ cat "$d/good.conf"; printf 'uid_base = 1000100000\n'; } >"$d/far.conf"
out=$(AUTOOS_SUBUID_FILE="$d/subuid" AUTOOS_SUBGID_FILE="$d/subgid" "$AUTOOSD" --check-config --config "$d/far.conf" \
        --policy "$d/absent.json" 2>&1)
is "$?" 0 "a uid_base clear of every range: accepted ($out)"

# Bad command lines.
"$AUTOOSD" --no-such-option >/dev/null 2>&1
is "$?" 2 "an unknown option: exit 2"
out=$("$AUTOOSD" stray 2>&1)
is "$?" 2 "a stray argument: exit 2"
like "$out" stray "naming it"
out=$("$AUTOOSD" --check-config --config "$d/good.conf" --max-runs 2>&1)
isnt "$?" 0 "an option without its value: refused"

done_testing
