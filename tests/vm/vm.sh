#!/bin/sh
# SPDX-License-Identifier: MIT
# Boots one check-vm lane in QEMU and turns what its tests printed into one
# TAP file, tests/vm/LANE.tap in the build tree (make check-vm runs this for
# each lane of VM_LANES; tests/vm/README.md says how the lanes work).
#
#   tests/vm/vm.sh LANE            # v2, v1 or systemd
#   tests/vm/vm.sh --shell LANE    # the same VM, a root shell on this terminal
#
# The VM is made from Debian packages alone: qemu-system-x86 (TCG), the
# kernel of linux-image-amd64 and busybox-static. The host's /usr is shared
# read-only over 9p, the build and source trees read-write at their own
# paths, so the VM runs the programs just built. Nothing is downloaded.
#
# Environment: top_srcdir, top_builddir (absolute; make check-vm sets them),
# VM_TIMEOUT (seconds a lane may take, then its qemu is killed), VM_MEMORY
# (MiB, default 2048), VM_TESTS (the test scripts a cgroup lane runs, paths
# relative to the source tree), VM_KERNEL (a /boot/vmlinuz-* other than
# the newest).
set -u
LC_ALL=C
export LC_ALL

shell=""
if [ "${1:-}" = --shell ]; then
        shell=1
        shift
fi
lane=${1:?usage: vm.sh [--shell] v2|v1|systemd}
case "$lane" in
v2 | v1 | systemd) ;;
*)
        echo "vm.sh: unknown lane '$lane' (v2, v1, systemd)" >&2
        exit 2
        ;;
esac

top_srcdir=$(cd "${top_srcdir:-$(dirname "$0")/../..}" && pwd -P)
top_builddir=$(cd "${top_builddir:-.}" && pwd -P)
W=$top_builddir/tests/vm
mkdir -p "$W"
TAP=$W/$lane.tap
OUT=$W/out-$lane
CONSOLE=$W/$lane.console
started=$(date +%s)

# skip_lane WHY: the lane cannot run on this host.
skip_lane() {
        echo "1..0 # SKIP $lane lane: $1" >"$TAP"
        cat "$TAP"
        exit 0
}

# --- what the VM is made of -----------------------------------------------------

QEMU=$(command -v qemu-system-x86_64) || skip_lane "no qemu-system-x86_64 (Debian package qemu-system-x86)"
if [ -n "${VM_KERNEL:-}" ]; then
        KERNEL=$VM_KERNEL
else
        KERNEL=$(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n 1)
fi
[ -n "$KERNEL" ] && [ -f "$KERNEL" ] || skip_lane "no /boot/vmlinuz-*-amd64 (Debian package linux-image-amd64)"
[ -r "$KERNEL" ] || skip_lane "$KERNEL is not readable (needs root)"
KVER=${KERNEL#/boot/vmlinuz-}
MODDIR=/usr/lib/modules/$KVER
[ -d "$MODDIR" ] || skip_lane "no $MODDIR for $KERNEL"
BUSYBOX=""
for b in /bin/busybox /usr/bin/busybox; do
        [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1 && BUSYBOX=$b && break
done
[ -n "$BUSYBOX" ] || skip_lane "no static busybox (Debian package busybox-static)"
# The VM's /bin, /lib... are the host's merged-/usr symlinks.
[ -L /bin ] && [ -L /lib ] || skip_lane "the host's /usr is not merged (/bin, /lib are not symlinks into /usr)"
[ "$(id -u)" -eq 0 ] || skip_lane "needs root (the kernel image, 9p shares of root-owned trees)"

# The modules that mount a 9p share, in load order (busybox insmod resolves no
# dependencies); overlay for the systemd lane's /usr.
MODULES="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet 9pnet_virtio
netfs fscache 9p overlay"

# The host's /etc entries a sandbox copies into its root (sandbox/rootfs.c)
# and those the VM's own programs need (dpkg, systemd; the accounts of the
# host's packages, which the guest gives locked passwords; no shadow file).
ETC="alternatives bash.bashrc ca-certificates ca-certificates.conf debian_version gai.conf host.conf
inputrc ld.so.cache ld.so.conf ld.so.conf.d localtime magic mime.types nsswitch.conf os-release perl
protocols python3 python3.11 services ssl timezone xattr.conf dpkg profile shells login.defs
environment passwd group"

# build_initramfs FILE: busybox, the modules, /init, the host's /etc entries.
build_initramfs() {
        _d=$W/initramfs.d
        rm -rf "$_d"
        mkdir -p "$_d/bin" "$_d/modules" "$_d/hostetc" "$_d/hostroot" "$_d/dev" || return 1
        cp "$BUSYBOX" "$_d/bin/busybox" || return 1
        cp "$top_srcdir/tests/vm/init" "$_d/init" && chmod 0755 "$_d/init" || return 1
        : >"$_d/modules/order"
        for _m in $MODULES; do
                _f=$(find "$MODDIR/kernel" -name "$_m.ko" -o -name "$_m.ko.xz" -o -name "$_m.ko.zst" | head -n 1)
                [ -n "$_f" ] || {
                        echo "vm.sh: module $_m not found in $MODDIR" >&2
                        return 1
                }
                case "$_f" in
                *.xz) xz -dc "$_f" >"$_d/modules/$_m.ko" ;;
                *.zst) zstd -qdc "$_f" >"$_d/modules/$_m.ko" ;;
                *) cp "$_f" "$_d/modules/$_m.ko" ;;
                esac || return 1
                echo "$_m" >>"$_d/modules/order"
        done
        for _e in $ETC; do
                [ -e "/etc/$_e" ] || [ -L "/etc/$_e" ] || continue
                cp -a "/etc/$_e" "$_d/hostetc/" || return 1
        done
        rm -rf "$_d/hostetc/ssl/private"
        for _l in bin sbin lib lib32 lib64 libx32; do
                [ -L "/$_l" ] && readlink "/$_l" >"$_d/hostroot/$_l"
        done
        (cd "$_d" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1) >"$1.tmp" && mv "$1.tmp" "$1"
}

INITRAMFS=$W/initramfs-$KVER.cpio.gz
build_initramfs "$INITRAMFS" || skip_lane "could not build the initramfs"

# --- the lane's command line and shares ----------------------------------------------

append="console=ttyS0 panic=-1 oops=panic quiet loglevel=4 rw autoos.lane=$lane"
append="$append autoos.build=$top_builddir autoos.src=$top_srcdir${shell:+ autoos.shell=1}"
case "$lane" in
v2) append="$append cgroup_no_v1=all" ;;
# systemd 252 mounts cgroup2 alone by default: the unified layout, as on Debian 12.
systemd) append="$append systemd.unified_cgroup_hierarchy=1 systemd.show_status=0 systemd.log_level=notice" ;;
esac
[ -n "${VM_TESTS:-}" ] && append="$append autoos.tests=$(printf '%s' "$VM_TESTS" | tr ' \n' ',,')"

rm -rf "$OUT"
mkdir -p "$OUT"

# The systemd lane installs the Debian package: scripts/build-deb's .debs (or
# VM_DEB_DIR's, when they are there already). A tree without debian/ falls
# back to make install DESTDIR= of the build tree. tests/vm/install.env tells
# the guest which.
prepare_package() {
        _env=$W/install.env
        if [ -n "${VM_DEB_DIR:-}" ] && ls "$VM_DEB_DIR"/autoosd_*.deb >/dev/null 2>&1; then
                echo "ok - the .debs of VM_DEB_DIR ($VM_DEB_DIR)" >>"$OUT/host.tap"
                printf 'method=deb\ndebdir=%s\n' "$(cd "$VM_DEB_DIR" && pwd -P)" >"$_env"
        elif [ -x "$top_srcdir/scripts/build-deb" ] && [ -f "$top_srcdir/debian/control" ]; then
                rm -rf "$W/deb"
                _s=$(date +%s)
                if DEB_BUILD_OPTIONS="nocheck parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" \
                        "$top_srcdir/scripts/build-deb" "$W/deb" >"$W/build-deb.out" 2>&1; then
                        echo "ok - scripts/build-deb built the .debs ($(($(date +%s) - _s)) s)" >>"$OUT/host.tap"
                else
                        echo "not ok - scripts/build-deb built the .debs (see $W/build-deb.out, $W/deb/build.log)" >>"$OUT/host.tap"
                        tail -n 20 "$W/build-deb.out" | sed 's/^/# /' >>"$OUT/host.tap"
                        return 1
                fi
                printf 'method=deb\ndebdir=%s\n' "$W/deb" >"$_env"
        else
                rm -rf "$W/destdir"
                if ! make -C "$top_builddir" install DESTDIR="$W/destdir" >"$W/install.out" 2>&1; then
                        echo "not ok - make install DESTDIR=$W/destdir (see $W/install.out)" >>"$OUT/host.tap"
                        return 1
                fi
                _prefix=$(sed -n 's/^prefix = //p' "$top_builddir/Makefile")
                _sysconfdir=$(sed -n 's/^sysconfdir = //p' "$top_builddir/Makefile" | sed "s|\${prefix}|$_prefix|")
                echo "# no debian/ in the tree: make install DESTDIR= instead of the .deb" >>"$OUT/host.tap"
                printf 'method=destdir\ndestdir=%s\nsysconfdir=%s\n' "$W/destdir" "$_sysconfdir" >"$_env"
        fi
}
boot=1
if [ "$lane" = systemd ]; then
        prepare_package || boot=""
fi
set -- -accel tcg,thread=multi -smp 2 -m "${VM_MEMORY:-2048}" -cpu max -M pc \
        -nodefaults -no-user-config -nographic -no-reboot -vga none -net none \
        -kernel "$KERNEL" -initrd "$INITRAMFS" -append "$append" \
        -virtfs "local,path=/usr,mount_tag=usr,security_model=none,readonly=on,multidevs=remap" \
        -virtfs "local,path=$OUT,mount_tag=out,security_model=passthrough" \
        -virtfs "local,path=$top_builddir,mount_tag=build,security_model=passthrough,multidevs=remap"
[ "$top_srcdir" != "$top_builddir" ] &&
        set -- "$@" -virtfs "local,path=$top_srcdir,mount_tag=src,security_model=passthrough,multidevs=remap"
[ "$lane" = systemd ] &&
        set -- "$@" -virtfs "local,path=/var/lib/dpkg,mount_tag=dpkg,security_model=none,readonly=on"

if [ -n "$shell" ]; then
        exec "$QEMU" "$@" -serial mon:stdio
fi

# Deadlines for a hung guest, well past what a lane takes on a loaded 2-core
# host (v2 ~10 min, v1 ~4, systemd ~4 with both CPUs busy elsewhere).
case "$lane" in
v2) timeout=${VM_TIMEOUT:-1500} ;;
v1) timeout=${VM_TIMEOUT:-720} ;;
systemd) timeout=${VM_TIMEOUT:-720} ;;
esac
timed_out=""
qrc=""
if [ -n "$boot" ]; then
        : >"$CONSOLE"
        "$QEMU" "$@" -serial "file:$CONSOLE" </dev/null >"$W/$lane.qemu.log" 2>&1 &
        qpid=$!
        deadline=$(($(date +%s) + timeout))
        while kill -0 "$qpid" 2>/dev/null; do
                if [ "$(date +%s)" -ge "$deadline" ]; then
                        timed_out=1
                        kill -KILL "$qpid" 2>/dev/null
                        break
                fi
                sleep 1
        done
        wait "$qpid"
        qrc=$?
fi
duration=$(($(date +%s) - started))

# --- TAP ------------------------------------------------------------------------

# The guest wrote, per test script NAME (listed in order as they ran):
# NAME.tap (its TAP), NAME.status ("EXIT SECONDS", absent when the VM ended
# first); and lane.tap (the lane's own checks), env (kernel, systemd, cgroup
# layout) and done (written last).
n=0
failed=0
{
        echo "# $lane lane: $(tr '\n' ' ' <"$OUT/env" 2>/dev/null)"
        if [ -f "$OUT/host.tap" ]; then
                while IFS= read -r line; do
                        case "$line" in
                        "ok "* | "not ok "*)
                                n=$((n + 1))
                                ok=${line%%ok *}ok
                                echo "$ok $n - $lane: ${line#"$ok - "}"
                                ;;
                        *) echo "$line" ;;
                        esac
                done <"$OUT/host.tap"
        fi
        if [ -n "$timed_out" ]; then
                n=$((n + 1))
                echo "not ok $n - $lane: the VM ended within ${timeout} s (killed; console: $CONSOLE)"
        fi
        if [ -n "$boot" ] && [ ! -f "$OUT/done" ]; then
                n=$((n + 1))
                echo "not ok $n - $lane: the guest ran to its end (qemu exit $qrc; console: $CONSOLE)"
                tail -n 30 "$CONSOLE" 2>/dev/null | sed 's/^/# console: /'
        fi
        for name in $(cat "$OUT/order" 2>/dev/null); do
                test=$(cat "$OUT/$name.name" 2>/dev/null || echo "$name")
                rc=killed secs=?
                [ -f "$OUT/$name.status" ] && read -r rc secs <"$OUT/$name.status"
                ran=0 plan=""
                while IFS= read -r line; do
                        case "$line" in
                        "ok "* | "not ok "*)
                                n=$((n + 1))
                                ran=$((ran + 1))
                                ok=${line%%ok *}ok
                                rest=${line#"$ok"}
                                rest=$(printf '%s' "$rest" | sed 's/^ *[0-9][0-9]*//; s/^ *- *//')
                                case "$rest" in
                                "# SKIP"* | "# skip"*)
                                        if [ "$lane" = v2 ] && [ "$ok" = ok ]; then
                                                echo "not ok $n - $lane: $test: skipped in the v2 lane, where nothing may be ${rest}"
                                                continue
                                        fi
                                        echo "$ok $n - $lane: $test $rest"
                                        continue
                                        ;;
                                esac
                                echo "$ok $n - $lane: $test: $rest"
                                ;;
                        1..0*)
                                plan=0
                                n=$((n + 1))
                                if [ "$lane" = v2 ]; then
                                        echo "not ok $n - $lane: $test: skipped whole in the v2 lane: ${line#1..0}"
                                else
                                        echo "ok $n - $lane: $test # SKIP ${line#*SKIP}"
                                fi
                                ;;
                        1..*) plan=${line#1..} ;;
                        "Bail out!"*) echo "# $test: $line" ;;
                        "#"*) echo "$line" ;;
                        esac
                done <"$OUT/$name.tap"
                n=$((n + 1))
                if [ "$rc" = 0 ] && [ -n "$plan" ] && { [ "$plan" = "$ran" ] || [ "$plan" = 0 ]; }; then
                        echo "ok $n - $lane: $test: exit 0, all $ran planned tests ran (${secs} s)"
                else
                        echo "not ok $n - $lane: $test: exit $rc, plan ${plan:-none}, $ran tests ran (${secs} s)"
                        sed 's/^/# stderr: /' "$OUT/$name.err" 2>/dev/null | tail -n 20
                fi
        done
        if [ -f "$OUT/lane.tap" ]; then
                while IFS= read -r line; do
                        case "$line" in
                        "ok "* | "not ok "*)
                                n=$((n + 1))
                                ok=${line%%ok *}ok
                                rest=$(printf '%s' "${line#"$ok"}" | sed 's/^ *[0-9][0-9]*//; s/^ *- *//')
                                echo "$ok $n - $lane: $rest"
                                ;;
                        "#"*) echo "$line" ;;
                        esac
                done <"$OUT/lane.tap"
        fi
        echo "# $lane lane: ${duration} s"
} >"$TAP.tmp"
# The plan, and a lane that ran nothing is a failure.
if [ "$n" -eq 0 ]; then
        n=1
        echo "not ok 1 - $lane: the lane ran no test (console: $CONSOLE)" >>"$TAP.tmp"
fi
echo "1..$n" >>"$TAP.tmp"
mv "$TAP.tmp" "$TAP"
cat "$TAP"
! grep -q '^not ok' "$TAP"
