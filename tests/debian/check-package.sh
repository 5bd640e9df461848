#!/bin/sh
# SPDX-License-Identifier: MIT
# The Debian packages (debian/) as a distribution would check them, in TAP.
#
#   sh tests/debian/check-package.sh [OUTDIR]
#
# With no OUTDIR, builds the packages with scripts/build-deb into a temporary
# directory (a whole build: a few minutes, so this is not part of make
# check); with an OUTDIR that already holds a build (a .changes), checks
# that; with an empty or new OUTDIR, builds into it. Then: lintian reports no
# error or warning; every program in /usr/bin and /usr/sbin has its manual
# page in its own package, and every settings or policy file a program reads
# from /etc/autoos has a section-5 page; the units, sysusers.d and tmpfiles.d
# files are where systemd looks, agree with systemd/, and name programs the
# packages hold; the shipped settings files parse, with every built-in value
# they show uncommented; purge removes what tmpfiles.d creates; the control
# fields are sane. SKIPs when dpkg-buildpackage, dpkg-deb or lintian is
# missing. Needs no root and installs nothing.
. "$(dirname "$0")/../lib.sh"

need_cmd dpkg-deb dpkg-buildpackage lintian dpkg-parsechangelog man
src=$top_srcdir

# --- the build -------------------------------------------------------------------
out=${1:-$TEST_TMP/out}
if ! ls "$out"/*.changes >/dev/null 2>&1; then
        if "$src/scripts/build-deb" "$out" >"$TEST_TMP/build-deb.out" 2>&1; then
                tap_result 0 "scripts/build-deb built the packages"
        else
                tap_result 1 "scripts/build-deb built the packages"
                diag "$(tail -n 30 "$TEST_TMP/build-deb.out")"
                done_testing
        fi
fi
# scripts/build-deb keeps the log of the build, dh_auto_test's results included.
if [ ! -f "$out/build.log" ]; then
        skip 1 "no build.log in $out: built by something else than scripts/build-deb"
elif ! grep -aq '^# TOTAL:' "$out/build.log"; then
        skip 1 "dh_auto_test ran no tests (DEB_BUILD_OPTIONS=nocheck?)"
elif grep -aq '^# PASS: *[1-9]' "$out/build.log" && grep -aq '^# FAIL: *0$' "$out/build.log" &&
        grep -aq '^# ERROR: *0$' "$out/build.log"; then
        tap_result 0 "dh_auto_test ran the unit tests and they passed ($(sed -n 's/^# PASS: *//p' "$out/build.log" | head -n1) results)"
else
        tap_result 1 "dh_auto_test ran the unit tests and they passed"
        diag "$(grep -aE '^(# [A-Z]+:|FAIL|ERROR)' "$out/build.log" | head -n 20)"
fi
changes=$(ls "$out"/*.changes | head -n1)
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
packages=$(sed -n 's/^Package: *//p' "$src/debian/control")
is "$(echo $packages)" "autoosd autoos-coordinator autoosctl" "debian/control makes autoosd, autoos-coordinator and autoosctl"

# Each package's files (paths without the leading "."), control fields and maintainer scripts.
for p in $packages; do
        deb=$out/${p}_${version}_$arch.deb
        if [ ! -f "$deb" ]; then
                tap_result 1 "$p: $deb was built"
                continue
        fi
        mkdir -p "$TEST_TMP/x/$p" "$TEST_TMP/ctl/$p"
        dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$TEST_TMP/$p.files"
        dpkg-deb -x "$deb" "$TEST_TMP/x/$p"
        dpkg-deb -e "$deb" "$TEST_TMP/ctl/$p"
done
# has PACKAGE PATH: the package ships PATH.
has() {
        grep -qxF "$2" "$TEST_TMP/$1.files" 2>/dev/null
}
field() {
        sed -n "s/^$2: *//p" "$TEST_TMP/ctl/$1/control"
}

# --- lintian ---------------------------------------------------------------------
lintian --fail-on error,warning --pedantic --display-info "$changes" >"$TEST_TMP/lintian.out" 2>&1
lintian_rc=$?
tags=$(grep -E '^[EW]: ' "$TEST_TMP/lintian.out")
if [ -z "$tags" ] && [ "$lintian_rc" -eq 0 ]; then
        tap_result 0 "lintian $(lintian --version | sed 's/^Lintian v//'): no errors or warnings"
else
        tap_result 1 "lintian: no errors or warnings"
        diag "$(head -n 40 "$TEST_TMP/lintian.out")"
fi
# Info and pedantic tags are shown, not counted (debian/rules and the report say which remain and why).
grep -E '^[IP]: ' "$TEST_TMP/lintian.out" | sort -u | while read -r line; do diag "lintian $line"; done
# Every override says why: a comment line right above it.
for f in "$src"/debian/*.lintian-overrides "$src"/debian/source/lintian-overrides; do
        [ -f "$f" ] || continue
        awk 'NF && $0 !~ /^#/ && prev !~ /^#/ { bad = 1; print FILENAME ": " $0 } { prev = $0 } END { exit bad }' "$f" \
                >"$TEST_TMP/override.bad"
        ok "$(basename "$f"): every override has its reason above it" test ! -s "$TEST_TMP/override.bad"
done

# --- manual pages ----------------------------------------------------------------
for p in $packages; do
        for prog in $(grep -E '^/(usr/)?s?bin/[^/]+$' "$TEST_TMP/$p.files"); do
                name=$(basename "$prog")
                case $prog in
                */sbin/*) sections="8" ;;
                *) sections="1 8" ;;
                esac
                found=""
                for s in $sections; do
                        has "$p" "/usr/share/man/man$s/$name.$s.gz" && found="$name($s)"
                done
                ok "$p: $prog has its manual page in the package (${found:-none})" test -n "$found"
        done
done

# Settings and policy files: what each program reads from /etc/autoos by
# default, and the page that describes it. A new file there needs a line here.
formats="autoosd:/etc/autoos/autoosd.conf:autoosd.conf.5
autoosd:/etc/autoos/policy.json:autoos-policy.json.5
autoos-coordinator:/etc/autoos/coordinator.conf:autoos-coordinator.conf.5
autoosctl:/etc/autoos/autoosctl.conf:autoosctl.1"
for line in $formats; do
        p=${line%%:*}
        rest=${line#*:}
        file=${rest%%:*}
        page=${rest#*:}
        sec=${page##*.}
        if has "$p" "/usr/share/man/man$sec/$page.gz" &&
                zcat "$TEST_TMP/x/$p/usr/share/man/man$sec/$page.gz" | grep -qF "$file"; then
                tap_result 0 "$p: $file is described in ${page%.*}($sec)"
        else
                tap_result 1 "$p: $file is described in ${page%.*}($sec)"
        fi
done
# Every settings (.conf) or policy (.json) file under /etc/autoos the programs'
# sources name is in that table (key files are described by their programs' pages).
paths=$(grep -rhoE '(AUTOOS_SYSCONFDIR "|/etc)/autoos/[a-z.-]+\.(conf|json)' "$src"/daemon/*.c "$src"/orchestrator/*.c \
        "$src"/cli/*.[ch] "$src"/sandbox/*.[ch] | sed 's|^AUTOOS_SYSCONFDIR "|/etc|' | sort -u)
missing=""
for f in $paths; do
        printf '%s\n' "$formats" | grep -q ":$f:" || missing="$missing $f"
done
is "$missing" "" "every file the programs read from /etc/autoos has a page ($(echo $paths))"
# Every conffile is one of them.
for p in $packages; do
        [ -f "$TEST_TMP/ctl/$p/conffiles" ] || continue
        for f in $(cat "$TEST_TMP/ctl/$p/conffiles"); do
                like "$formats" "^$p:$f:" "$p: conffile $f has a section-5 page"
        done
done
# Each page renders without a warning from man (groff).
for p in $packages; do
        for page in $(grep -E '^/usr/share/man/man[1-8]/.*\.gz$' "$TEST_TMP/$p.files"); do
                warn=$(MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z \
                        "$TEST_TMP/x/$p$page" 2>&1 >/dev/null)
                is "$warn" "" "$p: $(basename "$page" .gz) renders without warnings"
        done
done

# --- systemd -------------------------------------------------------------------------
# UNIT PACKAGE PROGRAM
for u in "autoosd.service autoosd /usr/sbin/autoosd" \
        "autoos-coordinator.service autoos-coordinator /usr/bin/autoos-coordinator"; do
        set -- $u
        ok "$2: ships /lib/systemd/system/$1" has "$2" "/lib/systemd/system/$1"
        exec_start=$(sed -n 's/^ExecStart=//p' "$TEST_TMP/x/$2/lib/systemd/system/$1" 2>/dev/null)
        is "$exec_start" "$3" "$1: ExecStart is the packaged $3"
        ok "$2: $3 is in the package" has "$2" "$3"
done
if command -v systemd-analyze >/dev/null 2>&1; then
        # As installed, but with ExecStart pointing at the packaged program (not on this host).
        for u in autoosd/autoosd.service autoos-coordinator/autoos-coordinator.service; do
                p=${u%%/*}
                unit=$TEST_TMP/$(basename "$u")
                sed "s|^ExecStart=\(.*\)|ExecStart=$TEST_TMP/x/$p\1|" "$TEST_TMP/x/$p/lib/systemd/system/${u#*/}" >"$unit"
                out_v=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$unit" 2>&1)
                is "$out_v" "" "systemd-analyze verify: $(basename "$u") as packaged"
        done
else
        skip 2 "no systemd-analyze"
fi
# Neither unit is enabled or started at installation (debian/rules says why);
# postinst enables one again only where the administrator had.
for p in autoosd autoos-coordinator; do
        ok "$p: postinst neither enables nor starts $p.service" sh -c \
                "! grep -q 'deb-systemd-invoke' '$TEST_TMP/ctl/$p/postinst' &&
                 grep -q \"deb-systemd-helper debian-installed '$p.service'\" '$TEST_TMP/ctl/$p/postinst'"
done
ok "autoos-coordinator: postinst makes the fleet key, for the coordinator's user only" sh -c \
        "grep -q 'umask 077' '$TEST_TMP/ctl/autoos-coordinator/postinst' &&
         grep -q 'chown autoos-coordinator:autoos-coordinator' '$TEST_TMP/ctl/autoos-coordinator/postinst'"
ok "autoos-coordinator: postrm purge removes the fleet key" grep -q 'rm -f /etc/autoos/fleet.key' \
        "$TEST_TMP/ctl/autoos-coordinator/postrm"
ok "autoosd: postrm purge removes the node key" grep -q 'rm -f /etc/autoos/node.key' "$TEST_TMP/ctl/autoosd/postrm"

# sysusers.d: one file per package; together the same lines as systemd/autoos.sysusers.
ok "autoosd: /usr/lib/sysusers.d/autoosd.conf makes the group autoos" \
        grep -q '^g autoos ' "$TEST_TMP/x/autoosd/usr/lib/sysusers.d/autoosd.conf"
ok "autoos-coordinator: /usr/lib/sysusers.d/autoos-coordinator.conf makes the user autoos-coordinator" \
        grep -q '^u autoos-coordinator ' "$TEST_TMP/x/autoos-coordinator/usr/lib/sysusers.d/autoos-coordinator.conf"
entries() {
        grep -hv -e '^#' -e '^$' "$@" | sort
}
is "$(entries "$TEST_TMP/x/autoosd/usr/lib/sysusers.d/autoosd.conf" \
        "$TEST_TMP/x/autoos-coordinator/usr/lib/sysusers.d/autoos-coordinator.conf")" \
        "$(entries "$src/systemd/autoos.sysusers")" "the packages' sysusers.d lines are those of systemd/autoos.sysusers"
for p in $packages; do
        n=$(grep -c '^/usr/lib/sysusers.d/.*\.conf$' "$TEST_TMP/$p.files")
        if [ "$n" -gt 0 ]; then
                ok "$p: postinst runs systemd-sysusers" grep -q 'systemd-sysusers' "$TEST_TMP/ctl/$p/postinst"
                like "$(field "$p" Depends)" 'systemd-sysusers' "$p: Depends on a systemd-sysusers (\${misc:Depends})"
        fi
done
# tmpfiles.d: upstream's file, and purge removes each directory it creates.
ok "autoosd: ships /usr/lib/tmpfiles.d/autoos.conf" has autoosd /usr/lib/tmpfiles.d/autoos.conf
ok "it is systemd/autoos.tmpfiles" cmp -s "$TEST_TMP/x/autoosd/usr/lib/tmpfiles.d/autoos.conf" "$src/systemd/autoos.tmpfiles"
ok "autoosd: postinst runs systemd-tmpfiles --create" grep -q 'systemd-tmpfiles.*--create' "$TEST_TMP/ctl/autoosd/postinst"
for d in $(awk '$1 ~ /^[dD]$/ { print $2 }' "$src/systemd/autoos.tmpfiles"); do
        ok "autoosd: postrm purge removes $d" sh -c \
                "sed -n '/\"\$1\" = \"purge\"/,/^fi/p' '$TEST_TMP/ctl/autoosd/postrm' | grep -q 'rm -rf.* $d\\( \\|\$\\)'"
done
ok "autoosd: postrm purge removes /etc/autoos once empty" grep -q 'rmdir --ignore-fail-on-non-empty /etc/autoos' \
        "$TEST_TMP/ctl/autoosd/postrm"

# --- the shipped settings files ----------------------------------------------------------
# Each "#key = value" line shows a built-in value: uncommented, every one must be accepted.
uncomment() {
        sed -E 's/^#([a-z_]+ = )/\1/' "$1"
}
conf=$TEST_TMP/x/autoosd/etc/autoos/autoosd.conf
uncomment "$conf" >"$TEST_TMP/autoosd.conf"
echo '{}' >"$TEST_TMP/policy.json"
n=$(grep -cE '^[a-z_]+ = ' "$TEST_TMP/autoosd.conf")
for c in "$conf" "$TEST_TMP/autoosd.conf"; do
        r=$("$TEST_TMP/x/autoosd/usr/sbin/autoosd" --check-config --config "$c" --policy "$TEST_TMP/policy.json" 2>&1)
        like "$r" '^configuration ok' "autoosd --check-config accepts /etc/autoos/autoosd.conf$([ "$c" = "$conf" ] || echo ", its $n built-in values uncommented")"
done
# config_keys FILE: the keys a config.c compares with strcmp(key, "...") or lists in strings[].
config_keys() {
        {
                grep -o 'strcmp(key, "[a-z_]*")' "$1" | sed 's/.*"\(.*\)".*/\1/'
                sed -n 's/.*static const char \*const strings\[\] = {\(.*\)};/\1/p' "$1" | tr -d '",' | tr ' ' '\n'
        } | grep -v '^$' | sort -u
}
keys=$(config_keys "$src/daemon/config.c")
missing=""
for k in $keys; do
        grep -qE "^# ?$k =" "$conf" || missing="$missing $k"
done
is "$missing" "" "autoosd.conf shows every key of daemon/config.c ($(echo $keys | wc -w))"
missing=""
for k in $keys; do
        zcat "$TEST_TMP/x/autoosd/usr/share/man/man5/autoosd.conf.5.gz" | grep -q "^\.BI $k " || missing="$missing $k"
done
is "$missing" "" "autoosd.conf(5) describes every key of daemon/config.c"

conf=$TEST_TMP/x/autoos-coordinator/etc/autoos/coordinator.conf
uncomment "$conf" >"$TEST_TMP/coordinator.conf"
n=$(grep -cE '^[a-z_]+ = ' "$TEST_TMP/coordinator.conf")
# No check-only mode: --migrate reads the file, then fails to reach a database that is not there.
for c in "$conf" "$TEST_TMP/coordinator.conf"; do
        r=$("$TEST_TMP/x/autoos-coordinator/usr/bin/autoos-coordinator" -c "$c" --migrate \
                --db "host=$TEST_TMP/no-such-dir dbname=none" 2>&1)
        like "$r" '^autoos-coordinator: migrate: ' "autoos-coordinator accepts /etc/autoos/coordinator.conf$([ "$c" = "$conf" ] || echo ", its $n built-in values uncommented")"
done
keys=$(config_keys "$src/orchestrator/config.c")
missing=""
for k in $keys; do
        grep -qE "^# ?$k =" "$conf" || missing="$missing $k"
        zcat "$TEST_TMP/x/autoos-coordinator/usr/share/man/man5/autoos-coordinator.conf.5.gz" | grep -q "^\.BI $k " ||
                missing="$missing $k(5)"
done
is "$missing" "" "coordinator.conf and autoos-coordinator.conf(5) show every key of orchestrator/config.c ($(echo $keys | wc -w))"

# --- control fields ------------------------------------------------------------------
for p in $packages; do
        is "$(field "$p" Package) $(field "$p" Version) $(field "$p" Architecture)" "$p $version $arch" \
                "$p: Package, Version (debian/changelog) and Architecture"
        like "$(field "$p" Depends)" 'libc6 \(>= ' "$p: Depends has the shared libraries (\${shlibs:Depends})"
        syn=$(field "$p" Description)
        ok "$p: a synopsis of at most 80 characters, no final period ($syn)" \
                sh -c "[ ${#syn} -gt 0 ] && [ ${#syn} -le 80 ] && [ '${syn%.}' = '$syn' ]"
        like "$(field "$p" Maintainer)" '^[^<>]+ <[^@<>]+@[^@<>]+>$' "$p: Maintainer is a name and an address"
        is "$(field "$p" Section)/$(field "$p" Priority)" "admin/optional" "$p: Section admin, Priority optional"
done
bd=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$src/debian/control" | sed '$d' | sed 's/^Build-Depends://' |
        tr ',' '\n' | sed 's/(.*)//; s/[ \t]//g' | grep -v '^$')
like "$bd" '^debhelper-compat$' "Build-Depends: debhelper-compat (= 13)"
ok "debhelper compat 13" grep -q 'debhelper-compat (= 13)' "$src/debian/control"
missing=""
for b in $bd; do
        case $b in debhelper-compat) b=debhelper ;; esac
        sed -n '/^PACKAGES="/,/"$/p' "$src/scripts/install-deps" | tr ' "' '\n\n' | grep -qx "$b" || missing="$missing $b"
done
is "$missing" "" "scripts/install-deps installs every build dependency"
# Every pkg-config module configure.ac needs comes from a Build-Depends.
for m in $(sed -n 's/^PKG_CHECK_MODULES(\[[A-Z]*\], \[\(.*\)\])$/\1/p' "$src/configure.ac" |
        sed 's/ *[<>=]\+ *[0-9.]*//g'); do
        pc=$(pkg-config --variable=pcfiledir "$m" 2>/dev/null)/$m.pc
        owner=$(dpkg-query -S "$(readlink -f "$pc")" 2>/dev/null | sed 's/:.*//' | head -n1)
        printf '%s\n' "$bd" | grep -qx "${owner:-none}" || missing="$missing $m(${owner:-?})"
done
is "$missing" "" "Build-Depends has the package of every pkg-config module in configure.ac"
ok "Rules-Requires-Root: no" grep -q '^Rules-Requires-Root: no$' "$src/debian/control"
ok "dh runs with --with installsysusers" grep -q 'dh $@ --with installsysusers' "$src/debian/rules"

done_testing
