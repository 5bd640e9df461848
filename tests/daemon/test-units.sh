#!/bin/sh
# SPDX-License-Identifier: MIT
# The systemd unit, sysusers.d and tmpfiles.d snippets are well-formed and
# say what autoosd needs: systemd-analyze verify, Type=notify with a
# watchdog, Delegate=yes for the run cgroups.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"

unit="$top_builddir/systemd/autoosd.service"
if ! command -v systemd-analyze >/dev/null 2>&1; then
        echo "1..0 # SKIP systemd-analyze is not installed"
        exit 0
fi
[ -f "$unit" ] || (cd "$top_builddir" && make -s systemd/autoosd.service) >/dev/null 2>&1

tmp=$TEST_TMP
# Verify the unit as installed, but with ExecStart pointing at the binary we built.
sed "s|^ExecStart=.*|ExecStart=$top_builddir/daemon/autoosd|" "$unit" >"$tmp/autoosd.service"


ok "the unit was generated from autoosd.service.in" test -s "$unit"
ok "ExecStart has the configured sbindir substituted" grep -q '^ExecStart=/.*/autoosd$' "$unit"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/autoosd.service" 2>&1)
is "$out" "" "systemd-analyze verify reports nothing"
ok "Type=notify (READY/STATUS/STOPPING through sd_notify)" grep -q '^Type=notify$' "$unit"
ok "a watchdog is configured" grep -q '^WatchdogSec=' "$unit"
ok "Delegate=yes: run cgroups are created below the daemon's own" grep -q '^Delegate=yes$' "$unit"
ok "Restart=on-failure" grep -q '^Restart=on-failure$' "$unit"
ok "sysusers.d creates the group autoos" grep -q '^g autoos' "$top_srcdir/systemd/autoos.sysusers"
ok "tmpfiles.d creates /run/autoos and /var/lib/autoos" sh -c "grep -q '/run/autoos' '$top_srcdir/systemd/autoos.tmpfiles' && grep -q '/var/lib/autoos' '$top_srcdir/systemd/autoos.tmpfiles'"

# The coordinator's unit: unprivileged, hardened, notify with a watchdog.
cunit="$top_builddir/systemd/autoos-coordinator.service"
[ -f "$cunit" ] || (cd "$top_builddir" && make -s systemd/autoos-coordinator.service) >/dev/null 2>&1
ok "the coordinator unit was generated" test -s "$cunit"
ok "its ExecStart has the configured bindir substituted" grep -q '^ExecStart=/.*/autoos-coordinator$' "$cunit"
sed "s|^ExecStart=.*|ExecStart=$top_builddir/orchestrator/autoos-coordinator|" "$cunit" >"$tmp/autoos-coordinator.service"
out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$tmp/autoos-coordinator.service" 2>&1)
is "$out" "" "systemd-analyze verify reports nothing for the coordinator unit"
ok "the coordinator is Type=notify with a watchdog" sh -c "grep -q '^Type=notify$' '$cunit' && grep -q '^WatchdogSec=' '$cunit'"
ok "the coordinator runs as its own user, with no capabilities" sh -c "grep -q '^User=autoos-coordinator$' '$cunit' && grep -q '^CapabilityBoundingSet=$' '$cunit'"
ok "sysusers.d creates the autoos-coordinator user" grep -q '^u autoos-coordinator' "$top_srcdir/systemd/autoos.sysusers"
done_testing
