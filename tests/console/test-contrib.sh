#!/bin/sh
# SPDX-License-Identifier: MIT
# contrib/ (issue 15): the Grafana dashboard is a dashboard JSON model
# Grafana imports (uid, title, schemaVersion, panels with ids, grid
# positions and Prometheus targets), every metric its queries and the alert
# rules name is one the code exports (au_metrics_* in orchestrator/ and
# daemon/), every query parses as PromQL, and the rules pass promtool check
# rules and their unit tests (promtool test rules).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_cmd python3
DASH=$top_srcdir/contrib/grafana/autoos-fleet.json
RULES=$top_srcdir/contrib/prometheus/autoos-alerts.yml

python3 - "$top_srcdir" "$DASH" "$RULES" "$TEST_TMP" >"$TEST_TMP/check.out" 2>&1 <<'PY'
import glob, json, re, sys
top, dash_file, rules_file, tmp = sys.argv[1:5]
def report(ok, what, why=""):
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else ": " + why))
src = ""
for f in glob.glob(top + "/orchestrator/*.c") + glob.glob(top + "/daemon/*.c"):
    src += open(f).read()
exported = set()
for kind, name in re.findall(r'au_metrics_(counter|gauge|histogram)\(\s*[^,]+,\s*"([a-z_0-9]+)"', src):
    exported |= {name + s for s in ("_bucket", "_sum", "_count")} if kind == "histogram" else {name}
report(len(exported) >= 20, f"the code exports metrics ({len(exported)} names found)", "the pattern found too few")
funcs = {"sum", "rate", "increase", "histogram_quantile", "topk", "by", "le", "clamp_min", "and", "max", "or"}
def metrics_in(expr):
    expr = re.sub(r'\{[^}]*\}', "", expr)
    expr = re.sub(r'\[[^\]]*\]', "", expr)
    expr = re.sub(r'by \([^)]*\)', "", expr)
    return {t for t in re.findall(r'[a-z_][a-z0-9_]*', expr) if t not in funcs and "_" in t}
d = json.load(open(dash_file))
report(isinstance(d.get("uid"), str) and d["uid"] and isinstance(d.get("title"), str) and isinstance(d.get("schemaVersion"), int),
       "the dashboard has uid, title and schemaVersion", str({k: d.get(k) for k in ("uid", "title", "schemaVersion")}))
panels = d.get("panels", [])
ids = [p.get("id") for p in panels]
report(len(panels) >= 10 and len(set(ids)) == len(ids) and all(isinstance(i, int) for i in ids), f"{len(panels)} panels, unique integer ids", str(ids))
exprs = []
for p in panels:
    g = p.get("gridPos", {})
    okg = all(isinstance(g.get(k), int) for k in "xywh") and g["x"] + g["w"] <= 24
    report(okg and p.get("type") in ("timeseries", "stat", "row", "gauge", "table") and p.get("title"),
           f"panel {p.get('id')} '{p.get('title')}': type, title and a grid position within 24 columns", str(g))
    if p["type"] == "row":
        continue
    t = p.get("targets", [])
    report(bool(t) and all(x.get("expr") and x.get("refId") for x in t) and p.get("datasource", {}).get("type") == "prometheus",
           f"panel {p['id']}: Prometheus targets with expr and refId", str(t)[:200])
    for x in t:
        exprs.append(x["expr"])
        unknown = metrics_in(x["expr"]) - exported
        report(not unknown and metrics_in(x["expr"]), f"panel {p['id']} query names exported metrics only: {x['expr'][:70]}", f"unknown {sorted(unknown)}")
# Every query as a recording rule, for promtool to parse.
with open(tmp + "/dash-rules.yml", "w") as f:
    f.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        f.write(f"      - record: autoos:dashboard_query_{i}\n        expr: {json.dumps(e)}\n")
rules = open(rules_file).read()
for e in re.findall(r'expr: \|\n((?:\s{10}.*\n)+)|expr: (.*)', rules):
    e = e[0] or e[1]
    unknown = metrics_in(e) - exported
    report(not unknown, f"alert expression names exported metrics only: {e.strip()[:60]}", f"unknown {sorted(unknown)}")
report(len(re.findall(r"- alert: ", rules)) >= 8, "at least 8 alerts", "")
PY
while IFS= read -r _line; do
        case $_line in
        PASS\ *) tap_result 0 "${_line#PASS }" ;;
        FAIL\ *) tap_result 1 "${_line#FAIL }" ;;
        *) diag "$_line" ;;
        esac
done <"$TEST_TMP/check.out"
cmp_ok "$(grep -c '^PASS\|^FAIL' "$TEST_TMP/check.out")" ">" 30 "the checks ran"

# quiet CMD...: CMD's output only when it fails.
quiet() {
        "$@" >"$TEST_TMP/quiet.out" 2>&1 && return 0
        diag "$(cat "$TEST_TMP/quiet.out")"
        return 1
}
if command -v promtool >/dev/null 2>&1; then
        ok "promtool check rules passes the alert rules" quiet promtool check rules "$RULES"
        ok "promtool parses every dashboard query (as recording rules)" quiet promtool check rules "$TEST_TMP/dash-rules.yml"
        cp "$RULES" "$top_srcdir/contrib/prometheus/autoos-alerts.test.yml" "$TEST_TMP/"
        ok "promtool test rules: the alerts fire when they should" quiet sh -c 'cd "$1" && promtool test rules autoos-alerts.test.yml' sh "$TEST_TMP"
        printf 'groups:\n  - name: broken\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m]) > \n' >"$TEST_TMP/broken.yml"
        ok "and refuses a broken rule (the check can fail)" sh -c '! promtool check rules "$1" >/dev/null 2>&1' sh "$TEST_TMP/broken.yml"
else
        skip 4 "promtool missing (Debian package prometheus)"
fi
done_testing
