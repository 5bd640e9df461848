#!/bin/sh
# SPDX-License-Identifier: MIT
# make check-vm: boots each lane given (v2, v1, systemd) one after the other
# with tests/vm/vm.sh; each writes tests/vm/LANE.tap in the build tree (one
# plan per lane, every description prefixed with the lane). Prints them all,
# then one line per lane; exit status 0 when no lane has a "not ok".
# VM_LANES on make's command line chooses the lanes: make check-vm VM_LANES=v2
set -u
top_srcdir=${top_srcdir:?} top_builddir=${top_builddir:?}
export top_srcdir top_builddir
status=0
summary=""
for lane in "$@"; do
        s=$(date +%s)
        echo "=== check-vm: lane $lane"
        sh "$top_srcdir/tests/vm/vm.sh" "$lane" || status=1
        tap=$top_builddir/tests/vm/$lane.tap
        summary="$summary
check-vm $lane: $(grep -c '^ok' "$tap") ok ($(grep -c '^ok.*# SKIP\|^1\.\.0 # SKIP' "$tap") skipped), $(grep -c '^not ok' "$tap") not ok, $(($(date +%s) - s)) s"
done
echo "$summary" | sed '/^$/d'
exit $status
