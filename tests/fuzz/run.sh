#!/bin/sh
# SPDX-License-Identifier: MIT
# `make fuzz` and `make fuzz-merge` (tests/fuzz/Makemodule.am), once the
# harnesses are built into tests/fuzz/bin/ (clang, libFuzzer, ASan+UBSan).
#
#   run.sh fuzz    runs each harness for FUZZ_SECONDS on a fresh copy of its
#                  corpus and crash reproducers (tests/fuzz/work/<harness>/,
#                  so the source tree's corpus does not grow), FUZZ_JOBS at a
#                  time. Prints TAP, one line per harness with executions,
#                  coverage and crashes, and "# executions: N" in total; the
#                  same goes to tests/fuzz/fuzz.log. A crash (or leak,
#                  timeout, out-of-memory) fails it and leaves the input in
#                  tests/fuzz/crashes/<harness>-crash-<sha1>, with a log.
#   run.sh merge   adds to tests/fuzz/corpus/<harness>/ in the source tree
#                  the inputs of the last run that reach new coverage.
#
# Environment (make passes it): top_srcdir, top_builddir, FUZZ_SECONDS
# (default 60), FUZZ_JOBS (default 1), FUZZ_HARNESSES.
set -u

mode=${1:-fuzz}
src=${top_srcdir:?}/tests/fuzz
out=${top_builddir:?}/tests/fuzz
bin=$out/bin
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
harnesses=${FUZZ_HARNESSES:-"parse spec result workflow http"}
# libFuzzer: a unit slower than this is a finding (the HTTP harness waits 10 s for an answer itself).
unit_timeout=25

case $seconds in '' | *[!0-9]*) echo "run.sh: FUZZ_SECONDS must be a number of seconds" >&2; exit 2 ;; esac
case $jobs in '' | 0 | *[!0-9]*) echo "run.sh: FUZZ_JOBS must be a positive number" >&2; exit 2 ;; esac

if [ "$mode" = merge ]; then
        status=0
        for h in $harnesses; do
                if [ ! -d "$out/work/$h/corpus" ]; then
                        echo "fuzz-merge: $h: no corpus from a run of make fuzz, skipped"
                        continue
                fi
                before=$(ls "$src/corpus/$h" | wc -l)
                "$bin/fuzz-$h" -merge=1 "$src/corpus/$h" "$out/work/$h/corpus" >"$out/work/$h/merge.log" 2>&1 ||
                        { echo "fuzz-merge: $h failed, see $out/work/$h/merge.log"; status=1; continue; }
                echo "fuzz-merge: $h: $(($(ls "$src/corpus/$h" | wc -l) - before)) inputs added to $src/corpus/$h"
        done
        exit $status
fi

mkdir -p "$out/crashes" "$out/work" || exit 1

# run_one HARNESS: fuzzes it; its log and corpus stay in work/HARNESS.
run_one() {
        w=$out/work/$1
        rm -rf "$w/corpus" "$w/log"
        rm -f "$out/crashes/$1-"*
        mkdir -p "$w/corpus"
        cp "$src/corpus/$1/"* "$w/corpus/" 2>/dev/null
        [ -d "$src/regressions/$1" ] && cp "$src/regressions/$1/"* "$w/corpus/" 2>/dev/null
        "$bin/fuzz-$1" -max_total_time="$seconds" -timeout="$unit_timeout" -rss_limit_mb=2048 \
                -print_final_stats=1 -artifact_prefix="$out/crashes/$1-" "$w/corpus" >"$w/log" 2>&1
        echo $? >"$w/status"
}

# Workers take the next harness not yet taken (mkdir is atomic), so FUZZ_JOBS run at once.
worker() {
        for h in $harnesses; do
                mkdir "$out/work/$h.taken" 2>/dev/null || continue
                run_one "$h"
        done
}

for h in $harnesses; do
        if [ ! -x "$bin/fuzz-$h" ]; then
                echo "run.sh: $bin/fuzz-$h is not built (make fuzz builds it)" >&2
                exit 2
        fi
        rm -rf "$out/work/$h.taken"
done

start=$(date +%s)
i=0
while [ $i -lt "$jobs" ]; do
        worker &
        i=$((i + 1))
done
wait
elapsed=$(($(date +%s) - start))

n=0
failed=0
total=0
{
        for h in $harnesses; do
                rm -rf "$out/work/$h.taken"
                n=$((n + 1))
                log=$out/work/$h/log
                execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
                rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
                cov=$(grep -a ' cov: ' "$log" | tail -n1 | sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/\1 (features \2)/p')
                corpus=$(ls "$out/work/$h/corpus" | wc -l)
                crashes=$(ls "$out/crashes" | grep -c "^$h-")
                status=$(cat "$out/work/$h/status" 2>/dev/null || echo '?')
                total=$((total + ${execs:-0}))
                what="fuzz-$h: ${execs:-0} executions in ${seconds} s (${rate:-0}/s), coverage ${cov:-?}, corpus $corpus, crashes $crashes"
                if [ "$status" = 0 ] && [ "$crashes" -eq 0 ] && [ -n "$execs" ]; then
                        echo "ok $n - $what"
                else
                        failed=$((failed + 1))
                        echo "not ok $n - $what (exit $status)"
                        grep -a -A 30 '^==[0-9]*==\|broken promise\|^SUMMARY' "$log" | head -n 60 | sed 's/^/# /'
                        for c in $(ls "$out/crashes" | grep "^$h-"); do
                                cp "$log" "$out/crashes/$c.log"
                                echo "# reproducer: $out/crashes/$c (log: $c.log)"
                                echo "#   run it: $bin/fuzz-$h $out/crashes/$c"
                                echo "#   once fixed, keep it: cp $out/crashes/$c $src/regressions/$h/"
                        done
                fi
        done
        echo "1..$n"
        echo "# executions: $total in ${elapsed} s wall, $jobs at a time"
} | tee "$out/fuzz.log"
! grep -q '^not ok' "$out/fuzz.log"
