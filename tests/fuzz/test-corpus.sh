#!/bin/sh
# SPDX-License-Identifier: MIT
# Every fuzz harness (tests/fuzz/fuzz-*.c) as a plain regression test: its
# seed corpus (tests/fuzz/corpus/<harness>/) and the crash reproducers found
# so far (tests/fuzz/regressions/<harness>/) run through the harness with
# driver.c's main() (tests/fuzz/regress-<harness>, built by make check with
# the build's compiler and sanitizers). One result per harness and folder; a
# failure shows the driver's output, whose last "# <file>" line names the
# input that broke it.
. "$top_srcdir/tests/lib.sh"

FUZZ_HARNESSES=${FUZZ_HARNESSES:-"parse spec result workflow http"}

# run_dir HARNESS DIR WHAT
run_dir() {
        _bin=$top_builddir/tests/fuzz/regress-$1
        _n=$(find "$2" -maxdepth 1 -type f ! -name '.*' | wc -l)
        if [ ! -x "$_bin" ]; then
                tap_result 1 "fuzz-$1: $_bin is not built"
                return
        fi
        "$_bin" "$2" >"$TEST_TMP/out" 2>&1
        _rc=$?
        _ran=$(sed -n 's/^inputs: //p' "$TEST_TMP/out")
        if [ "$_rc" -eq 0 ] && [ "${_ran:-x}" = "$_n" ]; then
                tap_result 0 "fuzz-$1: $_n $3 run clean"
        else
                tap_result 1 "fuzz-$1: $3 (exit $_rc, ${_ran:-?} of $_n inputs ran)"
                diag "$(tail -n 40 "$TEST_TMP/out")"
        fi
}

for h in $FUZZ_HARNESSES; do
        corpus=$top_srcdir/tests/fuzz/corpus/$h
        regressions=$top_srcdir/tests/fuzz/regressions/$h
        if [ -d "$corpus" ] && [ -n "$(ls -A "$corpus")" ]; then
                run_dir "$h" "$corpus" "corpus inputs"
        else
                tap_result 1 "fuzz-$h: no seed corpus in $corpus"
        fi
        # Reproducers exist only for harnesses that found something.
        if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
                run_dir "$h" "$regressions" "crash reproducers"
        fi
done
done_testing
