#!/bin/sh
# clang-format holds (issue 11): every C file of the product, the tests and
# the benches is as .clang-format (the root's) lays it out. The layout is
# clang-format 14's, Debian 12's; another major version may lay out some
# lines differently, so it is skipped there rather than judged.
. "${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}/tests/lib.sh"

need_cmd clang-format
major=$(clang-format --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p')
if [ "$major" != 14 ]; then
        echo "1..0 # SKIP clang-format $major is not 14, the version the tree is laid out with"
        exit 0
fi
cd "$top_srcdir" || exit 1
dirs=$(for d in common sandbox memory client fabric daemon orchestrator adversarial cli tests bench; do [ -d "$d" ] && echo "$d"; done)
files=$(find $dirs -name '*.[ch]' | LC_ALL=C sort)
bad=""
for f in $files; do
        if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
                bad="$bad $f"
        fi
done
ok_count=$(echo "$files" | wc -w)
if [ -z "$bad" ]; then
        ok "clang-format holds for the $ok_count C files" true
else
        for f in $bad; do
                diag "$(clang-format --dry-run "$f" 2>&1 | head -n 12)"
        done
        ok "clang-format holds for the $ok_count C files (not for:$bad; run clang-format -i on them)" false
fi
done_testing
