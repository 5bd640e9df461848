#!/bin/sh
# SPDX-License-Identifier: MIT
# The attack catalogue (adversarial/README.md) against this host's
# sandbox: `autoosctl adversarial --format tap`, each attack one test here,
# every one of them contained. Then the command itself: --list, --only,
# --format json and markdown, the refusals, and a selftest attack that always
# escapes, which must make the command fail (the harness can fail).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_root
need_cmd jq
need_built
ATTACK=$top_builddir/adversarial/attack
[ -x "$ATTACK" ] || bail_out "$ATTACK not built (make builds it)"
AUTOOS_ATTACK=$ATTACK
export AUTOOS_ATTACK

# adversarial OUT [OPTION]...: runs the command in the background (its pid names its
# run cgroups), output in $TEST_TMP/OUT, status in ADV_RC, pid in ADV_PID.
adversarial() {
        _out=$1
        shift
        "$AUTOOSCTL" adversarial "$@" </dev/null >"$TEST_TMP/$_out" 2>"$TEST_TMP/$_out.err" &
        ADV_PID=$!
        wait "$ADV_PID"
        ADV_RC=$?
}

# --- the whole catalogue, one test per attack ---------------------------------------
start=$(date +%s)
adversarial full.tap --format tap
took=$(($(date +%s) - start))
full_pid=$ADV_PID
full_rc=$ADV_RC

# Each of the catalogue's TAP lines becomes one of ours; its "#   " lines explain a failure.
last_failed=0
while IFS= read -r line; do
        case $line in
        "not ok "*)
                tap_result 1 "${line#not ok * - }"
                last_failed=1
                ;;
        "ok "*" # SKIP "*)
                desc=${line#ok * - }
                skip 1 "${desc#* \# SKIP } (${desc%% \# SKIP *})"
                last_failed=0
                ;;
        "ok "*)
                tap_result 0 "${line#ok * - }"
                last_failed=0
                ;;
        "#   "*)
                [ "$last_failed" -eq 1 ] && diag "${line#\# }"
                ;;
        esac
done <"$TEST_TMP/full.tap"

nattacks=$(grep -cE '^(not )?ok ' "$TEST_TMP/full.tap")
summary=$(grep -E '^# [0-9]+ attacks:' "$TEST_TMP/full.tap" | sed 's/^# //')
cmp_ok "$nattacks" '>=' 40 "the catalogue holds at least 40 sandbox attacks ($nattacks)"
like "$summary" "^$nattacks attacks: $nattacks contained, 0 not contained, 0 skipped, 0 errors$" \
        "every attack contained ($summary)"
is "$full_rc" 0 "autoosctl adversarial exits 0 when every attack is contained"
[ "$full_rc" -eq 0 ] || diag "stderr: $(cat "$TEST_TMP/full.tap.err")"
is "$(grep -E '^1\.\.[0-9]+$' "$TEST_TMP/full.tap")" "1..$nattacks" "its TAP plan counts every attack"
for g in escape kernel exhaustion side-channel time agent; do
        n=$(grep -cE "^(not )?ok [0-9]+ - $g/" "$TEST_TMP/full.tap")
        cmp_ok "$n" '>' 0 "group $g has attacks ($n)"
done
unlike "$(cat "$TEST_TMP/full.tap")" 'selftest' "the selftest attack is not part of a default run"
cmp_ok "$took" '<=' $((60 * AUTOOS_TIME_SCALE)) "the catalogue took ${took}s (at most $((60 * AUTOOS_TIME_SCALE)))"
is "$(run_cgroups "$full_pid")" "" "no run cgroup of the catalogue is left"
is "$(ps -eo args= | grep -c '[a]dv-mark-')" 0 "no process of a time attack is left on the host"
is "$(ls /tmp | grep -c '^autoos-adv\.')" 0 "the host fixtures (canary files) are removed"

# --- --list ----------------------------------------------------------------------------
adversarial list --list
is "$ADV_RC" 0 "--list exits 0"
# Rows start in column 1; the daemon, fleet, coordinator and egress groups are listed as one entry each
# (a description may go on over an indented line).
listed=$(awk 'NR > 1 && /^[^ ]/ && $1 != "daemon" && $1 != "fleet" && $1 != "coordinator" && $1 != "egress" && $1 != "selftest"' \
        "$TEST_TMP/list" | wc -l)
is "$listed" "$nattacks" "--list names as many sandbox attacks as a run has rows ($listed)"
like "$(grep selftest-escape "$TEST_TMP/list")" 'only when named' "--list says the selftest runs only when named"

# --- --only and the formats ----------------------------------------------------------------
adversarial kernel.json --only kernel --format json
is "$ADV_RC" 0 "--only kernel --format json exits 0"
nkernel=$(awk '$1 == "kernel"' "$TEST_TMP/list" | wc -l)
is "$(jq -r '[.attacks[].group] | unique | join(" ")' "$TEST_TMP/kernel.json")" kernel "--only kernel runs the kernel group alone"
is "$(jq -r '.summary.attacks' "$TEST_TMP/kernel.json")" "$nkernel" "--only kernel runs each of its $nkernel attacks"
is "$(jq -r '[.attacks[] | select(.verdict != "contained")] | length' "$TEST_TMP/kernel.json")" 0 "JSON: every kernel attack contained"
is "$(jq -r '.attacks[] | select(.name == "bpf") | .denied_syscalls | join(" ")' "$TEST_TMP/kernel.json")" bpf \
        "JSON: the bpf attack's row lists the denied syscall"

adversarial two.md --only chroot,ptrace --format markdown
is "$ADV_RC" 0 "--only chroot,ptrace --format markdown exits 0"
is "$(head -n 1 "$TEST_TMP/two.md")" "| attack | group | expectation | observed | denied syscalls | verdict |" \
        "markdown: the table's header"
is "$(grep -cE '^\| (chroot|ptrace) \| escape \|.*\| contained \|$' "$TEST_TMP/two.md")" 2 "markdown: one row per selected attack"
is "$(tail -n 1 "$TEST_TMP/two.md")" "2 attacks: 2 contained, 0 not contained, 0 skipped, 0 errors" "markdown: the summary line"

# --- the harness can fail ----------------------------------------------------------------
adversarial selftest.txt --only selftest-escape
is "$ADV_RC" 1 "an attack that escapes makes autoosctl adversarial exit 1"
like "$(cat "$TEST_TMP/selftest.txt")" '^1 attacks: 0 contained, 1 not contained' "...and it says \"not contained\""
adversarial selftest.json --only selftest-escape,chroot --format json
is "$(jq -r '[.attacks[] | .name + "=" + .verdict] | join(" ")' "$TEST_TMP/selftest.json")" \
        "chroot=contained selftest-escape=not_contained" "JSON: the escape is not_contained, the other row unaffected"
is "$ADV_RC" 1 "...and the exit status is 1 whatever else passed"

# --- refusals ----------------------------------------------------------------------------
adversarial nosuch.txt --only no-such-attack
is "$ADV_RC" 2 "--only naming nothing: exit 2"
like "$(cat "$TEST_TMP/nosuch.txt.err")" 'no such group or attack' "...with the reason"
adversarial badfmt.txt --format yaml
is "$ADV_RC" 2 "--format yaml: exit 2"
adversarial missing.txt --only chroot --attacks /nonexistent/attack
is "$ADV_RC" 1 "no attack program: exit 1 (an error, never a pass)"
like "$(cat "$TEST_TMP/missing.txt")" '0 contained, 0 not contained, 0 skipped, 1 errors' "...reported as an error"
adversarial restricted.txt --trust restricted --only chroot
is "$ADV_RC" 0 "--trust restricted with an attack program outside /usr: skipped, exit 0"
like "$(cat "$TEST_TMP/restricted.txt")" 'no /work.*under /usr' "...saying why"
if [ "$(id -u nobody 2>/dev/null)" ] && command -v setpriv >/dev/null 2>&1; then
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$AUTOOSCTL" adversarial --only chroot \
                >"$TEST_TMP/nonroot.txt" 2>&1
        is "$?" 1 "as non-root: exit 1"
        like "$(cat "$TEST_TMP/nonroot.txt")" 'need root' "...with a clear error"
else
        skip 2 "no nobody user or setpriv to try non-root"
fi

done_testing
