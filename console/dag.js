// SPDX-License-Identifier: MIT
// A workflow's DAG as SVG: columns by depth (longest path from a root),
// every step drawn whatever its state, an edge per need, each step a link
// to its own view. Colours come from the stylesheet (data-state).
const NS = "http://www.w3.org/2000/svg";
const W = 170;
const H = 46;
const GX = 60;
const GY = 22;

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

export function layout(steps) {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const depth = new Map();
  const visit = (id, seen = new Set()) => {
    if (depth.has(id)) return depth.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const s = byId.get(id);
    const needs = (s && s.needs) || [];
    // A fallback stands beside the step it replaces.
    let d = needs.length ? 1 + Math.max(...needs.map((n) => visit(n, seen))) : 0;
    for (const o of steps) if (o.fallback === id) d = Math.max(d, visit(o.id, seen));
    depth.set(id, d);
    return d;
  };
  steps.forEach((s) => visit(s.id));
  const cols = [];
  for (const s of steps) {
    const d = depth.get(s.id);
    (cols[d] = cols[d] || []).push(s.id);
  }
  const pos = new Map();
  cols.forEach((ids, c) => ids.forEach((id, r) => pos.set(id, { x: 10 + c * (W + GX), y: 10 + r * (H + GY) })));
  const rows = Math.max(1, ...cols.map((c) => (c ? c.length : 0)));
  return { pos, width: 20 + cols.length * (W + GX) - GX, height: 20 + rows * (H + GY) - GY };
}

export function render(wf, hrefOf) {
  const { pos, width, height } = layout(wf.steps);
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "group", "aria-label": `DAG of ${wf.name}`, class: "dag" });
  for (const s of wf.steps) {
    const b = pos.get(s.id);
    for (const n of s.needs || []) {
      const a = pos.get(n);
      if (!a) continue;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      svg.append(el("path", { d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`, class: "edge" }));
    }
    if (s.fallback && pos.get(s.fallback)) {
      const f = pos.get(s.fallback);
      svg.append(el("path", { d: `M${b.x + W / 2},${b.y + H} L${f.x + W / 2},${f.y}`, class: "edge fallback" }));
    }
  }
  for (const s of wf.steps) {
    const p = pos.get(s.id);
    const a = el("a", { href: hrefOf(s), class: "step", "data-step": s.id, "data-state": s.state, "aria-label": `step ${s.id}: ${s.state}` });
    a.append(el("rect", { x: p.x, y: p.y, width: W, height: H, rx: 6 }));
    a.append(el("text", { x: p.x + 10, y: p.y + 19, class: "name" }, s.id.length > 20 ? s.id.slice(0, 19) + "…" : s.id));
    let sub = s.state;
    if (s.attempt > 1) sub += ` · try ${s.attempt}`;
    if (s.node) sub += ` · ${s.node}`;
    a.append(el("text", { x: p.x + 10, y: p.y + 36, class: "sub" }, sub.length > 28 ? sub.slice(0, 27) + "…" : sub));
    a.append(el("title", {}, `${s.id}: ${s.state}${s.kind !== "run" ? " (" + s.kind + ")" : ""}`));
    svg.append(a);
  }
  return svg;
}
