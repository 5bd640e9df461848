#!/bin/sh
# The tree's structure (issue 11): DESIGN.md's layer arrows, no two files
# calling into each other, and a coordinator that links no isolation
# library. scripts/check-layers does the work on the objects make check built.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_cmd nm
need_cmd readelf
if [ ! -x "$top_builddir/orchestrator/autoos-coordinator" ]; then
        echo "1..0 # SKIP the coordinator is not built in $top_builddir"
        exit 0
fi
exec sh "$top_srcdir/scripts/check-layers" "$top_builddir"
